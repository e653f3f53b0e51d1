"""The migrations, the Core metadata and deploy/schema.sql agree."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from alluse.store.partitioning import DEFAULT_PARTITIONS, PARTITIONS_ENV
from alluse.store.schema import metadata
from alluse.store.schema_doc import dump_postgres_schema

SCHEMA_SQL = Path(__file__).resolve().parents[2] / "deploy" / "schema.sql"


def test_migrations_create_exactly_the_metadata(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": _not_a_partition})
        diff = compare_metadata(ctx, metadata)
    assert diff == []


def _not_a_partition(obj, name, type_, reflected, compare_to) -> bool:  # type: ignore[no-untyped-def]
    # Partitions (postings_p000 …) and their indexes are PostgreSQL's copies of a declared table.
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return not (reflected and table is not None and re.fullmatch(r".+_p\d{3}", table.name))


@pytest.mark.postgres
def test_deploy_schema_sql_is_what_the_migrations_produce(pg_engine: sa.Engine) -> None:
    if os.environ.get(PARTITIONS_ENV, str(DEFAULT_PARTITIONS)) != str(DEFAULT_PARTITIONS):
        pytest.fail(f"{PARTITIONS_ENV} must be unset (or {DEFAULT_PARTITIONS}) for this comparison")
    current = dump_postgres_schema(pg_engine.url.render_as_string(hide_password=False))
    assert "PARTITION BY HASH (account_id)" in current and "CREATE POLICY portfolio_scope" in current
    assert SCHEMA_SQL.read_text() == current, "deploy/schema.sql is stale: run `alluse schema-docs --url …`"
