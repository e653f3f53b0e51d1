"""The migrations, the Core metadata and deploy/schema.sql agree."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from alluse.store.partitioning import DEFAULT_PARTITIONS, PARTITIONS_ENV, partition_key, postgres_primary_key
from alluse.store.schema import metadata
from alluse.store.schema_doc import dump_postgres_schema
from tests.conftest import plain_postgres_only

SCHEMA_SQL = Path(__file__).resolve().parents[2] / "deploy" / "schema.sql"


def test_migrations_create_exactly_the_metadata(engine: sa.Engine) -> None:
    if engine.dialect.name == "postgresql":
        plain_postgres_only(engine, "deploy/citus.sql rewrites the keys the migrations create, by design")
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": _not_a_partition})
        diff = compare_metadata(ctx, metadata)
    assert [d for d in diff if not _same_as_partitioned_pk(d)] == []


def _same_as_partitioned_pk(d: tuple) -> bool:
    # PostgreSQL drops a UNIQUE that repeats the primary key; on a partitioned table the PK there is
    # (id, partition key, portfolio_id), which is what such a unique (a foreign-key target) names.
    if d[0] != "add_constraint" or not isinstance(d[1], sa.UniqueConstraint):
        return False
    table = metadata.tables[d[1].table.name]
    by = partition_key(table)
    cols = [c.name for c in d[1].columns]
    return by is not None and set(cols) == set(postgres_primary_key([c.name for c in table.primary_key], by))


def _not_a_partition(obj, name, type_, reflected, compare_to) -> bool:  # type: ignore[no-untyped-def]
    # Partitions (postings_p000 …), their indexes and the per-partition foreign keys PostgreSQL adds
    # under a reference to a partitioned table are its own copies of what the schema declares.
    if not reflected:
        return True
    tables = [obj] if type_ == "table" else [getattr(obj, "table", None)]
    if type_ == "foreign_key_constraint":
        tables.append(obj.referred_table)
    return not any(t is not None and re.fullmatch(r".+_p\d{3}", t.name) for t in tables)


@pytest.mark.postgres
def test_deploy_schema_sql_is_what_the_migrations_produce(pg_engine: sa.Engine) -> None:
    if os.environ.get(PARTITIONS_ENV, str(DEFAULT_PARTITIONS)) != str(DEFAULT_PARTITIONS):
        pytest.fail(f"{PARTITIONS_ENV} must be unset (or {DEFAULT_PARTITIONS}) for this comparison")
    current = dump_postgres_schema(pg_engine.url.render_as_string(hide_password=False))
    assert "PARTITION BY HASH (account_id)" in current and "CREATE POLICY portfolio_scope" in current
    assert SCHEMA_SQL.read_text() == current, "deploy/schema.sql is stale: run `alluse schema-docs --url …`"
