"""Command line: `serve` runs the server; `upload`, `list`, `delete`, `download` talk to one.

Every server option can also come from a LOCAL_CLOUD_* environment variable (what systemd and
docker-compose use); the API key never comes from argv for `serve`, so it stays out of `ps`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """'500M', '10G', '1048576' -> bytes (binary units)."""
    t = str(text).strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1:] if t[-1:] in UNITS and not t[-1:].isdigit() else ""
    try:
        return int(float(t[: len(t) - len(unit)]) * UNITS[unit])
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}") from None


def _env(name: str, default=None):
    return os.environ.get(f"LOCAL_CLOUD_{name}", default)


class Bar:
    """A one-line progress bar on stderr (only when stderr is a terminal or forced)."""

    def __init__(self, label: str, enabled: bool):
        self.label, self.enabled = label, enabled
        self.t0 = time.monotonic()
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < 0.1 and done < total):
            return
        self.last = now
        frac = done / total if total else 1.0
        rate = done / max(now - self.t0, 1e-6) / 1e6
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\r{self.label} [{bar:<30}] {frac:6.1%} {done / 1e6:9.1f} MB {rate:7.1f} MB/s")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _client(args):
    from .client import LocalCloudClient

    key = args.api_key or os.environ.get("LOCAL_CLOUD_API_KEY")
    if args.api_key_file:
        key = Path(args.api_key_file).read_text().strip()
    if not key:
        sys.exit("error: no API key (--api-key, --api-key-file or LOCAL_CLOUD_API_KEY)")
    if not args.server:
        sys.exit("error: no server (--server or LOCAL_CLOUD_SERVER)")
    return LocalCloudClient(args.server, key, timeout=args.timeout)


def cmd_serve(args) -> int:
    from .server import Settings, serve

    key = os.environ.get("LOCAL_CLOUD_API_KEY", "")
    key_file = args.api_key_file
    if key_file:
        key = Path(key_file).read_text().strip()
    if len(key) < 16:
        sys.exit("error: an API key of at least 16 characters is required "
                 "(LOCAL_CLOUD_API_KEY or --api-key-file / LOCAL_CLOUD_API_KEY_FILE)")
    if not args.folder:
        sys.exit("error: --folder (or LOCAL_CLOUD_FOLDER) is required")
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    settings = Settings(folder=folder, api_key=key, max_size=args.max_size, min_free=args.min_free,
                        purge_interval=args.purge_interval, session_ttl=args.session_ttl * 3600,
                        idle_timeout=args.idle_timeout, public_url=args.public_url or None,
                        fsync=not args.no_fsync)
    serve(settings, args.host, args.port, port_file=args.port_file, log_level=args.log_level,
          root_path=args.root_path)
    return 0


def cmd_upload(args) -> int:
    client = _client(args)
    bar = Bar(Path(args.file).name, args.progress or sys.stderr.isatty())
    record = client.upload(args.file, args.name or Path(args.file).name, keep_days=args.keep_days,
                           progress=bar, upload_key=args.upload_key)
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        print(f"{record['id']}  {record['size']} bytes  sha256 {record['sha256']}  expires {record['expires_at'] or 'never'}")
    print(record["link"])  # the last line is the link, for scripts
    return 0


def cmd_list(args) -> int:
    rows = _client(args).list()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        print(f"{r['id']}  {r['size']:>14}  {r['uploaded_at']}  {r['expires_at'] or 'never':<20}  "
              f"{r['downloads']:>5}  {r['name']}")
    return 0


def cmd_delete(args) -> int:
    client = _client(args)
    for file_id in args.ids:
        client.delete(file_id)
        print(f"deleted {file_id}")
    return 0


def cmd_download(args) -> int:
    from .client import LocalCloudClient

    if "://" not in args.link and not args.server:
        sys.exit("error: an id needs --server (or LOCAL_CLOUD_SERVER); a link does not")
    # Links are public: no API key is needed or sent.
    client = LocalCloudClient(args.server or args.link, "", timeout=args.timeout)
    dest = client.download(args.link, args.output, progress=Bar(Path(args.output).name, sys.stderr.isatty()))
    print(dest)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="local-cloud", description="self-hosted file server for simpost")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("serve", help="run the server")
    s.add_argument("--folder", default=_env("FOLDER"), help="storage folder [LOCAL_CLOUD_FOLDER]")
    s.add_argument("--host", default=_env("HOST", "127.0.0.1"), help="[LOCAL_CLOUD_HOST] default 127.0.0.1")
    s.add_argument("--port", type=int, default=int(_env("PORT", "8600")), help="0 = any free port [LOCAL_CLOUD_PORT] default 8600")
    s.add_argument("--api-key-file", default=_env("API_KEY_FILE"), help="file holding the API key [LOCAL_CLOUD_API_KEY_FILE]; else LOCAL_CLOUD_API_KEY")
    s.add_argument("--max-size", type=parse_size, default=parse_size(_env("MAX_SIZE", "50G")), help="largest upload [LOCAL_CLOUD_MAX_SIZE] default 50G")
    s.add_argument("--min-free", type=parse_size, default=parse_size(_env("MIN_FREE", "64M")), help="disk kept free [LOCAL_CLOUD_MIN_FREE] default 64M")
    s.add_argument("--purge-interval", type=float, default=float(_env("PURGE_INTERVAL", "600")), help="seconds between expiry purges [LOCAL_CLOUD_PURGE_INTERVAL]")
    s.add_argument("--session-ttl", type=float, default=float(_env("SESSION_TTL", "24")), help="hours an idle resumable upload is kept [LOCAL_CLOUD_SESSION_TTL]")
    s.add_argument("--idle-timeout", type=float, default=float(_env("IDLE_TIMEOUT", "120")), help="seconds a stalled upload body is waited for [LOCAL_CLOUD_IDLE_TIMEOUT]")
    s.add_argument("--public-url", default=_env("PUBLIC_URL", ""), help="base of the links handed out [LOCAL_CLOUD_PUBLIC_URL]; default: as the request reached us")
    s.add_argument("--root-path", default=_env("ROOT_PATH", ""), help="URL prefix when behind a reverse proxy [LOCAL_CLOUD_ROOT_PATH]")
    s.add_argument("--no-fsync", action="store_true", default=_env("NO_FSYNC", "") == "1", help="skip fsync before publishing a file (faster, less durable)")
    s.add_argument("--port-file", help="write the bound port here once listening (for --port 0)")
    s.add_argument("--log-level", default=_env("LOG_LEVEL", "info"))
    s.set_defaults(func=cmd_serve)

    def client_opts(c):
        c.add_argument("--server", default=_env("SERVER"), help="host:port or URL [LOCAL_CLOUD_SERVER]")
        c.add_argument("--api-key", help="API key (prefer LOCAL_CLOUD_API_KEY: argv is visible in ps)")
        c.add_argument("--api-key-file")
        c.add_argument("--timeout", type=float, default=60.0)
        c.add_argument("--json", action="store_true", help="print JSON records")

    u = sub.add_parser("upload", help="upload a file, print its link last")
    u.add_argument("file")
    u.add_argument("--name", help="name to store under (default: the file's name)")
    u.add_argument("--keep-days", type=float, default=0, help="0 = keep forever")
    u.add_argument("--upload-key", help="idempotency key (default: name + content)")
    u.add_argument("--progress", action="store_true", help="show the progress bar even when not a terminal")
    client_opts(u)
    u.set_defaults(func=cmd_upload)

    lst = sub.add_parser("list", help="list stored files")
    client_opts(lst)
    lst.set_defaults(func=cmd_list)

    d = sub.add_parser("delete", help="delete stored files by id")
    d.add_argument("ids", nargs="+", metavar="ID")
    client_opts(d)
    d.set_defaults(func=cmd_delete)

    g = sub.add_parser("download", help="download a link (or an id) to a file")
    g.add_argument("link")
    g.add_argument("-o", "--output", required=True)
    client_opts(g)
    g.set_defaults(func=cmd_download)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .client import LocalCloudError

    try:
        return args.func(args)
    except LocalCloudError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
