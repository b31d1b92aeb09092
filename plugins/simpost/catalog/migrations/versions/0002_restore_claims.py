"""restore claims: who holds a restoring copy, and when a cold copy is expected to be readable

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

from simpost.catalog.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("copy") as batch:  # SQLite cannot ALTER much; batch mode copies the table
        batch.add_column(sa.Column("claimed_by", sa.String(250)))
        batch.add_column(sa.Column("ready_by", UTCDateTime))


def downgrade() -> None:
    with op.batch_alter_table("copy") as batch:
        batch.drop_column("ready_by")
        batch.drop_column("claimed_by")
