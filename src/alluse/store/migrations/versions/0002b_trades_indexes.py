"""trades: indexes for the tax-year report, wash-sale look-ups and dividend queries

Revision ID: 0002b_trades_indexes
Revises: 0005_pg
Create Date: 2026-11-21 05:05:00

0002_trades was merged before these were measured; they replace two of its indexes and add one.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002b_trades_indexes"
down_revision: str | None = "0005_pg"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fills_portfolio_id_week_start"))
        batch_op.create_index(
            batch_op.f("ix_fills_portfolio_id_action_trade_date"),
            ["portfolio_id", "action", "trade_date"],
            unique=False,
        )
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lots_instrument_id_opened_on"), ["instrument_id", "opened_on"], unique=False
        )
    with op.batch_alter_table("lot_closes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lot_closes_account_id_closed_on"))
        batch_op.create_index(
            batch_op.f("ix_lot_closes_account_id_closed_on_realized_term_gain_cents"),
            ["account_id", "closed_on", "realized", "term", "gain_cents"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("lot_closes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lot_closes_account_id_closed_on_realized_term_gain_cents"))
        batch_op.create_index(
            batch_op.f("ix_lot_closes_account_id_closed_on"), ["account_id", "closed_on"], unique=False
        )
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lots_instrument_id_opened_on"))
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fills_portfolio_id_action_trade_date"))
        batch_op.create_index(
            batch_op.f("ix_fills_portfolio_id_week_start"), ["portfolio_id", "week_start"], unique=False
        )
