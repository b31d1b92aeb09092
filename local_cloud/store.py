"""The storage folder and its registry: reserving space, storing, removing and checking files.

Layout of the folder:
    registry.sqlite3   what is stored and what is being uploaded (the truth for serving)
    files/<id>         verified files, named by their random id (a user's name never becomes a path)
    .tmp/              uploads in progress; renamed into files/ only once complete and verified
    quarantine/        files the registry does not know (or that changed on disk), never deleted

Removal frees the disk before it touches the registry: on a full disk SQLite cannot write, but
unlinking the file makes the room its row update needs. A row whose file is already gone is
hidden from the API at once and dropped by the next purge (or the next start's reconcile).
"""
from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import os
import secrets
import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import anyio.to_thread

from .errors import Refusal
from .redact import link_tag
from .registry import FileRow, Registry, RegistryError, SessionRow
from .settings import ServerSettings
from .streaming import hash_file

log = logging.getLogger("local_cloud")

GONE = "no such file (expired or deleted)"
PENDING = "pending/"  # upload-key prefix of a session whose checksum is not known yet


@dataclass
class Hashing:
    """Running SHA-256 of a session's part file, valid while `offset` equals the file size."""

    hasher: "hashlib._Hash"
    offset: int
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def default_key(name: str, sha256: str) -> str:
    return f"{name}/{sha256}"  # '/' cannot occur in a name, so this is unambiguous


def unlink(p: Path) -> None:
    with suppress(FileNotFoundError):
        p.unlink()


def fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _left(path: Path, size: int) -> int:
    """Bytes an upload of `size` still has to write into `path`."""
    try:
        return max(0, size - path.stat().st_size)
    except FileNotFoundError:
        return size


class Store:
    """Folder + registry + in-memory upload state; everything the routes need."""

    def __init__(self, settings: ServerSettings):
        self.settings = settings
        self.folder = Path(settings.folder)
        self.files_dir = self.folder / "files"
        self.tmp_dir = self.folder / ".tmp"
        self.quarantine_dir = self.folder / "quarantine"
        self.registry: Registry | None = None
        self.hashing: dict[str, Hashing] = {}
        self.one_shots: dict[Path, int] = {}  # temp file of a running one-shot PUT -> its size
        self.gone_files: set[str] = set()  # data deleted, registry row not yet
        self.gone_sessions: set[str] = set()
        self.report: dict = {}

    # start-up ----------------------------------------------------------------------------
    def open(self) -> None:
        """Lock the folder, open the registry and reconcile; SystemExit with one line if we must not."""
        from .reconcile import reconcile

        self.folder.mkdir(parents=True, exist_ok=True)
        # One server per folder: the running hashes of open uploads live in this process.
        self._lock_fh = open(self.folder / ".lock", "w")
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"{self.folder} is already served by another local_cloud process") from None
        db = self.folder / "registry.sqlite3"
        if not db.exists() and any(d.is_dir() and any(d.iterdir()) for d in (self.files_dir, self.tmp_dir)):
            raise SystemExit(f"{self.folder} holds files/ or .tmp/ content but no registry.sqlite3; "
                             "refusing to start (restore the registry or choose another folder)")
        self.files_dir.mkdir(exist_ok=True)
        self.tmp_dir.mkdir(exist_ok=True)
        try:
            self.registry = Registry(db)
        except RegistryError as e:
            raise SystemExit(f"error: {e}; restore registry.sqlite3 from a backup (files it does not "
                             "know are then moved to quarantine/, never deleted)") from None
        self.report = reconcile(self)

    def close(self) -> None:
        if self.registry:
            self.registry.close()
        if getattr(self, "_lock_fh", None):
            self._lock_fh.close()

    # paths and checks --------------------------------------------------------------------
    def part(self, sid: str) -> Path:
        return self.tmp_dir / f"{sid}.part"

    def reserved(self, exclude_session: str | None = None) -> int:
        """Bytes that open sessions and running one-shot uploads have yet to write."""
        total = sum(_left(self.part(s.id), s.size) for s in self.registry.sessions()
                    if s.id != exclude_session and s.id not in self.gone_sessions)
        return total + sum(_left(tmp, size) for tmp, size in self.one_shots.items())

    def check_space(self, size: int) -> None:
        """507 when the announced size (plus what other uploads still need) does not fit.

        Called on the event loop right before the caller records its own reservation, with no
        await in between, so two uploads can never both count the same free bytes.
        """
        reserved = self.reserved()
        free = shutil.disk_usage(self.folder).free
        if size + reserved + self.settings.min_free > free:
            raise Refusal(507, f"not enough free disk for {size} bytes ({free} bytes free, "
                               f"{reserved} reserved by other uploads, {self.settings.min_free} kept free)")

    def check_size(self, size: int) -> None:
        if size > self.settings.max_size:
            raise Refusal(413, f"file of {size} bytes is larger than the maximum of {self.settings.max_size} bytes")

    @contextmanager
    def one_shot(self, size: int) -> Iterator[Path]:
        """A reserved temp file for a one-shot PUT; reservation and file go when the request ends."""
        self.check_space(size)
        tmp = self.tmp_dir / f"{secrets.token_hex(16)}.upload"
        self.one_shots[tmp] = size
        try:
            yield tmp
        finally:
            del self.one_shots[tmp]
            unlink(tmp)

    def live_file(self, file_id: str) -> FileRow | None:
        row = self.registry.file(file_id)
        if row is None or row.expired() or row.id in self.gone_files:
            return None
        return row

    def live_files(self) -> list[FileRow]:
        now = time.time()
        return [r for r in self.registry.files() if not r.expired(now) and r.id not in self.gone_files]

    def existing(self, key: str, name: str, size: int, sha256: str) -> FileRow | None:
        """The stored file for this upload key, if any; 409 when the key was used for other content."""
        row = self.registry.file_by_key(key)
        if row is None or row.id in self.gone_files:
            return None
        if row.expired():
            self.remove_file(row)
            return None
        if (row.name, row.size, row.sha256) != (name, size, sha256):
            raise Refusal(409, "upload key already used for a different name or content")
        changed = self._changed_on_disk(row)
        if changed:  # answering with it would hand the damage out again: store the upload afresh
            log.error("stored file %s (%s) %s; set aside, the new upload replaces it", link_tag(row.id), row.name,
                      changed)
            self.set_aside(row, changed)
            return None
        return row

    def _changed_on_disk(self, row: FileRow) -> str | None:
        """What is wrong with a stored file by its size and modification time (as servable checks)."""
        try:
            st = (self.files_dir / row.id).stat()
        except FileNotFoundError:
            return "is missing on disk"
        if st.st_size != row.size or (row.mtime_ns is not None and st.st_mtime_ns != row.mtime_ns):
            return "changed on disk after it was uploaded"
        return None

    def servable(self, row: FileRow) -> os.stat_result:
        """The stat of a file about to be served; refused when it is not what was stored.

        Checked: the size, and the modification time (ns) recorded when it was stored. A file
        truncated, appended to or rewritten in place on disk is therefore not served with its
        original checksum; silent bit rot is not caught here (that needs a re-hash).
        """
        try:
            st = (self.files_dir / row.id).stat()
        except FileNotFoundError:
            raise Refusal(404, GONE) from None
        if st.st_size != row.size or (row.mtime_ns is not None and st.st_mtime_ns != row.mtime_ns):
            log.error("stored file %s (%s) changed on disk: %d bytes (stored %d), mtime %s; not served",
                      link_tag(row.id), row.name, st.st_size, row.size,
                      "unchanged" if st.st_mtime_ns == row.mtime_ns else "changed")
            raise Refusal(500, "the stored file changed on disk after it was uploaded; not served")
        return st

    def hash_on_disk(self, row: FileRow) -> tuple[int, str] | None:
        """(size, SHA-256) of the bytes stored for `row` as they are on disk now, None when its data
        file is missing: what a verify compares with the registry (catches bit rot too)."""
        try:
            digest, size = hash_file(self.files_dir / row.id)
        except FileNotFoundError:
            return None
        return size, digest.hexdigest()

    def set_aside(self, row: FileRow, reason: str) -> None:
        """A stored file that is no longer what was uploaded: its data goes to quarantine/ (never
        deleted) and its row is forgotten, so the id answers 404 and the upload is stored afresh."""
        from .reconcile import _Quarantine

        self.gone_files.add(row.id)
        path = self.files_dir / row.id
        if path.exists():
            _Quarantine(self).move(path, f"registered as {row.name!r} but {reason}", row=row)
        self._forget_file(row.id)

    def count_download(self, row: FileRow) -> None:
        if not self.registry.count_download(row.id):
            log.warning("download of %s not counted: the registry cannot be written (disk full?)",
                        link_tag(row.id))

    # sessions ----------------------------------------------------------------------------
    def session(self, sid: str) -> SessionRow | None:
        s = self.registry.session(sid)
        if s is None or sid in self.gone_sessions or not self.part(sid).exists():
            return None
        return s

    def session_by_key(self, key: str) -> SessionRow | None:
        s = self.registry.session_by_key(key)
        if s is not None and self.session(s.id) is None:
            self._forget_session(s.id)  # its part file is gone: the key is free again
            return None
        return s

    def touch_session(self, sid: str) -> None:
        """Mark a session as used (its TTL restarts); not fatal when the registry cannot be written."""
        try:
            self.registry.touch_session(sid, time.time())
        except sqlite3.OperationalError as e:
            log.warning("upload %s: last activity not recorded: %s", sid, e)

    def offset(self, sid: str) -> int:
        return self.part(sid).stat().st_size

    def hashing_for(self, sid: str) -> Hashing:
        st = self.hashing.get(sid)
        if st is None:
            st = self.hashing[sid] = Hashing(hashlib.sha256(), -1)
        return st

    async def sync_hashing(self, sid: str, st: Hashing) -> None:
        """Rebuild a session's running hash from its part file (after a restart or a crash).

        Called with the session's lock held, so no write is in progress.
        """
        if st.offset != self.offset(sid):
            st.hasher, st.offset = await anyio.to_thread.run_sync(hash_file, self.part(sid))

    def open_session(self, s: SessionRow) -> SessionRow:
        """Record a new session (space checked by the caller in the same event-loop step)."""
        self.part(s.id).touch()
        got = self.registry.add_session(s)
        if got.id != s.id:
            unlink(self.part(s.id))
        return got

    # storing and removing ----------------------------------------------------------------
    def place(self, src: Path, name: str, size: int, sha256: str, key: str, keep_days: float,
              session: str | None = None) -> FileRow:
        """Durably register a verified, closed temp file, then move it into files/ (runs in a thread).

        Row first: a crash in between leaves a row without its file (unregistered at the next
        start, never acknowledged to anyone), so files/ only ever holds registered files and
        quarantine/ only what a registry restore or a hand edit left there.
        """
        if self.settings.fsync:
            with open(src, "rb") as fh:
                os.fsync(fh.fileno())
        file_id = secrets.token_urlsafe(24)  # 192 random bits: the link is the only secret
        now = time.time()
        row = FileRow(file_id, name, size, sha256, key, now,
                      now + keep_days * 86400 if keep_days > 0 else None, 0, src.stat().st_mtime_ns)
        stored = (self.registry.complete_session(session, row) if session
                  else self.registry.add_file(row))
        if stored.id != file_id:  # the same upload key finished first elsewhere: keep one copy
            unlink(src)
            return stored
        os.replace(src, self.files_dir / file_id)  # a rename keeps the mtime just recorded
        if self.settings.fsync:
            fsync_dir(self.files_dir)
        log.info("stored %s (%s, %d bytes)", link_tag(stored.id), stored.name, stored.size)
        return stored

    def remove_file(self, row: FileRow) -> None:
        """Data first (frees the space), then the row; a row that cannot go yet is hidden."""
        self.gone_files.add(row.id)
        unlink(self.files_dir / row.id)
        self._forget_file(row.id)

    def _forget_file(self, file_id: str) -> None:
        try:
            self.registry.delete_file(file_id)
        except sqlite3.OperationalError as e:
            log.warning("file %s deleted, its registry row stays until the next purge: %s", link_tag(file_id), e)
        else:
            self.gone_files.discard(file_id)

    def drop_session(self, sid: str) -> None:
        self.gone_sessions.add(sid)
        self.hashing.pop(sid, None)
        unlink(self.part(sid))
        self._forget_session(sid)

    def _forget_session(self, sid: str) -> None:
        try:
            self.registry.delete_session(sid)
        except sqlite3.OperationalError as e:
            log.warning("upload %s dropped, its registry row stays until the next purge: %s", sid, e)
        else:
            self.gone_sessions.discard(sid)

    # expiry ------------------------------------------------------------------------------
    def _stale_sessions(self, now: float) -> list[str]:
        ttl = self.settings.session_ttl_seconds
        return [s.id for s in self.registry.sessions()
                if (s.updated_at < now - ttl or not self.part(s.id).exists())
                and not (s.id in self.hashing and self.hashing[s.id].lock.locked())]

    def _purge_disk(self, files: list[FileRow], stale: list[str]) -> None:
        for f in files:
            unlink(self.files_dir / f.id)
            log.info("expired: %s (%s)", link_tag(f.id), f.name)
            self._forget_file(f.id)
        for sid in stale:
            unlink(self.part(sid))
            log.info("abandoned upload %s dropped", sid)
            self._forget_session(sid)
        for file_id in list(self.gone_files):
            self._forget_file(file_id)

    async def purge(self) -> int:
        """Remove expired files and stale sessions (data before rows); returns the files removed."""
        now = time.time()
        files = [f for f in self.registry.expired_files(now) if f.id not in self.gone_files]
        stale = self._stale_sessions(now)
        self.gone_files.update(f.id for f in files)
        self.gone_sessions.update(stale)
        for sid in stale:
            self.hashing.pop(sid, None)
        if files or stale or self.gone_files:
            await anyio.to_thread.run_sync(self._purge_disk, files, stale)
        return len(files)
