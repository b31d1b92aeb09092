"""The one place that turns a `storage_backend` Connection into validated settings.

Duck-typed on the Connection (conn_id, password, description, extra / extra_dejson), so it needs
no Airflow import and works the same for connections from the UI, the CLI, env vars or tests.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping
from typing import Any, Literal

from storage_backends.base import BackendError

Service = Literal["dropbox", "seafile", "local", "s3"]
SERVICES: tuple[str, ...] = ("dropbox", "seafile", "local", "s3")
IDENTIFIER = re.compile(r"^(dropbox|seafile|local|s3)(?:[-_.][A-Za-z0-9][A-Za-z0-9._-]*)?$")

DEFAULT_FOLDER = "/simpost"
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
MIN_CHUNK_SIZE = 1024
# files/upload takes at most 150 MB per call; larger chunks would be refused by Dropbox.
MAX_CHUNK_SIZE = 150 * 1024 * 1024
# The Seafile server for configs without "server" (OPS's seed configs: {"token", "repoid"}); set it
# for every Airflow component (workers and the api-server's Test button).
SEAFILE_SERVER_ENV = "SIMPOST_SEAFILE_SERVER"

# Field name -> UI label, as declared in provider.py; messages use both so admins find the field.
LABELS = {
    "storage_backend": "Backend name",
    "storage_backend_id": "Backend identifier",
    "storage_backend_token": "Backend token",
    "storage_backend_config": "Backend config",
    "storage_backend_keep_days": "Backend keep days",
    "storage_backend_desc": "Backend description",
    "storage_backend_active": "Backend active",
}


class SettingsError(BackendError):
    """A connection definition is wrong; names the connection and the field, never a value."""

    def __init__(self, conn_id: str, field: str, problem: str):
        self.conn_id, self.field = conn_id, field
        label = LABELS.get(field)
        where = f"{label} ({field})" if label else field
        super().__init__(f"storage backend connection {conn_id!r}: {where}: {problem}")


@dataclasses.dataclass(frozen=True)
class DropboxConfig:
    """OAuth2 app credentials (preferred) or a legacy long-lived access token."""

    folder: str = DEFAULT_FOLDER
    app_key: str | None = None
    app_secret: str | None = dataclasses.field(default=None, repr=False)
    refresh_token: str | None = dataclasses.field(default=None, repr=False)
    access_token: str | None = dataclasses.field(default=None, repr=False)
    chunk_size: int = DEFAULT_CHUNK_SIZE


@dataclasses.dataclass(frozen=True)
class SeafileConfig:
    """A library (repoid) on a Seafile server, reached with an account or library API token."""

    server: str
    repoid: str
    token: str = dataclasses.field(repr=False)
    folder: str = DEFAULT_FOLDER
    chunk_size: int = DEFAULT_CHUNK_SIZE


@dataclasses.dataclass(frozen=True)
class LocalConfig:
    """A local_cloud server: its address from the config, its API key from the token field.

    `server_in_token` marks the earlier form (address in the token, key in the config), which
    still works but makes Airflow mask the address, and so every share link, in logs and XComs.
    """

    server: str
    api_key: str = dataclasses.field(repr=False)
    server_in_token: bool = dataclasses.field(default=False, compare=False)


DEFAULT_S3_PREFIX = "simpost/"
S3_STORAGE_CLASSES = ("STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
                      "GLACIER", "DEEP_ARCHIVE", "GLACIER_IR", "OUTPOSTS", "SNOW", "EXPRESS_ONEZONE")
S3_ADDRESSING_STYLES = ("auto", "virtual", "path")
S3_RESTORE_TIERS = ("Expedited", "Standard", "Bulk")  # RestoreObject's retrieval tiers
DEFAULT_S3_RESTORE_TIER = "Standard"
DEFAULT_S3_RESTORE_DAYS = 1  # the thawed copy only has to last until it is copied to the target


@dataclasses.dataclass(frozen=True)
class S3Config:
    """A bucket on S3 or an S3-compatible store (MinIO, Ceph); the secret access key is the token."""

    bucket: str
    access_key_id: str
    secret_access_key: str = dataclasses.field(repr=False)
    endpoint_url: str | None = None  # None: AWS
    region: str | None = None
    prefix: str = DEFAULT_S3_PREFIX
    storage_class: str | None = None
    archive_storage_class: str | None = None
    addressing_style: str | None = None
    public_base_url: str | None = None
    restore_tier: str = DEFAULT_S3_RESTORE_TIER  # for archived copies in archive_storage_class
    restore_days: int = DEFAULT_S3_RESTORE_DAYS


ServiceConfig = DropboxConfig | SeafileConfig | LocalConfig | S3Config


@dataclasses.dataclass(frozen=True)
class BackendSettings:
    """Everything a backend needs, validated; `repr` shows no secret."""

    conn_id: str
    name: str
    identifier: str
    service: Service
    config: ServiceConfig
    keep_days: int
    description: str
    active: bool
    # The backend that keeps an archive once this one's keep days pass (storage_retention's
    # archive tier); None deletes as before.
    archive_to: str | None = None

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value, for log masking and for scrubbing service answers."""
        cfg = self.config
        values: list[str | None] = []
        if isinstance(cfg, DropboxConfig):
            values = [cfg.app_secret, cfg.refresh_token, cfg.access_token]
        elif isinstance(cfg, SeafileConfig):
            values = [cfg.token]
        elif isinstance(cfg, LocalConfig):
            values = [cfg.api_key]
        elif isinstance(cfg, S3Config):
            values = [cfg.secret_access_key]
        return tuple(v for v in values if v)

    def describe(self) -> str:
        return f"storage backend {self.name!r} ({self.identifier}, connection {self.conn_id!r})"


# ---------------------------------------------------------------------------------------------
def _extra_of(conn: Any, conn_id: str) -> dict:
    """The extra as a dict, whether the object offers `extra_dejson`, a dict or a JSON string."""
    extra = getattr(conn, "extra", None)
    if isinstance(extra, Mapping):
        return dict(extra)
    if extra in (None, ""):
        dejson = getattr(conn, "extra_dejson", None)
        return dict(dejson) if isinstance(dejson, Mapping) else {}
    if not isinstance(extra, str):
        raise SettingsError(conn_id, "extra", "must be a JSON object")
    return _json_object(conn_id, "extra", extra)


def _json_object(conn_id: str, field: str, text: str) -> dict:
    """A JSON object, also written with single quotes as OPS accepted it; an error points at the
    character (line, column, and a caret under a masked copy of the line)."""
    quoted = _double_quoted(text)
    try:
        parsed = json.loads(quoted[0] if quoted else text)
    except json.JSONDecodeError as exc:
        pos = quoted[1][exc.pos] if quoted else exc.pos
        raise SettingsError(conn_id, field, f"not valid JSON: {_json_where(exc.msg, pos, text)}") from None
    if not isinstance(parsed, dict):
        raise SettingsError(conn_id, field, "must be a JSON object, e.g. {\"key\": \"value\"}")
    return parsed


def _double_quoted(text: str) -> tuple[str, list[int]] | None:
    """Single-quoted strings ({'token': 'x'}) rewritten as JSON strings, with the position in `text` of
    every character written (errors are shown where the user typed them); None if there are none."""
    if "'" not in text:
        return None
    out: list[str] = []
    where: list[int] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] != "'":
            end = i + 1
            if text[i] == '"':  # a JSON string: copied as it is
                while end < n and text[end] != '"':
                    end += 2 if text[end] == "\\" else 1
                end = min(end + 1, n)
            out.append(text[i:end])
            where.extend(range(i, end))
            i = end
            continue
        out.append('"')
        where.append(i)
        i += 1
        while i < n and text[i] != "'":
            piece = text[i:i + 2] if text[i] == "\\" else text[i]
            out.append({"\\'": "'", '"': '\\"'}.get(piece, piece))
            where.extend([i] * len(out[-1]))
            i += len(piece)
        out.append('"')
        where.append(min(i, n - 1))
        i += 1
    where.append(n)  # an error at the very end
    return "".join(out), where


_STRUCTURE = set("{}[]:,'\" \t")


def _json_where(message: str, pos: int, text: str) -> str:
    """Where a JSON document breaks, shown on a copy of its line with every string and word masked
    (the document may hold secrets): the structure stays visible, the values do not."""
    lineno = text.count("\n", 0, pos) + 1
    line_start = text.rfind("\n", 0, pos) + 1
    colno = pos - line_start + 1
    line = text[line_start:].split("\n", 1)[0].rstrip("\r")
    masked, quote = [], None
    for c in line:
        if quote:
            masked.append(c if c == quote else "*")
            quote = None if c == quote else quote
        else:
            quote = c if c in "'\"" else None
            masked.append(" " if c == "\t" else c if c in _STRUCTURE else "*")
    start = max(0, colno - 1 - 40)
    cut = "…" if start else ""
    excerpt = cut + "".join(masked[start:start + 80]) + ("…" if len(masked) > start + 80 else "")
    return (f"{message} at line {lineno} column {colno}:\n    {excerpt}\n"
            f"    {' ' * (len(cut) + colno - 1 - start)}^")


def _field(extra: dict, name: str) -> Any:
    """A field stored plainly (the new UI) or with Airflow 2's `extra__<type>__` prefix."""
    if name in extra:
        return extra[name]
    return extra.get(f"extra__storage_backend__{name}")


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _parse_bool(conn_id: str, field: str, value: Any, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    word = str(value).strip().lower()
    if word in ("true", "1", "yes", "on", "y", "t"):
        return True
    if word in ("false", "0", "no", "off", "n", "f"):
        return False
    raise SettingsError(conn_id, field, "must be true or false")


def _parse_keep_days(conn_id: str, value: Any) -> int:
    field = "storage_backend_keep_days"
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise SettingsError(conn_id, field, "must be a whole number of days, not a boolean")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        value = value.strip()
        if not re.fullmatch(r"[+-]?\d+", value):
            raise SettingsError(conn_id, field, "must be a whole number of days (0 keeps forever)")
        value = int(value)
    if not isinstance(value, int):
        raise SettingsError(conn_id, field, "must be a whole number of days (0 keeps forever)")
    if value < 0:
        raise SettingsError(conn_id, field, f"must be >= 0 (0 keeps forever), got {value}")
    return value


CONN_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,249}$")


def _pop_archive_to(conn_id: str, raw: dict) -> str | None:
    """`archive_to` belongs to every service's config, so it is taken out before the service's
    own keys are checked: another connection id, never this one."""
    if "archive_to" not in raw:
        return None
    value = raw.pop("archive_to")
    field = "storage_backend_config"
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not CONN_ID.match(value.strip()):
        raise SettingsError(conn_id, field, "'archive_to' must be the connection id of another storage backend")
    value = value.strip()
    if value == conn_id:
        raise SettingsError(conn_id, field, "'archive_to' names this connection itself; name another backend")
    return value


def _parse_config(conn_id: str, value: Any) -> dict:
    field = "storage_backend_config"
    if value is None or value == "":
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    if not isinstance(value, str):
        raise SettingsError(conn_id, field, "must be a JSON object")
    return _json_object(conn_id, field, value)


class _ConfigReader:
    """Reads typed keys of one service's config and refuses keys it does not know."""

    FIELD = "storage_backend_config"

    def __init__(self, conn_id: str, service: str, raw: dict, known: set[str]):
        self.conn_id, self.service, self.raw = conn_id, service, raw
        unknown = sorted(set(raw) - known)
        if unknown:
            raise SettingsError(
                conn_id, self.FIELD,
                f"unknown key(s) {', '.join(unknown)} for {service}; allowed: {', '.join(sorted(known))}",
            )

    def text(self, key: str, required: bool = False, hint: str = "") -> str | None:
        value = self.raw.get(key)
        if value is not None and not isinstance(value, str):
            raise SettingsError(self.conn_id, self.FIELD, f"{self.service} key {key!r} must be a string")
        value = (value or "").strip() or None
        if required and value is None:
            raise SettingsError(self.conn_id, self.FIELD, f"{self.service} needs {key!r}{hint}")
        return value

    def folder(self) -> str:
        folder = self.text("folder") or DEFAULT_FOLDER
        folder = "/" + folder.strip("/")
        if folder == "/" or any(part in ("", ".", "..") for part in folder[1:].split("/")):
            raise SettingsError(
                self.conn_id, self.FIELD,
                f"{self.service} 'folder' must be an absolute folder below the root, like /simpost",
            )
        return folder

    def chunk_size(self) -> int:
        value = self.raw.get("chunk_size", DEFAULT_CHUNK_SIZE)
        if isinstance(value, bool) or not isinstance(value, int) or not (
            MIN_CHUNK_SIZE <= value <= MAX_CHUNK_SIZE
        ):
            raise SettingsError(
                self.conn_id, self.FIELD,
                f"{self.service} 'chunk_size' must be bytes between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE}",
            )
        return value


def _http_url(conn_id: str, field: str, value: str, what: str) -> str:
    """A base URL; a bare `host:port` means plain HTTP (how local_cloud tokens are written)."""
    url = value.strip().rstrip("/")
    if not re.match(r"^https?://", url, re.I):
        url = "http://" + url
    if not re.match(r"^https?://[^/\s:]+(:\d{1,5})?(/\S*)?$", url, re.I):
        raise SettingsError(conn_id, field, f"{what} must be host:port or an http(s):// URL")
    return url


def _dropbox(conn_id: str, token: str | None, raw: dict) -> DropboxConfig:
    r = _ConfigReader(conn_id, "dropbox", raw, {"app_key", "app_secret", "refresh_token", "folder", "chunk_size"})
    app_key, app_secret = r.text("app_key"), r.text("app_secret")
    refresh_token = r.text("refresh_token")
    oauth = app_key or app_secret or refresh_token
    if oauth:
        r.text("app_key", required=True, hint=" for OAuth2 (with app_secret and refresh_token)")
        r.text("refresh_token", required=True, hint=" for OAuth2: run the OAuth2 flow once with token_access_type=offline")
    elif not token:
        raise SettingsError(
            conn_id, "storage_backend_config",
            "dropbox needs OAuth2 credentials {\"app_key\", \"app_secret\", \"refresh_token\"}"
            " here, or a legacy access token in Backend token",
        )
    return DropboxConfig(
        folder=r.folder(), app_key=app_key, app_secret=app_secret, refresh_token=refresh_token,
        access_token=None if oauth else token, chunk_size=r.chunk_size(),
    )


def _seafile(conn_id: str, token: str | None, raw: dict) -> SeafileConfig:
    r = _ConfigReader(conn_id, "seafile", raw, {"server", "token", "repoid", "folder", "chunk_size"})
    server, where = r.text("server"), "seafile 'server'"
    if server is None:
        server, where = os.environ.get(SEAFILE_SERVER_ENV, "").strip() or None, SEAFILE_SERVER_ENV
    if server is None:
        raise SettingsError(
            conn_id, "storage_backend_config",
            f"seafile needs the server: 'server' here (a base URL like https://seafile.example.org), "
            f"or the environment variable {SEAFILE_SERVER_ENV} for configs without it",
        )
    repoid = r.text("repoid", required=True, hint=" (library id; seafile-list-repo-ids lists them)")
    if not re.fullmatch(r"[0-9a-fA-F-]{8,64}", repoid):
        raise SettingsError(conn_id, "storage_backend_config", "seafile 'repoid' must be a library id (uuid)")
    api_token = r.text("token") or token
    if not api_token:
        raise SettingsError(
            conn_id, "storage_backend_config",
            "seafile needs 'token' (seafile-get-token prints one) here or in Backend token",
        )
    return SeafileConfig(
        server=_http_url(conn_id, "storage_backend_config", server, where),
        repoid=repoid.lower(), token=api_token, folder=r.folder(), chunk_size=r.chunk_size(),
    )


def _local(conn_id: str, token: str | None, raw: dict) -> LocalConfig:
    """Config `{"server"}` + the API key as token; the earlier form (server as token) still works."""
    r = _ConfigReader(conn_id, "local", raw, {"server", "api_key"})
    server, api_key = r.text("server"), r.text("api_key")
    if server:
        api_key = api_key or token
        if not api_key:
            raise SettingsError(conn_id, "storage_backend_token",
                                "local needs the local_cloud server's API key here")
        url = _http_url(conn_id, "storage_backend_config", server, "local 'server'")
        return LocalConfig(server=url, api_key=api_key)
    if not token or not api_key:
        raise SettingsError(
            conn_id, "storage_backend_config",
            "local needs {\"server\": \"host:port\"} (or an http(s):// URL of local_cloud) here and the API key"
            " in Backend token",
        )
    url = _http_url(conn_id, "storage_backend_token", token, "local server")
    return LocalConfig(server=url, api_key=api_key, server_in_token=True)


_S3_KEYS = {"endpoint_url", "bucket", "region", "access_key_id", "prefix", "storage_class",
            "archive_storage_class", "addressing_style", "public_base_url", "restore_tier", "restore_days"}


def _s3_choice(r: _ConfigReader, key: str, allowed: tuple[str, ...], upper: bool = True) -> str | None:
    value = r.text(key)
    if value is None:
        return None
    value = value.upper() if upper else value.lower()
    if value not in allowed:
        raise SettingsError(r.conn_id, r.FIELD, f"s3 {key!r} must be one of {', '.join(allowed)}")
    return value


def _s3(conn_id: str, token: str | None, raw: dict) -> S3Config:
    """Config {"bucket", "access_key_id", ...}; the secret access key is Backend token."""
    r = _ConfigReader(conn_id, "s3", raw, _S3_KEYS)
    bucket = r.text("bucket", required=True, hint=" (the bucket's name)")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
        raise SettingsError(conn_id, r.FIELD, "s3 'bucket' must be a bucket name: 3-63 of a-z, 0-9, '.', '-'")
    access_key_id = r.text("access_key_id", required=True, hint=" (the access key's id; its secret goes in Backend token)")
    if not token:
        raise SettingsError(conn_id, "storage_backend_token", "s3 needs the secret access key here")
    prefix = r.text("prefix") or DEFAULT_S3_PREFIX
    if prefix.startswith("/") or any(part in (".", "..") for part in prefix.split("/")):
        raise SettingsError(conn_id, r.FIELD, "s3 'prefix' must be a relative key prefix like simpost/")
    endpoint = r.text("endpoint_url")
    public = r.text("public_base_url")
    return S3Config(
        bucket=bucket, access_key_id=access_key_id, secret_access_key=token,
        endpoint_url=_http_url(conn_id, r.FIELD, endpoint, "s3 'endpoint_url'") if endpoint else None,
        region=r.text("region"), prefix=prefix.rstrip("/") + "/",
        storage_class=_s3_choice(r, "storage_class", S3_STORAGE_CLASSES),
        archive_storage_class=_s3_choice(r, "archive_storage_class", S3_STORAGE_CLASSES),
        addressing_style=_s3_choice(r, "addressing_style", S3_ADDRESSING_STYLES, upper=False),
        public_base_url=_http_url(conn_id, r.FIELD, public, "s3 'public_base_url'") if public else None,
        restore_tier=_s3_restore_tier(r), restore_days=_s3_restore_days(r),
    )


def _s3_restore_tier(r: _ConfigReader) -> str:
    value = r.text("restore_tier") or DEFAULT_S3_RESTORE_TIER
    tier = next((t for t in S3_RESTORE_TIERS if t.lower() == value.lower()), None)
    if tier is None:
        raise SettingsError(r.conn_id, r.FIELD, f"s3 'restore_tier' must be one of {', '.join(S3_RESTORE_TIERS)}")
    return tier


def _s3_restore_days(r: _ConfigReader) -> int:
    value = r.raw.get("restore_days", DEFAULT_S3_RESTORE_DAYS)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 365:
        raise SettingsError(r.conn_id, r.FIELD, "s3 'restore_days' must be a whole number of days, 1 to 365")
    return value


_BUILDERS = {"dropbox": _dropbox, "seafile": _seafile, "local": _local, "s3": _s3}


def from_connection(conn: Any) -> BackendSettings:
    """Validate a `storage_backend` Connection (or any object with its attributes)."""
    conn_id = _text(getattr(conn, "conn_id", None)) or "<unnamed>"
    extra = _extra_of(conn, conn_id)

    identifier = _text(_field(extra, "storage_backend_id"))
    if not identifier:
        raise SettingsError(conn_id, "storage_backend_id", "missing; use dropbox, seafile, local or s3 (optionally with a suffix like dropbox_oauth2)")
    match = IDENTIFIER.match(identifier)
    if not match:
        raise SettingsError(
            conn_id, "storage_backend_id",
            f"unknown identifier {identifier!r}; use dropbox, seafile, local or s3, optionally followed by -, _ or . and a suffix",
        )
    service = match.group(1)
    token = _text(getattr(conn, "password", None)) or None
    raw_config = _parse_config(conn_id, _field(extra, "storage_backend_config"))
    archive_to = _pop_archive_to(conn_id, raw_config)
    config = _BUILDERS[service](conn_id, token, raw_config)

    return BackendSettings(
        conn_id=conn_id,
        name=_text(_field(extra, "storage_backend")) or conn_id,
        identifier=identifier,
        service=service,  # type: ignore[arg-type]
        config=config,
        keep_days=_parse_keep_days(conn_id, _field(extra, "storage_backend_keep_days")),
        description=_text(getattr(conn, "description", None)),
        active=_parse_bool(conn_id, "storage_backend_active", _field(extra, "storage_backend_active"), True),
        archive_to=archive_to,
    )
