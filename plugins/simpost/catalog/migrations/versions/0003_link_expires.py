"""link_expires: when a copy's signed link stops working, apart from until when the copy is kept

An S3 presigned link lives at most 7 days while keep days may be longer: `expires` is the copy's
keep-until (what retention goes by) and `link_expires` the link's own end. Copies written before
this held the signed link's end in `expires`; it is copied to `link_expires` (their keep days
are not known, so `expires` stays as it was).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

from simpost.catalog.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("copy") as batch:  # SQLite cannot ALTER much; batch mode copies the table
        batch.add_column(sa.Column("link_expires", UTCDateTime))
    copy = sa.table("copy", sa.column("link", sa.Text), sa.column("expires", UTCDateTime),
                    sa.column("link_expires", UTCDateTime))
    op.execute(copy.update().where(copy.c.link.contains("X-Amz-Signature="), copy.c.expires.is_not(None))
               .values(link_expires=copy.c.expires))


def downgrade() -> None:
    with op.batch_alter_table("copy") as batch:
        batch.drop_column("link_expires")
