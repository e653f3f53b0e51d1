"""lifecycle: actions, earmarks, events outbox

Revision ID: 0004_lifecycle
Revises: 0002b_trades_indexes
Create Date: 2026-11-21 05:28:32.076947
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from alluse.store.partitioning import app_role, isolate

LIFECYCLE_TABLES = ("lifecycle_actions", "earmarks", "events")


revision: str = "0004_lifecycle"
down_revision: str | None = "0002b_trades_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lifecycle_actions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("portfolio_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("rule", sa.String(length=12), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=True),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("group_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("audit_seq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "rule IN ('GEN_FORK', 'REV_FORK', 'MERGE', 'REINVEST')", name=op.f("ck_lifecycle_actions_rule")
        ),
        sa.ForeignKeyConstraint(
            ["account_id", "portfolio_id"],
            ["accounts.id", "accounts.portfolio_id"],
            name=op.f("fk_lifecycle_actions_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["group_id", "portfolio_id"],
            ["account_groups.id", "account_groups.portfolio_id"],
            name=op.f("fk_lifecycle_actions_group_id_account_groups"),
        ),
        sa.ForeignKeyConstraint(
            ["portfolio_id"], ["portfolios.id"], name=op.f("fk_lifecycle_actions_portfolio_id_portfolios")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lifecycle_actions")),
        sa.UniqueConstraint("id", "portfolio_id", name=op.f("uq_lifecycle_actions_id_portfolio_id")),
        sa.UniqueConstraint(
            "portfolio_id", "idempotency_key", name=op.f("uq_lifecycle_actions_portfolio_id_idempotency_key")
        ),
    )
    with op.batch_alter_table("lifecycle_actions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lifecycle_actions_account_id_rule"), ["account_id", "rule"], unique=False)

    op.create_table(
        "earmarks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("portfolio_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("purpose", sa.String(length=12), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("action_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("reference", sa.String(length=200), server_default="", nullable=False),
        sa.Column("audit_seq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "purpose IN ('TAX_RESERVE', 'CONTRACTS', 'SHARES', 'LEAPS')", name=op.f("ck_earmarks_purpose")
        ),
        sa.CheckConstraint("amount_cents <> 0", name=op.f("ck_earmarks_non_zero")),
        sa.ForeignKeyConstraint(
            ["account_id", "portfolio_id"],
            ["accounts.id", "accounts.portfolio_id"],
            name=op.f("fk_earmarks_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["action_id", "portfolio_id"],
            ["lifecycle_actions.id", "lifecycle_actions.portfolio_id"],
            name=op.f("fk_earmarks_action_id_lifecycle_actions"),
        ),
        sa.ForeignKeyConstraint(["portfolio_id"], ["portfolios.id"], name=op.f("fk_earmarks_portfolio_id_portfolios")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_earmarks")),
    )
    with op.batch_alter_table("earmarks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_earmarks_account_id"), ["account_id"], unique=False)

    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("portfolio_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("action_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("audit_seq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id", "portfolio_id"],
            ["accounts.id", "accounts.portfolio_id"],
            name=op.f("fk_events_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["action_id", "portfolio_id"],
            ["lifecycle_actions.id", "lifecycle_actions.portfolio_id"],
            name=op.f("fk_events_action_id_lifecycle_actions"),
        ),
        sa.ForeignKeyConstraint(["portfolio_id"], ["portfolios.id"], name=op.f("fk_events_portfolio_id_portfolios")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # Row-level security and grants for the application role, as 0005_pg gives the earlier tables;
        # all three tables are append-only.
        for name in LIFECYCLE_TABLES:
            isolate(bind, name, append_only=True)
        bind.exec_driver_sql(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {app_role()}")


def downgrade() -> None:
    op.drop_table("events")
    with op.batch_alter_table("earmarks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_earmarks_account_id"))

    op.drop_table("earmarks")
    with op.batch_alter_table("lifecycle_actions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lifecycle_actions_account_id_rule"))

    op.drop_table("lifecycle_actions")
