"""Command line: `serve` runs the server; `upload`, `list`, `delete`, `download` talk to one.

Every server option can also come from a LOCAL_CLOUD_* environment variable (what systemd and
docker-compose use; see settings.py); the API key never comes from argv for `serve`, so it
stays out of `ps`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

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
    from pydantic import ValidationError

    from .server import serve
    from .settings import ServerSettings

    given = {k: v for k, v in vars(args).items() if k in ServerSettings.model_fields and v is not None}
    try:
        settings = ServerSettings(**given)  # the rest from LOCAL_CLOUD_* variables
    except ValidationError as e:
        problems = [(f"{'.'.join(map(str, err['loc']))}: " if err["loc"] else "") + err["msg"].removeprefix("Value error, ")
                    for err in e.errors(include_url=False, include_input=False)]
        sys.exit("error: " + "; ".join(problems))
    serve(settings, port_file=args.port_file)
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
    from .redact import link_tag

    rows = _client(args).list()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:  # the tag is how the server's log names the file (it never logs ids)
        print(f"{r['id']}  {link_tag(r['id'])}  {r['size']:>14}  {r['uploaded_at']}  {r['expires_at'] or 'never':<20}  "
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

    s = sub.add_parser("serve", help="run the server; every option is also LOCAL_CLOUD_<OPTION> in the environment")
    s.add_argument("--folder", help="storage folder (required)")
    s.add_argument("--host", help="listen address, default 127.0.0.1")
    s.add_argument("--port", type=int, help="listen port, default 8600; 0 = any free port (see --port-file)")
    s.add_argument("--api-host", help="the API's listen address (uploads, management; needs the key), default --host")
    s.add_argument("--api-port", type=int, help="the API's listen port, default --port")
    s.add_argument("--public-host", help="the public pages' own listen address (share links), default the API's host")
    s.add_argument("--public-port", type=int, help="the public pages' own port; unset: served on the API's address too")
    s.add_argument("--api-key-file", help="file holding the API key; else LOCAL_CLOUD_API_KEY")
    s.add_argument("--max-size", help="largest upload, default 50G")
    s.add_argument("--min-free", help="disk kept free after an upload, default 64M")
    s.add_argument("--purge-interval", type=float, help="seconds between expiry purges, default 600")
    s.add_argument("--session-ttl", type=float, help="hours an idle resumable upload is kept, default 24")
    s.add_argument("--idle-timeout", type=float, help="seconds a request body or a download reader may stall, default 120")
    s.add_argument("--header-timeout", type=float, help="seconds a connection has to send a complete request header, default 10")
    s.add_argument("--keep-alive-timeout", type=int, help="seconds an idle keep-alive connection is kept, default 5")
    s.add_argument("--max-connections", type=int, help="connections served at once, default 2048 (lowered to fit the descriptor limit)")
    s.add_argument("--max-header-bytes", help="largest request line + headers, default 64K (431 above)")
    s.add_argument("--forwarded-allow-ips", help="comma-separated proxy addresses whose X-Forwarded-For/-Proto are believed; default none")
    s.add_argument("--public-url", help="base of the links handed out; default: as the request reached us")
    s.add_argument("--root-path", help="URL prefix when behind a reverse proxy")
    s.add_argument("--no-fsync", action="store_true", default=None, help="skip fsync before publishing a file (faster, less durable)")
    s.add_argument("--port-file", help="write the bound port(s) here once listening (for --port 0): the API's, "
                                       "then the public one's, one per line")
    s.add_argument("--log-level", help="default info")
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
