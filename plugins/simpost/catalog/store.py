"""The catalog: archives and their copies in a SQLAlchemy database (see the package docstring)."""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone

from sqlalchemy import bindparam, case, func, or_, select, update
from sqlalchemy.orm import Session, selectinload, sessionmaker

from simpost.catalog.models import ArchiveRow, CopyRow
from simpost.catalog.records import REPAIRABLE, SETTLED, STATES, Archive, Claim, Copy, ImportResult
from simpost.catalog.schema import CatalogError, engine_for, upgrade

# What a caller may set on a copy besides its state.
COPY_FIELDS = ("remote_id", "remote_name", "link", "checksum", "uploaded", "expires", "link_expires", "last_verified",
               "last_error")
ERROR_MAX = 500


def now() -> datetime:
    return datetime.now(timezone.utc)


def one_line(message: str | None) -> str | None:
    """A copy's last error: its first line, bounded (callers pass messages already free of secrets)."""
    if message is None:
        return None
    line = " ".join(str(message).split())
    return line if len(line) <= ERROR_MAX else line[:ERROR_MAX - 3] + "..."


def to_copy(row: CopyRow, sha256: str) -> Copy:
    return Copy(archive_sha256=sha256, backend=row.backend, state=row.state, remote_id=row.remote_id,
                remote_name=row.remote_name, link=row.link, checksum=row.checksum,
                uploaded=row.uploaded, expires=row.expires,
                last_verified=row.last_verified, attempts=row.attempts, last_error=row.last_error,
                updated_at=row.updated_at, claimed_by=row.claimed_by, ready_by=row.ready_by,
                link_expires=row.link_expires)


def to_archive(row: ArchiveRow) -> Archive:
    return Archive(sha256=row.sha256, size=row.size, simulation_id=row.simulation_id, title=row.title,
                   run_id=row.run_id, created=row.created, copies_wanted=row.copies_wanted,
                   copies=[to_copy(c, row.sha256) for c in row.copies])


def dialect_insert(session: Session):
    """INSERT with ON CONFLICT, which both supported databases have under the same API."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


class Catalog:
    """Archives and their copies. Every method is one transaction; results are detached dataclasses."""

    def __init__(self, engine):
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str) -> Catalog:
        """The catalog at a SQLAlchemy URL (sqlite:///path or postgresql+psycopg://...), migrated."""
        engine = engine_for(url)
        try:
            upgrade(engine)
        except Exception as err:
            engine.dispose()
            password = engine.url.password
            message = str(err).replace(password, "***") if password else str(err)
            raise CatalogError(f"cannot open the catalog at {engine.url.render_as_string(hide_password=True)}: "
                               f"{type(err).__name__}: {one_line(message)}") from err
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    # --- archives ---------------------------------------------------------------------------

    def record_archive(self, sha256: str, size: int, simulation_id: str, title: str | None = None,
                       run_id: str | None = None, copies_wanted: int = 1,
                       created: datetime | None = None) -> Archive:
        """Record an archive once (its SHA-256 is its identity); recording it again keeps the first
        facts and raises copies_wanted to the larger wish."""
        sha256 = sha256.lower()
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise CatalogError("an archive's sha256 must be 64 hex digits")
        if copies_wanted < 1:
            raise CatalogError("copies_wanted must be at least 1")
        with self.session() as session:
            insert = dialect_insert(session)
            stmt = insert(ArchiveRow).values(sha256=sha256, size=size, simulation_id=simulation_id, title=title,
                                             run_id=run_id, created=created or now(), copies_wanted=copies_wanted)
            stmt = stmt.on_conflict_do_update(index_elements=["sha256"], set_={"copies_wanted": case(
                (stmt.excluded.copies_wanted > ArchiveRow.copies_wanted, stmt.excluded.copies_wanted),
                else_=ArchiveRow.copies_wanted)})
            session.execute(stmt)
            return self._archive(session, sha256)

    def archive(self, sha256: str) -> Archive | None:
        with self.session() as session:
            return self._archive(session, sha256.lower())

    def archives_by_sha256(self, sha256s: Iterable[str]) -> dict[str, Archive]:
        """Many archives at once (verify's batch), by SHA-256; unknown ones are left out."""
        wanted, found = sorted({s.lower() for s in sha256s}), {}
        with self.session() as session:
            for start in range(0, len(wanted), 500):  # bounded IN lists
                rows = session.scalars(select(ArchiveRow).options(selectinload(ArchiveRow.copies))
                                       .where(ArchiveRow.sha256.in_(wanted[start:start + 500])))
                found.update((r.sha256, to_archive(r)) for r in rows)
        return found

    def archives_by_prefix(self, prefix: str) -> list[Archive]:
        """Archives whose SHA-256 starts with `prefix` (remote names carry the first 12 digits)."""
        with self.session() as session:
            rows = session.scalars(select(ArchiveRow).options(selectinload(ArchiveRow.copies))
                                   .where(ArchiveRow.sha256.startswith(prefix.lower(), autoescape=True)))
            return [to_archive(r) for r in rows]

    def archives(self, simulation_id: str | None = None, search: str | None = None,
                 limit: int = 100, offset: int = 0) -> list[Archive]:
        """Newest first; `search` matches a part of the simulation id or title, case-insensitively."""
        query = select(ArchiveRow).options(selectinload(ArchiveRow.copies))
        if simulation_id is not None:
            query = query.where(ArchiveRow.simulation_id == simulation_id)
        if search:
            needle = search.lower()
            query = query.where(or_(func.lower(ArchiveRow.simulation_id).contains(needle, autoescape=True),
                                    func.lower(ArchiveRow.title).contains(needle, autoescape=True)))
        query = query.order_by(ArchiveRow.created.desc(), ArchiveRow.id.desc()).limit(limit).offset(offset)
        with self.session() as session:
            return [to_archive(r) for r in session.scalars(query)]

    def count_archives(self, simulation_id: str | None = None) -> int:
        query = select(func.count(ArchiveRow.id))
        if simulation_id is not None:
            query = query.where(ArchiveRow.simulation_id == simulation_id)
        with self.session() as session:
            return session.scalar(query)

    @staticmethod
    def _archive(session: Session, sha256: str) -> Archive | None:
        row = session.scalar(select(ArchiveRow).options(selectinload(ArchiveRow.copies))
                             .where(ArchiveRow.sha256 == sha256))
        return to_archive(row) if row else None

    # --- copies -----------------------------------------------------------------------------

    def record_copy(self, sha256: str, backend: str, state: str, **fields) -> Copy:
        """Write the copy of an archive on a backend, creating it if new (an upsert, so two workers
        or two tries writing the same copy at once leave one row). `pending` counts an attempt;
        `present` clears the last error unless one is given. Fields not given are kept."""
        values = self._copy_values(state, fields)
        with self.session() as session:
            archive_id = self._archive_id(session, sha256)
            insert = dialect_insert(session)
            stmt = insert(CopyRow).values(archive_id=archive_id, backend=backend,
                                          attempts=1 if state == "pending" else 0, **values)
            changes = dict(values)
            if state == "pending":
                changes["attempts"] = CopyRow.attempts + 1
            stmt = stmt.on_conflict_do_update(index_elements=["archive_id", "backend"], set_=changes)
            session.execute(stmt)
            return self._copy(session, archive_id, backend, sha256)

    def transition(self, sha256: str, backend: str, from_states: Sequence[str], state: str,
                   **fields) -> Copy | None:
        """Change a copy only while it is in one of `from_states` (None when it was not): verify
        marks a copy lost only if nobody made it present again in the meantime."""
        values = self._copy_values(state, fields)
        with self.session() as session:
            archive_id = self._archive_id(session, sha256)
            stmt = (update(CopyRow).where(CopyRow.archive_id == archive_id, CopyRow.backend == backend,
                                          CopyRow.state.in_(list(from_states))).values(**values))
            if state == "pending":
                stmt = stmt.values(attempts=CopyRow.attempts + 1)
            if session.execute(stmt).rowcount == 0:
                return None
            return self._copy(session, archive_id, backend, sha256)

    def claim_restore(self, sha256: str, backend: str, owner: str, stale_before: datetime) -> Claim:
        """Mark the archive's copy on `backend` restoring for `owner` (the request's id) unless a
        restore of the archive runs already: claimed for the request that got it, else the running
        restore's copy, which a later request joins instead of copying twice. A running claim whose
        last sign of life (updated_at) is older than `stale_before`, or that `owner` itself holds (a
        retried task), is taken over: a killed worker never says it stopped. One transaction holding
        the archive row's lock (SQLite: the write lock taken at BEGIN), so two requests at once
        cannot both claim."""
        values = self._copy_values("restoring", {"last_error": None})
        values.update(claimed_by=owner, ready_by=None)
        with self.session() as session:
            archive_id = session.scalar(select(ArchiveRow.id).where(ArchiveRow.sha256 == sha256.lower())
                                        .with_for_update())
            if archive_id is None:
                raise CatalogError(f"archive {sha256[:12]} is not in the catalog")
            running = session.scalar(select(CopyRow).where(CopyRow.archive_id == archive_id,
                                                           CopyRow.state == "restoring"))
            stale = None
            if running is not None:
                if running.claimed_by != owner and running.updated_at >= stale_before:
                    return Claim(False, to_copy(running, sha256.lower()))
                stale = to_copy(running, sha256.lower())
                if running.backend != backend:
                    running.state, running.updated_at, running.claimed_by = "deleted", now(), None
                    running.last_error = one_line(f"restore by {stale.claimed_by} stopped without finishing;"
                                                  f" taken over by {owner}")
            insert = dialect_insert(session)
            stmt = insert(CopyRow).values(archive_id=archive_id, backend=backend, attempts=0, **values)
            session.execute(stmt.on_conflict_do_update(index_elements=["archive_id", "backend"], set_=values))
            return Claim(True, self._copy(session, archive_id, backend, sha256), stale)

    def restore_alive(self, sha256: str, backend: str, owner: str, ready_by: datetime | None = None) -> Copy | None:
        """A sign of life of `owner`'s restore (and, given, when its cold copy should be readable);
        None when the claim is no longer its own (taken over, or ended)."""
        values = {"updated_at": now(), **({"ready_by": ready_by} if ready_by else {})}
        return self._owned(sha256, backend, owner, ("restoring",), values)

    def release_restore(self, sha256: str, backend: str, owner: str, reason: str) -> Copy | None:
        """`owner`'s restore failed: its copy becomes `deleted` with why (not failed: storage_verify
        must not repair what retention had removed) and the next request may claim again. A claim
        another request has taken over meanwhile is left alone (None)."""
        values = {"state": "deleted", "updated_at": now(), "claimed_by": None, "ready_by": None,
                  "last_error": one_line(f"restore failed: {reason}")}
        return self._owned(sha256, backend, owner, ("restoring", "failed"), values)

    def _owned(self, sha256: str, backend: str, owner: str, states: Sequence[str], values: dict) -> Copy | None:
        with self.session() as session:
            archive_id = self._archive_id(session, sha256)
            stmt = update(CopyRow).where(CopyRow.archive_id == archive_id, CopyRow.backend == backend,
                                         CopyRow.state.in_(list(states)), CopyRow.claimed_by == owner)
            if session.execute(stmt.values(**values)).rowcount == 0:
                return None
            return self._copy(session, archive_id, backend, sha256)

    def verified(self, sha256: str, backend: str, when: datetime | None = None) -> Copy | None:
        """The service still has this present copy as recorded."""
        when = when or now()
        return self.transition(sha256, backend, ("present",), "present", last_verified=when)

    def verified_many(self, seen: Iterable[tuple[str, str, str | None]], when: datetime | None = None) -> None:
        """Present copies the services still hold as recorded, given as (sha256, backend, the
        service's checksum or None), written in one transaction (verify writes its pass in chunks);
        a checksum is kept only where none was recorded yet."""
        rows = [{"sha": sha.lower(), "b": backend, "cs": checksum} for sha, backend, checksum in seen]
        if not rows:
            return
        table = CopyRow.__table__
        archive_id = select(ArchiveRow.id).where(ArchiveRow.sha256 == bindparam("sha")).scalar_subquery()
        stmt = (update(table).where(table.c.archive_id == archive_id, table.c.backend == bindparam("b"),
                                    table.c.state == "present")
                .values(last_verified=when or now(), updated_at=now(),
                        checksum=func.coalesce(table.c.checksum, bindparam("cs", type_=table.c.checksum.type))))
        with self.session() as session:
            session.connection().execute(stmt, rows)

    def copy(self, sha256: str, backend: str) -> Copy | None:
        with self.session() as session:
            row = session.scalar(select(CopyRow).join(ArchiveRow).where(
                ArchiveRow.sha256 == sha256.lower(), CopyRow.backend == backend))
            return to_copy(row, sha256.lower()) if row else None

    def copy_at(self, backend: str, remote_id: str) -> Copy | None:
        """The copy a backend holds under `remote_id` (retention knows files by their remote id)."""
        with self.session() as session:
            found = session.execute(select(CopyRow, ArchiveRow.sha256).join(ArchiveRow).where(
                CopyRow.backend == backend, CopyRow.remote_id == remote_id)).first()
            return to_copy(*found) if found else None

    def copies(self, backend: str | None = None, states: Sequence[str] | None = None) -> list[Copy]:
        query = select(CopyRow, ArchiveRow.sha256).join(ArchiveRow)
        if backend is not None:
            query = query.where(CopyRow.backend == backend)
        if states is not None:
            query = query.where(CopyRow.state.in_(list(states)))
        with self.session() as session:
            return [to_copy(row, sha) for row, sha in session.execute(query.order_by(CopyRow.id))]

    def copies_to_verify(self, verified_before: datetime, backend: str | Sequence[str] | None = None,
                         limit: int = 100) -> list[Copy]:
        """Present copies not verified since `verified_before` (on `backend`: one id or several), the
        longest unverified first: a pass that stops half-way (batch limit, killed worker) is continued
        by the next one."""
        query = (select(CopyRow, ArchiveRow.sha256).join(ArchiveRow).where(
            CopyRow.state == "present",
            or_(CopyRow.last_verified.is_(None), CopyRow.last_verified < verified_before)))
        query = _on_backends(query, backend)
        query = query.order_by(CopyRow.last_verified.is_(None).desc(), CopyRow.last_verified, CopyRow.id).limit(limit)
        with self.session() as session:
            return [to_copy(row, sha) for row, sha in session.execute(query)]

    def links_ending(self, before: datetime, backend: str | Sequence[str] | None = None,
                     limit: int = 100) -> list[Copy]:
        """Present copies whose link stops working before `before` while they are kept (an S3
        signed link), the soonest first: storage_verify signs them anew."""
        query = (select(CopyRow, ArchiveRow.sha256).join(ArchiveRow).where(
            CopyRow.state == "present", CopyRow.link_expires.is_not(None), CopyRow.link_expires < before))
        query = _on_backends(query, backend)
        query = query.order_by(CopyRow.link_expires, CopyRow.id).limit(limit)
        with self.session() as session:
            return [to_copy(row, sha) for row, sha in session.execute(query)]

    def archives_to_repair(self, limit: int = 100) -> list[Archive]:
        """Archives with a failed or lost copy, or fewer copies than wanted that are present, on their
        way (pending) or where retention put them (deleted, archived, restoring): verify must not
        bring back what retention removed. The ones whose copies changed longest ago first, so an
        archive that cannot be repaired today does not keep the others waiting."""
        settled = func.sum(case((CopyRow.state.in_(SETTLED), 1), else_=0))
        broken = func.sum(case((CopyRow.state.in_(REPAIRABLE), 1), else_=0))
        ids = (select(ArchiveRow.id).outerjoin(CopyRow).group_by(ArchiveRow.id, ArchiveRow.copies_wanted)
               .having(or_(func.coalesce(settled, 0) < ArchiveRow.copies_wanted, func.coalesce(broken, 0) > 0))
               .order_by(func.max(CopyRow.updated_at), ArchiveRow.id).limit(limit))
        with self.session() as session:
            order = list(session.scalars(ids))
            rows = {r.id: r for r in session.scalars(
                select(ArchiveRow).options(selectinload(ArchiveRow.copies)).where(ArchiveRow.id.in_(order)))}
            return [to_archive(rows[i]) for i in order]

    @staticmethod
    def _copy_values(state: str, fields: dict) -> dict:
        if state not in STATES:
            raise CatalogError(f"copy state {state!r} is not one of {', '.join(STATES)}")
        unknown = sorted(set(fields) - set(COPY_FIELDS))
        if unknown:
            raise CatalogError(f"unknown copy fields {unknown} (known: {', '.join(COPY_FIELDS)})")
        naive = [k for k, v in fields.items() if isinstance(v, datetime) and v.tzinfo is None]
        if naive:
            raise CatalogError(f"copy times must be timezone-aware: {', '.join(naive)}")
        values = {"state": state, "updated_at": now(), **fields}
        if state == "present" and "last_error" not in fields:
            values["last_error"] = None
        if values.get("last_error") is not None:
            values["last_error"] = one_line(values["last_error"])
        return values

    @staticmethod
    def _archive_id(session: Session, sha256: str) -> int:
        archive_id = session.scalar(select(ArchiveRow.id).where(ArchiveRow.sha256 == sha256.lower()))
        if archive_id is None:
            raise CatalogError(f"archive {sha256[:12]} is not in the catalog: record_archive first")
        return archive_id

    @staticmethod
    def _copy(session: Session, archive_id: int, backend: str, sha256: str) -> Copy:
        row = session.scalar(select(CopyRow).where(CopyRow.archive_id == archive_id, CopyRow.backend == backend)
                             .execution_options(populate_existing=True))
        return to_copy(row, sha256.lower())

    # --- export / import --------------------------------------------------------------------

    def export_lines(self, since: datetime | None = None) -> Iterator[str]:
        from simpost.catalog.exchange import export_lines

        return export_lines(self, since)

    def import_lines(self, lines: Iterable[str]) -> ImportResult:
        from simpost.catalog.exchange import import_lines

        return import_lines(self, lines)


def _on_backends(query, backend: str | Sequence[str] | None):
    """The query narrowed to copies on `backend` (one id or several; None: all)."""
    if backend is None:
        return query
    return query.where(CopyRow.backend.in_([backend] if isinstance(backend, str) else list(backend)))
