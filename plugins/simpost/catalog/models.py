"""The catalog's tables (SQLAlchemy 2 declarative). Changing them needs a migration in migrations/versions."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (BigInteger, CheckConstraint, DateTime, ForeignKey, Integer, String, Text,
                        TypeDecorator, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from simpost.catalog.records import STATES


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every database (SQLite keeps no time zone; PostgreSQL answers in the
    session's), so times compare and serialise the same whichever catalog wrote them."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("catalog times must be timezone-aware")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    pass


class ArchiveRow(Base):
    __tablename__ = "archive"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    simulation_id: Mapped[str] = mapped_column(String(128), nullable=False, index=True)
    title: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(String(250))
    created: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    copies_wanted: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    copies: Mapped[list[CopyRow]] = relationship(back_populates="archive", order_by="CopyRow.backend")

    __table_args__ = (UniqueConstraint("sha256", name="uq_archive_sha256"),
                      CheckConstraint("copies_wanted >= 1", name="ck_archive_copies_wanted"))


class CopyRow(Base):
    __tablename__ = "copy"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    archive_id: Mapped[int] = mapped_column(ForeignKey("archive.id", ondelete="CASCADE"), nullable=False)
    backend: Mapped[str] = mapped_column(String(250), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    remote_id: Mapped[str | None] = mapped_column(Text)
    remote_name: Mapped[str | None] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(Text)
    checksum: Mapped[str | None] = mapped_column(Text)
    uploaded: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires: Mapped[datetime | None] = mapped_column(UTCDateTime)  # kept until (keep days); retention's time
    link_expires: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a signed link's own end, if earlier
    last_verified: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    # A restoring copy's claim (see Catalog.claim_restore): the request holding it, and when a copy
    # thawing on a cold storage class is expected to be readable.
    claimed_by: Mapped[str | None] = mapped_column(String(250))
    ready_by: Mapped[datetime | None] = mapped_column(UTCDateTime)
    archive: Mapped[ArchiveRow] = relationship(back_populates="copies")

    __table_args__ = (
        UniqueConstraint("archive_id", "backend", name="uq_copy_archive_backend"),
        CheckConstraint("state IN (" + ", ".join(f"'{s}'" for s in STATES) + ")", name="ck_copy_state"),
    )
