"""archives and their copies

Revision ID: 0001
Revises:
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

from simpost.catalog.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

STATES = ("pending", "present", "failed", "lost", "deleted", "archived", "restoring")


def upgrade() -> None:
    op.create_table(
        "archive",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("simulation_id", sa.String(128), nullable=False),
        sa.Column("title", sa.Text),
        sa.Column("run_id", sa.String(250)),
        sa.Column("created", UTCDateTime, nullable=False),
        sa.Column("copies_wanted", sa.Integer, nullable=False),
        sa.UniqueConstraint("sha256", name="uq_archive_sha256"),
        sa.CheckConstraint("copies_wanted >= 1", name="ck_archive_copies_wanted"),
    )
    op.create_index("ix_archive_simulation_id", "archive", ["simulation_id"])
    op.create_index("ix_archive_created", "archive", ["created"])
    op.create_table(
        "copy",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("archive_id", sa.Integer, sa.ForeignKey("archive.id", ondelete="CASCADE"), nullable=False),
        sa.Column("backend", sa.String(250), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("remote_id", sa.Text),
        sa.Column("remote_name", sa.Text),
        sa.Column("link", sa.Text),
        sa.Column("checksum", sa.Text),
        sa.Column("uploaded", UTCDateTime),
        sa.Column("expires", UTCDateTime),
        sa.Column("last_verified", UTCDateTime),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("archive_id", "backend", name="uq_copy_archive_backend"),
        sa.CheckConstraint("state IN (" + ", ".join(f"'{s}'" for s in STATES) + ")", name="ck_copy_state"),
    )
    op.create_index("ix_copy_state", "copy", ["state"])
    op.create_index("ix_copy_updated_at", "copy", ["updated_at"])


def downgrade() -> None:
    op.drop_table("copy")
    op.drop_table("archive")
