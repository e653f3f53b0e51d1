"""ibkr: broker statement rows (exactly-once by the broker's ids) and order intents

Revision ID: 0010_ibkr
Revises: 0009_newcomer
Create Date: 2026-11-30 00:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from alluse.store.partitioning import app_role, isolate

revision: str = "0010_ibkr"
down_revision: str | None = "0009_newcomer"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "broker_rows",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("portfolio_id", Id, nullable=False),
        sa.Column("account_id", Id, nullable=False),
        sa.Column("broker", sa.String(length=20), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("broker_key", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=12), nullable=False),
        sa.Column("booked_on", sa.Date(), nullable=False),
        sa.Column("cash_cents", sa.BigInteger(), nullable=False),
        sa.Column("fill_id", Id, nullable=True),
        sa.Column("transfer_id", Id, nullable=True),
        sa.Column("audit_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id", "portfolio_id"],
            ["accounts.id", "accounts.portfolio_id"],
            name=op.f("fk_broker_rows_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["fill_id", "portfolio_id"], ["fills.id", "fills.portfolio_id"], name=op.f("fk_broker_rows_fill_id_fills")
        ),
        sa.ForeignKeyConstraint(
            ["transfer_id", "portfolio_id"],
            ["transfers.id", "transfers.portfolio_id"],
            name=op.f("fk_broker_rows_transfer_id_transfers"),
        ),
        sa.ForeignKeyConstraint(
            ["portfolio_id"], ["portfolios.id"], name=op.f("fk_broker_rows_portfolio_id_portfolios")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broker_rows")),
        sa.UniqueConstraint("broker", "number", "broker_key", name=op.f("uq_broker_rows_broker_number_broker_key")),
    )
    op.create_index(op.f("ix_broker_rows_account_id_booked_on"), "broker_rows", ["account_id", "booked_on"])
    op.create_index(op.f("ix_broker_rows_transfer_id"), "broker_rows", ["transfer_id"])
    op.create_index("ix_fills_transfer_id", "fills", ["transfer_id"])
    op.create_table(
        "order_intents",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("portfolio_id", Id, nullable=False),
        sa.Column("account_id", Id, nullable=False),
        sa.Column("action", sa.String(length=4), nullable=False),
        sa.Column("symbol", sa.String(length=21), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("limit_e4", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("broker", sa.String(length=20), nullable=False),
        sa.Column("check_result", sa.Text(), nullable=False),
        sa.Column("fill_id", Id, nullable=True),
        sa.Column("audit_seq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('REFUSED', 'FILLED')", name=op.f("ck_order_intents_status")),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_order_intents_positive")),
        sa.ForeignKeyConstraint(
            ["account_id", "portfolio_id"],
            ["accounts.id", "accounts.portfolio_id"],
            name=op.f("fk_order_intents_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["fill_id", "portfolio_id"],
            ["fills.id", "fills.portfolio_id"],
            name=op.f("fk_order_intents_fill_id_fills"),
        ),
        sa.ForeignKeyConstraint(
            ["portfolio_id"], ["portfolios.id"], name=op.f("fk_order_intents_portfolio_id_portfolios")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_intents")),
    )
    op.create_index(op.f("ix_order_intents_account_id_created_at"), "order_intents", ["account_id", "created_at"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for name in ("broker_rows", "order_intents"):
            isolate(bind, name, append_only=True)
        bind.exec_driver_sql(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {app_role()}")


def downgrade() -> None:
    op.drop_index("ix_fills_transfer_id", table_name="fills")
    op.drop_index(op.f("ix_broker_rows_transfer_id"), table_name="broker_rows")
    op.drop_index(op.f("ix_order_intents_account_id_created_at"), table_name="order_intents")
    op.drop_table("order_intents")
    op.drop_index(op.f("ix_broker_rows_account_id_booked_on"), table_name="broker_rows")
    op.drop_table("broker_rows")
