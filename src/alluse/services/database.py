"""Opening the database the use cases run on, what the server's readiness probe asks of it, and the
documents generated from its schema."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from sqlalchemy.engine import Engine

from alluse.domain.errors import InvalidInput
from alluse.store.db import alembic_config, ensure_schema, make_engine, schema_revision


def open_database(url: str) -> Engine:
    """An engine on `url` whose schema is the newest (migrated first if it is not)."""
    engine = make_engine(url)
    ensure_schema(engine)
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


def write_schema_docs(root: Path, postgres_url: str) -> Iterator[Path]:
    """Regenerate docs/data-model.md, deploy/citus.sql and deploy/schema.sql under `root`, yielding
    each file as it is written. deploy/schema.sql is PostgreSQL's own dump, so it needs a server."""
    from alluse.store.schema_doc import dump_postgres_schema, render_citus_sql, update_data_model

    doc = root / "docs" / "data-model.md"
    doc.write_text(update_data_model(doc))
    yield doc
    citus = root / "deploy" / "citus.sql"
    citus.write_text(render_citus_sql())
    yield citus
    if not postgres_url.startswith("postgresql"):
        raise InvalidInput("deploy/schema.sql needs PostgreSQL: pass --url postgresql+psycopg://… (data-model.md done)")
    sql = root / "deploy" / "schema.sql"
    sql.write_text(dump_postgres_schema(postgres_url))
    yield sql
