"""deploy/citus.sql: what can be checked without a Citus cluster is checked here. Its key changes run
on plain PostgreSQL (rolled back), after which every primary and unique key holds the distribution
column and every foreign key joins on it — the two things create_distributed_table requires of a
colocated schema. The distribution calls themselves never ran here."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from alluse.store.schema import metadata
from alluse.store.schema_doc import CITUS_KEYS_BEGIN, CITUS_KEYS_END, render_citus_sql
from tests.conftest import plain_postgres_only

CITUS_SQL = Path(__file__).resolve().parents[2] / "deploy" / "citus.sql"


def test_citus_sql_is_current() -> None:
    assert CITUS_SQL.read_text() == render_citus_sql(), "deploy/citus.sql is stale: run `alluse schema-docs`"


def _keys_section() -> list[str]:
    text = CITUS_SQL.read_text()
    section = text[text.index(CITUS_KEYS_BEGIN) : text.index(CITUS_KEYS_END)]
    return [line.split("  --")[0] for line in section.splitlines() if line.startswith("ALTER TABLE")]


def _cols(rel: str, key: str) -> str:
    # A constraint's column names in key order.
    return (
        f"ARRAY(SELECT a.attname FROM unnest(c.{key}) WITH ORDINALITY k(n, i) "
        f"JOIN pg_attribute a ON a.attrelid = c.{rel} AND a.attnum = k.n ORDER BY k.i)"
    )


@pytest.mark.postgres
def test_after_the_key_changes_every_key_holds_the_distribution_column(pg: sa.Engine) -> None:
    from alluse.store.schema_doc import reference_tables

    plain_postgres_only(pg, "the cluster's schema was distributed by this script already (citus_engine)")
    reference = {t.name for t in reference_tables()}
    tables = [t.name for t in metadata.sorted_tables if t.name not in reference]
    with pg.connect() as conn:
        trans = conn.begin()
        try:
            for stmt in _keys_section():
                conn.exec_driver_sql(stmt)
            rows = conn.exec_driver_sql(
                "SELECT c.conrelid::regclass::text, c.contype, c.conname, "
                f"{_cols('conrelid', 'conkey')}, "
                "c.confrelid::regclass::text, "
                f"{_cols('confrelid', 'confkey')} "
                "FROM pg_constraint c WHERE c.conrelid = ANY(%(t)s::regclass[]) AND c.contype IN ('p', 'u', 'f') "
                "AND c.conparentid = 0",
                {"t": tables},
            ).all()
        finally:
            trans.rollback()
    checked = 0
    for table, kind, name, cols, ref_table, ref_cols in rows:
        dist = "id" if table == "portfolios" else "portfolio_id"
        if kind in ("p", "u"):
            assert dist in cols, f"{name} on {table} ({cols}) lacks {dist}"
        elif ref_table in reference:
            pass  # a reference table is on every worker: any key may point at it
        else:
            ref_dist = "id" if ref_table == "portfolios" else "portfolio_id"
            # The referencing distribution column must meet the referenced one at the same position.
            assert dist in cols and ref_dist in ref_cols, f"{name}: {cols} -> {ref_table} {ref_cols}"
            assert cols.index(dist) == ref_cols.index(ref_dist), name
        checked += 1
    assert checked > 3 * len(tables)
    # Rolled back: the database still has its original keys.
    with pg.connect() as conn:
        assert (
            conn.exec_driver_sql("SELECT count(*) FROM pg_constraint WHERE conname = 'pk_accounts'").scalar_one() == 1
        )
