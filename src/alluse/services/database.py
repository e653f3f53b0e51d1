"""Opening the database the use cases run on, and what the server's readiness probe asks of it."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy.engine import Engine

from alluse.store.db import alembic_config, make_engine, migrate, schema_revision


def open_database(url: str) -> Engine:
    """An engine on `url` whose schema is the newest (migrated first if it is not)."""
    engine = make_engine(url)
    migrate(engine)
    return engine


@lru_cache
def newest_revision() -> str | None:
    """The newest migration this code knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def schema_revision_of(engine: Engine) -> str | None:
    """The revision the database stands at (None before the first migration); raises when the
    database does not answer."""
    return schema_revision(engine)
