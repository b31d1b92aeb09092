"""The catalog: which archives exist and where their copies are (DESIGN.md, "The catalog").

Plain SQLAlchemy 2 and Alembic, no Airflow: the DAG tasks, the Results view and the client reach it
the same way. The schema's migrations ship in `migrations/` and are applied when a catalog opens.
Supported databases: SQLite (WAL; every transaction takes the write lock at BEGIN, so workers
queue instead of failing) and PostgreSQL. Several workers may write copies of one archive at once:
an archive is unique by SHA-256, a copy by (archive, backend), and both are written as upserts.

Public API (stable; the Results view and the client code against it):

    Catalog.open(url) -> Catalog                      # "sqlite:////path/catalog.db", "postgresql+psycopg://..."
    catalog.close()  /  with Catalog.open(url) as catalog: ...
    catalog.archives(simulation_id=None, search=None, limit=100, offset=0) -> list[Archive]   # newest first
    catalog.count_archives(simulation_id=None) -> int
    catalog.archive(sha256) -> Archive | None
    catalog.archives_by_sha256(sha256s) -> dict[str, Archive]
    catalog.export_lines(since=None) -> Iterator[str]         # versioned JSON lines (see exchange.py)
    catalog.import_lines(lines) -> ImportResult               # merge; ImportRefused(line) on a bad line

    # written by upload, verify, retention and restore
    catalog.record_archive(sha256, size, simulation_id, title=None, run_id=None, copies_wanted=1,
                           created=None) -> Archive
    catalog.record_copy(sha256, backend, state, **fields) -> Copy            # upsert
    catalog.transition(sha256, backend, from_states, state, **fields) -> Copy | None   # guarded
    catalog.claim_restore(sha256, backend, owner, stale_before) -> Claim   # atomic; takes over stale claims
    catalog.restore_alive(sha256, backend, owner, ready_by=None) -> Copy | None   # the claim's heartbeat
    catalog.release_restore(sha256, backend, owner, reason) -> Copy | None        # a failed restore
    catalog.verified(sha256, backend, when=None) -> Copy | None
    catalog.verified_many([(sha256, backend, checksum | None), ...], when=None)
    catalog.copy(sha256, backend) -> Copy | None
    catalog.copy_at(backend, remote_id) -> Copy | None
    catalog.copies(backend=None, states=None) -> list[Copy]
    catalog.copies_to_verify(verified_before, backend=None, limit=100) -> list[Copy]  # backend: id or ids
    catalog.archives_to_repair(limit=100) -> list[Archive]
    catalog.links_ending(before, backend=None, limit=100) -> list[Copy]  # present, link_expires < before
    catalog.archives_by_prefix(prefix) -> list[Archive]

`fields` are Copy's remote_id, remote_name, link, checksum, uploaded, expires, link_expires,
last_verified, last_error (one line, the caller's message already free of secrets). `expires` is
until when a copy is kept (retention's time); `link_expires` when its link stops working where that
is earlier (an S3 presigned link: at most 7 days), else None; `Copy.link_until` is the link's end. States: records.STATES. Times are aware
UTC datetimes. `Archive` (sha256, size, simulation_id, title, run_id, created, copies_wanted,
copies, .present) and `Copy` (archive_sha256, backend, state, remote_id, remote_name, link,
checksum, uploaded, expires, last_verified, attempts, last_error, updated_at, claimed_by, ready_by,
link_expires)
are frozen dataclasses.
"""
from simpost.catalog.exchange import FORMAT, VERSION, ImportRefused
from simpost.catalog.records import REPAIRABLE, SETTLED, STATES, Archive, Claim, Copy, ImportResult
from simpost.catalog.schema import CatalogError
from simpost.catalog.store import Catalog

__all__ = ["FORMAT", "REPAIRABLE", "SETTLED", "STATES", "VERSION", "Archive", "Catalog", "CatalogError", "Claim", "Copy",
           "ImportRefused", "ImportResult"]
