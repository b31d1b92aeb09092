"""SQLite registry of stored files and open upload sessions.

The registry, not the folder, is the truth of what is served: a file is reachable only once its
row exists, and the row is written after the data has been verified and renamed into place.
"""
from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    upload_key  TEXT NOT NULL UNIQUE,
    uploaded_at REAL NOT NULL,
    expires_at  REAL,
    downloads   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS files_expires ON files(expires_at);
CREATE TABLE IF NOT EXISTS sessions (
    id          TEXT PRIMARY KEY,
    upload_key  TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    keep_days   REAL NOT NULL,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);
"""
# Added after 1.0: the stored file's mtime, so a file changed on disk is noticed before it is
# served with its original checksum. NULL for rows of older registries until reconciled.
MIGRATIONS = {"files": {"mtime_ns": "INTEGER"}}


class RegistryError(Exception):
    """The registry file cannot be used (not SQLite, corrupt, unreadable); the message is one line."""


def iso(ts: float | None) -> str | None:
    """ISO-8601 UTC with a Z, the form every record carries."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class FileRow:
    id: str
    name: str
    size: int
    sha256: str
    upload_key: str
    uploaded_at: float
    expires_at: float | None
    downloads: int
    mtime_ns: int | None = None

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or time.time())

    def record(self, link: str) -> dict:
        """The public shape of a file, as the API and the client return it."""
        return {
            "id": self.id,
            "name": self.name,
            "size": self.size,
            "sha256": self.sha256,
            "link": link,
            "uploaded_at": iso(self.uploaded_at),
            "expires_at": iso(self.expires_at),
            "downloads": self.downloads,
        }


@dataclass
class SessionRow:
    id: str
    upload_key: str
    name: str
    size: int
    sha256: str
    keep_days: float
    created_at: float
    updated_at: float


FILE_COLUMNS = ",".join(f.name for f in fields(FileRow))


class Registry:
    """Thread-safe wrapper over one SQLite connection (the purge runs in a worker thread)."""

    def __init__(self, path: Path):
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            problems = [r[0] for r in self._db.execute("PRAGMA quick_check(3)")]
            if problems != ["ok"]:
                raise sqlite3.DatabaseError("; ".join(problems))
            self._db.executescript(SCHEMA)
            self._migrate()
        except sqlite3.Error as e:
            # One line, no traceback: the operator needs the file and the reason, nothing else.
            reason = " ".join(str(e).split()) or type(e).__name__
            raise RegistryError(f"{path}: not a usable local_cloud registry ({reason})") from None

    def _migrate(self) -> None:
        for table, columns in MIGRATIONS.items():
            have = {r[1] for r in self._db.execute(f"PRAGMA table_info({table})")}
            for column, kind in columns.items():
                if column not in have:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _exec(self, sql: str, args: tuple = ()) -> int:
        with self._lock:
            return self._db.execute(sql, args).rowcount

    # files -------------------------------------------------------------------------------
    def _insert_once(self, table: str, row, by_key):
        """Insert a row; if its upload key won a race elsewhere, return the row that is there."""
        values = asdict(row)
        try:
            self._exec(f"INSERT INTO {table} ({','.join(values)}) VALUES ({','.join('?' * len(values))})",
                       tuple(values.values()))
            return row
        except sqlite3.IntegrityError:
            existing = by_key(row.upload_key)
            if existing is None:
                raise
            return existing

    def add_file(self, row: FileRow) -> FileRow:
        """A verified file, stored once per upload key."""
        return self._insert_once("files", row, self.file_by_key)

    def _files(self, where: str = "", args: tuple = ()) -> list[FileRow]:
        return [FileRow(*r) for r in self._query(f"SELECT {FILE_COLUMNS} FROM files {where}", args)]

    def file(self, file_id: str) -> FileRow | None:
        rows = self._files("WHERE id=?", (file_id,))
        return rows[0] if rows else None

    def file_by_key(self, key: str) -> FileRow | None:
        rows = self._files("WHERE upload_key=?", (key,))
        return rows[0] if rows else None

    def files(self) -> list[FileRow]:
        return self._files("ORDER BY uploaded_at, id")

    def expired_files(self, now: float) -> list[FileRow]:
        return self._files("WHERE expires_at IS NOT NULL AND expires_at<=?", (now,))

    def delete_file(self, file_id: str) -> bool:
        return self._exec("DELETE FROM files WHERE id=?", (file_id,)) > 0

    def set_mtime(self, file_id: str, mtime_ns: int) -> None:
        self._exec("UPDATE files SET mtime_ns=? WHERE id=?", (mtime_ns, file_id))

    def count_download(self, file_id: str) -> bool:
        """Count a download; False when the registry cannot be written (disk full): serve anyway."""
        try:
            self._exec("UPDATE files SET downloads=downloads+1 WHERE id=?", (file_id,))
        except sqlite3.OperationalError:
            return False
        return True

    # sessions ----------------------------------------------------------------------------
    def add_session(self, row: SessionRow) -> SessionRow:
        """An upload session; a concurrent creator with the same key gets the existing one."""
        return self._insert_once("sessions", row, self.session_by_key)

    def session(self, sid: str) -> SessionRow | None:
        rows = self._query("SELECT * FROM sessions WHERE id=?", (sid,))
        return SessionRow(*rows[0]) if rows else None

    def session_by_key(self, key: str) -> SessionRow | None:
        rows = self._query("SELECT * FROM sessions WHERE upload_key=?", (key,))
        return SessionRow(*rows[0]) if rows else None

    def sessions(self) -> list[SessionRow]:
        return [SessionRow(*r) for r in self._query("SELECT * FROM sessions ORDER BY created_at")]

    def touch_session(self, sid: str, now: float) -> None:
        self._exec("UPDATE sessions SET updated_at=? WHERE id=?", (now, sid))

    def announce(self, sid: str, sha256: str, key: str) -> SessionRow:
        """Record a late checksum; keep the provisional key if another open upload has the real one."""
        try:
            self._exec("UPDATE sessions SET sha256=?, upload_key=? WHERE id=?", (sha256, key, sid))
        except sqlite3.IntegrityError:
            self._exec("UPDATE sessions SET sha256=? WHERE id=?", (sha256, sid))
        return self.session(sid)

    def delete_session(self, sid: str) -> bool:
        return self._exec("DELETE FROM sessions WHERE id=?", (sid,)) > 0

    def complete_session(self, sid: str, row: FileRow) -> FileRow:
        """Turn a finished session into a file row atomically (both or neither)."""
        values = asdict(row)
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(f"INSERT INTO files ({','.join(values)}) VALUES ({','.join('?' * len(values))})",
                                 tuple(values.values()))
                self._db.execute("DELETE FROM sessions WHERE id=?", (sid,))
                self._db.execute("COMMIT")
                return row
            except sqlite3.IntegrityError:
                self._db.execute("ROLLBACK")
                self._db.execute("DELETE FROM sessions WHERE id=?", (sid,))
            except sqlite3.Error:  # e.g. disk full: leave no transaction open behind us
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        existing = self.file_by_key(row.upload_key)
        if existing is None:
            raise sqlite3.IntegrityError(f"upload key of session {sid} conflicts but no file holds it")
        return existing
