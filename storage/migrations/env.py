"""Alembic environment: runs on a connection handed over by storage.schema."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from storage.schema import load_tables

load_tables()

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `linli db upgrade` (storage.schema)")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
