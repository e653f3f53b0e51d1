"""brokerage_numbers: which portfolio holds each brokerage account at a real broker, a table of its own

Replaces the `brokerage_directory` view (of migration 0005_pg). The view read brokerage_accounts with
its owner's rights; on Citus that needs a SECURITY DEFINER function whose shard reads run as the owner
on their own connections, which Citus refuses inside a unit of work that already wrote as the
application role. This table is read by the application role itself: row-level security lets it read
every row (which portfolio holds which number; no money) and insert only its own portfolio's. Its key
makes a number unique across portfolios on PostgreSQL and, as a reference table, on Citus too.
Paper-broker accounts are left out: their numbers come from their ids.

Revision ID: 0012_brokerage_numbers
Revises: 0006_audit
Create Date: 2026-11-30 06:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from alluse.store.partitioning import SCOPE_SETTING, app_role

revision: str = "0012_brokerage_numbers"
down_revision: str | None = "0006_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "brokerage_numbers",
        sa.Column("broker", sa.String(length=20), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("portfolio_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("broker", "number", name=op.f("pk_brokerage_numbers")),
    )
    op.execute(
        "INSERT INTO brokerage_numbers (broker, number, portfolio_id) "
        "SELECT broker, number, portfolio_id FROM brokerage_accounts WHERE broker <> 'PAPER'"
    )
    op.execute("DROP VIEW brokerage_directory")
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    role = app_role()
    scope = f"NULLIF(current_setting('{SCOPE_SETTING}', true), '')::bigint"
    bind.exec_driver_sql("ALTER TABLE brokerage_numbers ENABLE ROW LEVEL SECURITY")
    bind.exec_driver_sql(f"CREATE POLICY registrations_read ON brokerage_numbers FOR SELECT TO {role} USING (true)")
    bind.exec_driver_sql(
        f"CREATE POLICY portfolio_scope ON brokerage_numbers FOR INSERT TO {role} WITH CHECK (portfolio_id = {scope})"
    )
    # No UPDATE or DELETE: a registration is never moved or released.
    bind.exec_driver_sql(f"GRANT SELECT, INSERT ON brokerage_numbers TO {role}")


def downgrade() -> None:
    op.execute(
        "CREATE VIEW brokerage_directory AS SELECT id, portfolio_id, broker, number, account_id FROM brokerage_accounts"
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql(f"GRANT SELECT ON brokerage_directory TO {app_role()}")
    op.drop_table("brokerage_numbers")
