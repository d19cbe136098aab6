"""Alembic environment: run by ``services.desk.storage.migrate`` on the service's own connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from services.desk.models import Base

config = context.config
connection = config.attributes.get("connection")
target = Base.metadata

if connection is None:  # `alembic -x url=...` from a shell
    engine = create_engine(context.get_x_argument(as_dictionary=True)["url"])
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=target, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
