"""PostgreSQL isolation: the application role, row-level security per portfolio, the portfolio directory

Every table with a portfolio_id column (and portfolios itself) gets a policy that lets the application
role see and write only the rows of the portfolio its unit of work is scoped to (the transaction-local
setting alluse.portfolio_id, set by store/uow.scope_to). The journal and the audit log are
append-only for that role: no UPDATE or DELETE grant. `portfolio_directory` (id, name, creation_key
of every portfolio) is a view owned by the migrating role, so resolving a portfolio by name and
refusing a duplicate name work before any scope is set; `brokerage_directory` (which portfolio holds
which brokerage account number) keeps the one-to-one brokerage mapping checkable across portfolios.
Neither exposes money.

On SQLite only the view is created: an embedded single-user file has no roles.

Revision ID: 0005_pg
Revises: 0002_trades
Create Date: 2026-11-21 04:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401  (kept for revision-script symmetry)
from alembic import op

from alluse.store.partitioning import app_role, isolate

revision: str = "0005_pg"
down_revision: str | None = "0003_auth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = {"postings", "transfers", "audit_log"}


def _scoped_tables(bind: sa.Connection) -> list[str]:
    # Whatever portfolio-scoped tables exist when this runs, including those of earlier revisions.
    # Partitions are left out: the role gets no grant on them, so they are reachable only through
    # their parent and its policy.
    rows = bind.exec_driver_sql(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
        "AND (c.relname = 'portfolios' OR EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid "
        "AND a.attname = 'portfolio_id' AND NOT a.attisdropped)) ORDER BY 1"
    )
    return [r[0] for r in rows]


def upgrade() -> None:
    op.execute("CREATE VIEW portfolio_directory AS SELECT id, name, creation_key FROM portfolios")
    op.execute(
        "CREATE VIEW brokerage_directory AS SELECT id, portfolio_id, broker, number, account_id FROM brokerage_accounts"
    )
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    role = app_role()
    bind.exec_driver_sql(
        f"DO $$ BEGIN CREATE ROLE {role} NOLOGIN NOSUPERUSER NOBYPASSRLS; "
        "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    )
    bind.exec_driver_sql(f"GRANT USAGE ON SCHEMA public TO {role}")
    for name in _scoped_tables(bind):
        isolate(bind, name, append_only=name in APPEND_ONLY)
    # Bulk paths reserve id blocks with nextval.
    bind.exec_driver_sql(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}")
    # ... and, on a busy table, hold off other inserts while they draw (repo.allocate_ids). LOCK TABLE
    # in that mode needs UPDATE or DELETE, which the role lacks on the append-only journal; this
    # function runs as the owner and takes only that lock, only on a table of this schema.
    # (%% is the driver's escape for a literal %.)
    bind.exec_driver_sql(
        "CREATE FUNCTION alluse_hold_inserts(tbl text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER "
        "SET search_path = pg_catalog, public AS $$ BEGIN "
        "IF to_regclass(format('public.%%I', tbl)) IS NULL THEN RAISE EXCEPTION 'no table %%', tbl; END IF; "
        "EXECUTE format('LOCK TABLE public.%%I IN SHARE ROW EXCLUSIVE MODE', tbl); END $$"
    )
    bind.exec_driver_sql("REVOKE ALL ON FUNCTION alluse_hold_inserts(text) FROM PUBLIC")
    bind.exec_driver_sql(f"GRANT EXECUTE ON FUNCTION alluse_hold_inserts(text) TO {role}")
    bind.exec_driver_sql(f"GRANT SELECT ON portfolio_directory, brokerage_directory, alembic_version TO {role}")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        role = app_role()
        for name in _scoped_tables(bind):
            bind.exec_driver_sql(f"DROP POLICY IF EXISTS portfolio_scope ON {name}")
            bind.exec_driver_sql(f"ALTER TABLE {name} DISABLE ROW LEVEL SECURITY")
        bind.exec_driver_sql(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
        bind.exec_driver_sql(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}")
        bind.exec_driver_sql(f"REVOKE USAGE ON SCHEMA public FROM {role}")
        bind.exec_driver_sql("DROP FUNCTION alluse_hold_inserts(text)")
    op.execute("DROP VIEW brokerage_directory")
    op.execute("DROP VIEW portfolio_directory")
