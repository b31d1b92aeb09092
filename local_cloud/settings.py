"""Server settings: command-line options over LOCAL_CLOUD_* environment variables (pydantic-settings).

The API key comes from LOCAL_CLOUD_API_KEY or a key file, never from argv (it would show in
`ps`); it is a SecretStr, so no repr, log line or validation error can print it.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
MIN_KEY_CHARS = 16


def parse_size(text) -> int:
    """'500M', '10G', '1048576' -> bytes (binary units)."""
    t = str(text).strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1:] if t[-1:] in UNITS and not t[-1:].isdigit() else ""
    try:
        value = int(float(t[: len(t) - len(unit)]) * UNITS[unit])
    except ValueError:
        raise ValueError(f"not a size: {text!r}") from None
    if value < 0:
        raise ValueError(f"a size must not be negative: {text!r}")
    return value


class ServerSettings(BaseSettings):
    """Everything `local_cloud serve` can be told; each field is LOCAL_CLOUD_<FIELD> in the environment."""

    model_config = SettingsConfigDict(env_prefix="LOCAL_CLOUD_", extra="ignore", frozen=True)

    folder: Path
    api_key: SecretStr = SecretStr("")
    api_key_file: Path | None = None
    host: str = "127.0.0.1"
    port: int = Field(8600, ge=0, le=65535)
    # Two faces: the API (with the key) on api_host:api_port (default host:port), the public pages
    # on public_host:public_port; without a public address both are served on the one address.
    api_host: str | None = None
    api_port: int | None = Field(None, ge=0, le=65535)
    public_host: str | None = None
    public_port: int | None = Field(None, ge=0, le=65535)
    max_size: int = Field(50 << 30, description="largest upload in bytes")
    min_free: int = Field(64 << 20, description="disk kept free after an upload")
    purge_interval: float = Field(600.0, gt=0, description="seconds between expiry purges")
    session_ttl: float = Field(24.0, gt=0, description="hours an untouched upload session is kept")
    idle_timeout: float = Field(120.0, gt=0, description="seconds a request body or a reader may stall")
    header_timeout: float = Field(10.0, gt=0, description="seconds a connection has to send a request header")
    keep_alive_timeout: int = Field(5, ge=1, description="seconds an idle keep-alive connection is kept")
    max_connections: int = Field(2048, ge=4, description="open connections served at once")
    max_header_bytes: int = Field(64 << 10, ge=4096, description="largest request line + headers")
    forwarded_allow_ips: str = Field("", description="proxies whose X-Forwarded-* headers are believed")
    public_url: str = ""
    root_path: str = ""
    no_fsync: bool = False
    log_level: str = "info"

    @field_validator("max_size", "min_free", "max_header_bytes", mode="before")
    @classmethod
    def _size(cls, value):
        return parse_size(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _key(self) -> "ServerSettings":
        if self.api_key_file is not None:
            try:
                key = self.api_key_file.read_text().strip()
            except OSError as e:
                raise ValueError(f"cannot read the API key file {self.api_key_file}: {e.strerror}") from None
            object.__setattr__(self, "api_key", SecretStr(key))
        if len(self.api_key.get_secret_value()) < MIN_KEY_CHARS:
            raise ValueError(f"an API key of at least {MIN_KEY_CHARS} characters is required "
                             "(LOCAL_CLOUD_API_KEY or --api-key-file / LOCAL_CLOUD_API_KEY_FILE)")
        return self

    @model_validator(mode="after")
    def _faces(self) -> "ServerSettings":
        if self.public_host is not None and self.public_port is None:
            raise ValueError("public_host needs public_port (the public pages' own address)")
        api, public = self.api_address, self.public_address
        if public is not None and public == api and api[1] != 0:
            raise ValueError("the public address must differ from the API address "
                             "(leave public_host/public_port unset to serve both on one)")
        return self

    @property
    def api_address(self) -> tuple[str, int]:
        """Where the API listens: api_host/api_port, else host/port."""
        return (self.api_host or self.host, self.port if self.api_port is None else self.api_port)

    @property
    def public_address(self) -> tuple[str, int] | None:
        """Where the public pages listen on their own, or None: the API's address serves them too."""
        if self.public_port is None:
            return None
        return (self.public_host or self.api_address[0], self.public_port)

    @property
    def session_ttl_seconds(self) -> float:
        return self.session_ttl * 3600

    @property
    def fsync(self) -> bool:
        return not self.no_fsync
