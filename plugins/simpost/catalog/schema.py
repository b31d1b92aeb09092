"""Opening a catalog database: engine settings per dialect and the migrations shipped in this package."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url

MIGRATIONS = Path(__file__).with_name("migrations")
# Any constant: the PostgreSQL advisory lock that lets one opener at a time migrate.
_MIGRATION_LOCK = 0x51A9057
SQLITE_BUSY_SECONDS = 60


class CatalogError(Exception):
    """The catalog cannot do what was asked; the message names what and never carries a password."""


def engine_for(url: str) -> Engine:
    """An engine whose transactions are safe with several workers writing at once."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_SECONDS})
        _immediate_transactions(engine)
        return engine
    if parsed.get_backend_name() != "postgresql":
        raise CatalogError(f"catalog database {parsed.get_backend_name()!r} is not supported (sqlite, postgresql)")
    return create_engine(parsed, pool_pre_ping=True)


def _immediate_transactions(engine: Engine) -> None:
    """SQLite: every transaction takes the write lock when it begins (BEGIN IMMEDIATE), so two
    workers queue on the busy timeout instead of one failing when its read lock cannot upgrade;
    DDL runs inside the transaction too, so a migration is all or nothing."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # the driver's own BEGIN would come too late
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        # WAL with synchronous NORMAL: a crash never corrupts the catalog; a power cut may lose the
        # last commits, which verify and the next upload write again. FULL costs an fsync per commit.
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    @event.listens_for(engine, "begin")
    def _begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _config(connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def upgrade(engine: Engine) -> None:
    """Bring the database to this package's newest schema; two openers at once migrate once."""
    head = head_revision()
    with engine.begin() as connection:
        if MigrationContext.configure(connection).get_current_revision() == head:
            return
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
            if MigrationContext.configure(connection).get_current_revision() == head:
                return
        command.upgrade(_config(connection), "head")
