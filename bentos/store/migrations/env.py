"""Alembic environment: the URL comes from the caller (bentos.store.db.migrate), never from a file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

from bentos.store import models, money_models, notify_models, session_models, trust_models  # noqa: F401

config = context.config
target_metadata = models.Base.metadata


def _include(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """The search index (FTS5 tables, the tsvector) is made by migration 0009, not the ORM: autogenerate leaves it."""
    return not (name or "").startswith("persona_search")


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,
            include_object=_include,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = engine_from_config(
        config.get_section(config.config_ini_section) or {}, prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with engine.connect() as conn:
        context.configure(
            connection=conn, target_metadata=target_metadata, render_as_batch=True, include_object=_include
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations()
