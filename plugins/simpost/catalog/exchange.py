"""Moving a catalog between deployments: versioned JSON lines, merged on import.

Line 1 is a header `{"format": "simpost-catalog", "version": 1, "exported_at", "since"}`; then one
line per archive `{"type": "archive", "sha256", "size", "simulation_id", "title", "run_id",
"created", "copies_wanted"}`, each followed by its copies `{"type": "copy", "archive": sha256,
"backend", "state", "remote_id", "remote_name", "link", "checksum", "uploaded", "expires", "link_expires",
"last_verified", "attempts", "last_error", "updated_at"}`. Times are ISO-8601 with their offset.
`link_expires` came later: a copy line without it (an older export) imports with none.

Import merges: an archive is added when new (else its copies_wanted rises to the larger wish); a
copy is the archive's copy on a backend, added when new, replaced when the line's `updated_at` is
newer, else kept. Importing the same lines twice changes nothing. Every line is checked before
anything is written and all is written in one transaction: a bad line is refused with its number.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from simpost.catalog.models import ArchiveRow, CopyRow
from simpost.catalog.records import STATES, ImportResult
from simpost.catalog.schema import CatalogError
from simpost.catalog.store import COPY_FIELDS, Catalog, now, one_line

FORMAT = "simpost-catalog"
VERSION = 1
PAGE = 500
ARCHIVE_KEYS = ("sha256", "size", "simulation_id", "title", "run_id", "created", "copies_wanted")
COPY_KEYS = ("backend", "state", *COPY_FIELDS, "attempts", "updated_at")
TIME_KEYS = {"created", "uploaded", "expires", "link_expires", "last_verified", "updated_at"}
LATER_KEYS = {"link_expires"}  # added after the first exports of this version: absent means null


class ImportRefused(CatalogError):
    """A line of an import cannot be read; nothing was imported."""

    def __init__(self, line: int, message: str):
        super().__init__(f"line {line}: {message}; nothing was imported")
        self.line = line


def _json_value(value):
    return value.isoformat() if isinstance(value, datetime) else value


def export_lines(catalog: Catalog, since: datetime | None = None) -> Iterator[str]:
    """The header, then every archive created or with a copy changed since `since` (all without
    it) with those copies; read a page at a time, so memory stays flat on a big catalog."""
    yield json.dumps({"format": FORMAT, "version": VERSION, "exported_at": now().isoformat(),
                      "since": since.isoformat() if since else None})
    last_id = 0
    while True:
        query = select(ArchiveRow).options(selectinload(ArchiveRow.copies)).where(ArchiveRow.id > last_id)
        if since is not None:
            changed = select(CopyRow.archive_id).where(CopyRow.updated_at >= since)
            query = query.where(or_(ArchiveRow.created >= since, ArchiveRow.id.in_(changed)))
        with catalog.session() as session:
            rows = list(session.scalars(query.order_by(ArchiveRow.id).limit(PAGE)))
            lines = [line for row in rows for line in _archive_lines(row, since)]
        yield from lines
        if len(rows) < PAGE:
            return
        last_id = rows[-1].id


def _archive_lines(row: ArchiveRow, since: datetime | None) -> list[str]:
    lines = [json.dumps({"type": "archive", **{k: _json_value(getattr(row, k)) for k in ARCHIVE_KEYS}})]
    for copy in row.copies:
        if since is None or copy.updated_at >= since or row.created >= since:
            lines.append(json.dumps({"type": "copy", "archive": row.sha256,
                                     **{k: _json_value(getattr(copy, k)) for k in COPY_KEYS}}))
    return lines


def import_lines(catalog: Catalog, lines: Iterable[str]) -> ImportResult:
    archives, copies = _read(lines)
    counts = dict.fromkeys(("archives_added", "archives_updated", "copies_added", "copies_updated",
                            "copies_unchanged"), 0)
    with catalog.session() as session:
        ids = {}
        for number, record in archives:
            ids[record["sha256"]] = _merge_archive(session, record, counts)
        for number, record in copies:
            archive_id = ids.get(record["archive"]) or session.scalar(
                select(ArchiveRow.id).where(ArchiveRow.sha256 == record["archive"]))
            if archive_id is None:
                raise ImportRefused(number, f"copy of archive {record['archive'][:12]} which is neither in the"
                                            " file nor in this catalog")
            _merge_copy(session, archive_id, record, counts)
    return ImportResult(**counts)


def _merge_archive(session, record: dict, counts: dict) -> int:
    row = session.scalar(select(ArchiveRow).where(ArchiveRow.sha256 == record["sha256"]))
    if row is None:
        row = ArchiveRow(**record)
        session.add(row)
        session.flush()
        counts["archives_added"] += 1
    elif record["copies_wanted"] > row.copies_wanted:
        row.copies_wanted = record["copies_wanted"]
        counts["archives_updated"] += 1
    return row.id


def _merge_copy(session, archive_id: int, record: dict, counts: dict) -> None:
    fields = {k: record[k] for k in COPY_KEYS}
    row = session.scalar(select(CopyRow).where(CopyRow.archive_id == archive_id,
                                               CopyRow.backend == record["backend"]))
    if row is None:
        session.add(CopyRow(archive_id=archive_id, **fields))
        counts["copies_added"] += 1
    elif record["updated_at"] > row.updated_at:
        for key, value in fields.items():
            setattr(row, key, value)
        counts["copies_updated"] += 1
    else:
        counts["copies_unchanged"] += 1
    session.flush()


def _read(lines: Iterable[str]) -> tuple[list, list]:
    """Every line parsed and checked before the first write."""
    archives, copies, header_seen = [], [], False
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError as err:
            raise ImportRefused(number, f"not JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(data, dict):
            raise ImportRefused(number, "not a JSON object")
        if not header_seen:
            _check_header(number, data)
            header_seen = True
        elif data.get("type") == "archive":
            archives.append((number, _record(number, data, ARCHIVE_KEYS)))
        elif data.get("type") == "copy":
            copies.append((number, _record(number, data, ("archive", *COPY_KEYS))))
        else:
            raise ImportRefused(number, f"unknown type {one_line(repr(data.get('type')))[:40]} (archive, copy)")
    if not header_seen:
        raise ImportRefused(1, f"empty: no {FORMAT} header")
    return archives, copies


def _check_header(number: int, data: dict) -> None:
    if data.get("format") != FORMAT:
        raise ImportRefused(number, f'the first line must be the header {{"format": "{FORMAT}", "version": ...}}')
    if data.get("version") != VERSION:
        raise ImportRefused(number, f"format version {one_line(repr(data.get('version')))[:20]} is not"
                                    f" supported (this simpost reads version {VERSION})")


def _record(number: int, data: dict, keys: tuple[str, ...]) -> dict:
    missing = [k for k in keys if k not in data and k not in LATER_KEYS]
    if missing:
        raise ImportRefused(number, f"{data['type']} line lacks {', '.join(missing)}")
    record = {k: data.get(k) for k in keys}
    try:
        for key in TIME_KEYS & set(keys):
            if record[key] is not None:
                record[key] = datetime.fromisoformat(record[key])
                if record[key].tzinfo is None:
                    raise ValueError(f"{key} has no time zone offset")
        _check_values(record)
    except (TypeError, ValueError) as err:
        raise ImportRefused(number, one_line(str(err))[:200]) from None
    return record


def _check_values(record: dict) -> None:
    for key in ("sha256", "archive"):
        if key in record:
            value = record[key]
            if not (isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)):
                raise ValueError(f"{key} must be 64 lower-case hex digits")
    for key in ("size", "copies_wanted", "attempts"):
        if key in record and (not isinstance(record[key], int) or isinstance(record[key], bool) or record[key] < 0):
            raise ValueError(f"{key} must be a whole number >= 0")
    if record.get("copies_wanted", 1) < 1:
        raise ValueError("copies_wanted must be at least 1")
    if "state" in record and record["state"] not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}")
    for key in ("simulation_id", "backend", "updated_at"):
        if key in record and not record[key]:
            raise ValueError(f"{key} must not be empty")
    for key in ("title", "run_id", "remote_id", "remote_name", "link", "checksum", "last_error"):
        if key in record and record[key] is not None and not isinstance(record[key], str):
            raise ValueError(f"{key} must be a string or null")
