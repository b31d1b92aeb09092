"""Alembic environment: the catalog applies its migrations itself, on the connection it opened
(simpost.catalog.schema.upgrade); there is no alembic.ini and no command-line use."""
from alembic import context

from simpost.catalog.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
