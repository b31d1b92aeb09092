"""The `local` service: a self-hosted local_cloud server, through its own client.

local_cloud's client is the one retry layer of every call it makes (tenacity, with the retry
budget stated in local_cloud/README.md), so nothing here retries again; Airflow's task retries
are the outer layer.
"""
from __future__ import annotations

import logging
from datetime import datetime
from functools import cached_property

from storage_backends.base import BackendError, RemoteFile, RemoteStat, Upload, scrub
from storage_backends.naming import is_remote_name
from storage_backends.retry import DEFAULT_RETRY, RetryPolicy
from storage_backends.settings import BackendSettings, LocalConfig

log = logging.getLogger(__name__)


def _time(value: str | None) -> datetime | None:
    """local_cloud writes ISO-8601 UTC with a trailing Z."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


class LocalBackend:
    """One local_cloud server; remote ids are local_cloud file ids."""

    # its listing has the SHA-256 recorded at upload; only the per-file verify re-hashes the disk
    LISTING_VERIFIES = False

    def __init__(self, settings: BackendSettings, retry: RetryPolicy = DEFAULT_RETRY):
        """The client retries by its own budget; a policy of a single attempt (the Test button,
        where a person waits) makes it try once."""
        if not isinstance(settings.config, LocalConfig):
            raise TypeError("LocalBackend needs local settings")
        self.settings, self.cfg = settings, settings.config
        self.once = retry.attempts <= 1

    @cached_property
    def client(self):
        from local_cloud.client import LocalCloudClient

        budget = {"retry_budget": 0.0} if self.once else {}
        return LocalCloudClient(self.cfg.server, self.cfg.api_key, timeout=300.0, **budget)

    def _call(self, what: str, fn, *args, **kwargs):
        from local_cloud.client import LocalCloudError

        try:
            return fn(*args, **kwargs)
        except LocalCloudError as exc:
            reason = f"HTTP {exc.status} {exc.reason}" if exc.status else exc.reason
            hint = " (wrong api_key?)" if exc.status in (401, 403) else ""
            message = f"{self.settings.describe()}: {what} at {self.client.base} failed: {reason}{hint}"
            raise BackendError(scrub(message, self.settings.secrets)) from None

    def upload(self, path: str, remote_name: str, keep_days: int) -> Upload:
        record = self._call("upload", self.client.upload, path, remote_name, keep_days=keep_days)
        log.info("uploaded %s (%d bytes) to local_cloud as %s", remote_name, record["size"], record["id"])
        return Upload(remote_id=record["id"], link=record["link"], size=record["size"], sha256=record["sha256"],
                      uploaded_at=_time(record["uploaded_at"]), expires_at=_time(record.get("expires_at")))

    def list_uploads(self) -> list[RemoteFile]:
        return [
            RemoteFile(remote_id=r["id"], name=r["name"], size=r["size"], modified_at=_time(r["uploaded_at"]))
            for r in self._call("list", self.client.list)
            if is_remote_name(r["name"])
        ]

    def _found(self, what: str, fn, remote_id: str) -> dict | None:
        """A call about one file; None when local_cloud says it has no such file (404)."""
        from local_cloud.client import LocalCloudError

        try:
            return fn(remote_id)
        except LocalCloudError as exc:
            if exc.status == 404:
                return None
            return self._call(what, fn, remote_id)

    def stat(self, remote_id: str) -> RemoteStat:
        """The bytes local_cloud holds, re-hashed on its disk now (so a file changed in place or
        rotted shows as a different SHA-256, not as the checksum recorded at upload)."""
        record = self._found("verify", self.client.verify, remote_id)
        if record is None or record["sha256"] is None:
            return RemoteStat(exists=False)
        return RemoteStat(exists=True, size=record["size"], checksum=record["sha256"], checksum_kind="sha256")

    def download(self, remote_id: str, path: str) -> None:
        self._call("download", self.client.download, remote_id, path)

    def delete(self, remote_id: str) -> None:
        """Only files this project named; a file that is already gone counts as deleted."""
        record = self._found("lookup", self.client.get, remote_id)
        if record is None:
            log.info("%s was already gone from local_cloud", remote_id)
            return
        if not is_remote_name(record["name"]):
            raise BackendError(f"{self.settings.describe()}: refusing to delete {remote_id!r}: not a simpost upload")
        self._call("delete", self.client.delete, remote_id)

    def check(self) -> tuple[bool, str]:
        try:
            health = self._call("health", self.client.health)
            status = self._call("status", self.client.status)
        except BackendError as exc:
            return False, str(exc)
        hint = (" Move the server to Backend config {\"server\": ...} and the API key to Backend token:"
                " Airflow masks the token in logs, and with the server there every share link reads ***."
                if self.cfg.server_in_token else "")
        return True, (f"local_cloud {health.get('version', '?')} at {self.client.base}: {status.get('files', 0)}"
                      f" file(s), {status.get('free_bytes', '?')} bytes free.{hint}")
