"""Hash partitioning and row-level isolation on PostgreSQL, as small helpers migrations call.

A high-volume table is declared in store/schema.py with `**hash_partitioned("account_id")` (per-account
tables) or `**hash_partitioned("portfolio_id")` (per-portfolio tables). Its migration creates it with
`create_partitioned(op, name, *columns_and_constraints)` instead of `op.create_table`: on PostgreSQL
that adds the partition key (and `portfolio_id`, the Citus distribution column) to the primary key —
PostgreSQL requires the partition key in every unique key of a partitioned table — and creates the
partitions; on SQLite it is a plain `op.create_table`, so the embedded store keeps its rowid keys.

The partition count is chosen at install: ALLUSE_PARTITIONS (default 16), read when the migration runs.
"""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa

from alluse.domain.errors import InvalidInput

PARTITIONS_ENV = "ALLUSE_PARTITIONS"
DEFAULT_PARTITIONS = 16
MAX_PARTITIONS = 1024

# The role the application connects as in production: no superuser, no BYPASSRLS, no table ownership.
APP_ROLE_ENV = "ALLUSE_APP_ROLE"
DEFAULT_APP_ROLE = "alluse_app"
# Set per unit of work (SET LOCAL: transaction-local, and repeated on Citus workers); the policies read it.
SCOPE_SETTING = "alluse.portfolio_id"


def hash_partitioned(column: str) -> dict[str, Any]:
    """Table keyword arguments declaring HASH partitioning on `column` (PostgreSQL only). Only the
    `info` entry, read by the migrations' tests and the schema docs: the migrations create the
    partitions. A `postgresql_partition_by` argument here would make SQLAlchemy import its whole
    PostgreSQL dialect (asyncpg's included) on every start, SQLite too, for a CREATE TABLE that
    `metadata` never issues."""
    return {"info": {"partition_by": column}}


def partition_key(table: sa.Table) -> str | None:
    return table.info.get("partition_by")


def partition_count() -> int:
    raw = os.environ.get(PARTITIONS_ENV, "").strip() or str(DEFAULT_PARTITIONS)
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PARTITIONS:
        raise InvalidInput(f"{PARTITIONS_ENV} must be a whole number from 1 to {MAX_PARTITIONS}, not {raw!r}")
    return int(raw)


def app_role() -> str:
    role = os.environ.get(APP_ROLE_ENV, "").strip() or DEFAULT_APP_ROLE
    if not role.replace("_", "").isalnum() or not role[0].isalpha():
        raise InvalidInput(f"{APP_ROLE_ENV} must be a plain identifier (letters, digits, _), not {role!r}")
    return role.lower()


def postgres_primary_key(logical: list[str], by: str) -> list[str]:
    """The primary key a partitioned table gets on PostgreSQL: the logical key, then the partition key
    and the distribution column if they are not already part of it."""
    out = list(logical)
    for col in (by, "portfolio_id"):
        if col not in out:
            out.append(col)
    return out


def create_partitioned(op: Any, name: str, *items: Any, by: str, **kw: Any) -> None:
    """`op.create_table`, hash-partitioned on `by` when the database is PostgreSQL."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        op.create_table(name, *items, **kw)
        return
    pk = next(i for i in items if isinstance(i, sa.PrimaryKeyConstraint))
    logical = [c if isinstance(c, str) else c.name for c in pk._pending_colargs if c is not None]
    items = tuple(
        sa.PrimaryKeyConstraint(*postgres_primary_key(logical, by), name=pk.name) if i is pk else i for i in items
    )
    op.create_table(name, *items, postgresql_partition_by=f"HASH ({by})", **kw)
    create_partitions(bind, name)


def create_partitions(bind: sa.Connection, name: str, count: int | None = None) -> None:
    n = count or partition_count()
    for i in range(n):
        bind.exec_driver_sql(
            f"CREATE TABLE {name}_p{i:03d} PARTITION OF {name} FOR VALUES WITH (MODULUS {n}, REMAINDER {i})"
        )


def isolate(bind: sa.Connection, name: str, *, append_only: bool = False, role: str | None = None) -> None:
    """Row-level security on a portfolio-scoped table: the application role sees and writes only the
    rows of the portfolio its unit of work is scoped to. Unscoped, it sees nothing. An append-only
    table (the journal, the audit log) gets no UPDATE or DELETE grant at all."""
    role = role or app_role()
    scope = f"NULLIF(current_setting('{SCOPE_SETTING}', true), '')::bigint"
    column = "id" if name == "portfolios" else "portfolio_id"
    bind.exec_driver_sql(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY")
    bind.exec_driver_sql(f"DROP POLICY IF EXISTS portfolio_scope ON {name}")
    bind.exec_driver_sql(
        f"CREATE POLICY portfolio_scope ON {name} TO {role} USING ({column} = {scope}) WITH CHECK ({column} = {scope})"
    )
    bind.exec_driver_sql(f"GRANT SELECT, INSERT{'' if append_only else ', UPDATE, DELETE'} ON {name} TO {role}")
