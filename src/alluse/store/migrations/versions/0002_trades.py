"""trades: instruments, fills, lots, tax ledger, marks, weeks, alerts

Revision ID: 0002_trades
Revises: 0001
Create Date: 2026-11-21 04:36:18.811270
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from alluse.store.partitioning import create_partitioned

revision: str = "0002_trades"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "instruments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("portfolio_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("symbol", sa.String(length=21), nullable=False),
        sa.Column("kind", sa.String(length=6), nullable=False),
        sa.Column("underlying", sa.String(length=6), nullable=False),
        sa.Column("put_call", sa.String(length=1), nullable=True),
        sa.Column("strike_e4", sa.BigInteger(), nullable=True),
        sa.Column("expiry", sa.Date(), nullable=True),
        sa.Column("multiplier", sa.Integer(), nullable=False),
        sa.CheckConstraint("(kind = 'OPTION') = (put_call IS NOT NULL)", name=op.f("ck_instruments_option_has_right")),
        sa.CheckConstraint("kind IN ('STOCK', 'OPTION')", name=op.f("ck_instruments_kind")),
        sa.ForeignKeyConstraint(
            ["portfolio_id"], ["portfolios.id"], name=op.f("fk_instruments_portfolio_id_portfolios")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instruments")),
        sa.UniqueConstraint("id", "portfolio_id", name=op.f("uq_instruments_id_portfolio_id")),
        sa.UniqueConstraint("portfolio_id", "symbol", name=op.f("uq_instruments_portfolio_id_symbol")),
    )
    op.create_table(
        "tax_settings",
        sa.Column("portfolio_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("short_term_bps", sa.Integer(), nullable=False),
        sa.Column("long_term_bps", sa.Integer(), nullable=False),
        sa.Column("dividend_bps", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["portfolio_id"], ["portfolios.id"], name=op.f("fk_tax_settings_portfolio_id_portfolios")
        ),
        sa.PrimaryKeyConstraint("portfolio_id", name=op.f("pk_tax_settings")),
    )
    op.create_table(
        "weeks",
        sa.Column("portfolio_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("predicted", sa.String(length=5), nullable=True),
        sa.Column("confirmed", sa.String(length=5), nullable=True),
        sa.CheckConstraint("confirmed IN ('GREEN', 'RED', 'CHOP')", name=op.f("ck_weeks_confirmed")),
        sa.CheckConstraint("predicted IN ('GREEN', 'RED', 'CHOP')", name=op.f("ck_weeks_predicted")),
        sa.ForeignKeyConstraint(["portfolio_id"], ["portfolios.id"], name=op.f("fk_weeks_portfolio_id_portfolios")),
        sa.PrimaryKeyConstraint("portfolio_id", "week_start", name=op.f("pk_weeks")),
    )
    op.create_table(
        "marks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("portfolio_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("instrument_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("price_e4", sa.BigInteger(), nullable=False),
        sa.Column("audit_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instrument_id", "portfolio_id"],
            ["instruments.id", "instruments.portfolio_id"],
            name=op.f("fk_marks_instrument_id_instruments"),
        ),
        sa.ForeignKeyConstraint(["portfolio_id"], ["portfolios.id"], name=op.f("fk_marks_portfolio_id_portfolios")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_marks")),
    )
    op.create_index(op.f("ix_marks_instrument_id_as_of"), "marks", ["instrument_id", "as_of"], unique=False)
    op.create_table(
        "alerts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("portfolio_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("message", sa.String(length=300), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id", "portfolio_id"],
            ["accounts.id", "accounts.portfolio_id"],
            name=op.f("fk_alerts_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(["portfolio_id"], ["portfolios.id"], name=op.f("fk_alerts_portfolio_id_portfolios")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index(
        op.f("ix_alerts_account_id_kind_cleared_at"), "alerts", ["account_id", "kind", "cleared_at"], unique=False
    )
    op.create_table(
        "fills",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("portfolio_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("instrument_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("price_e4", sa.BigInteger(), nullable=False),
        sa.Column("commission_cents", sa.BigInteger(), nullable=False),
        sa.Column("cash_cents", sa.BigInteger(), nullable=False),
        sa.Column("trade_date", sa.Date(), nullable=False),
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("transfer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("audit_seq", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "quantity >= 0 AND commission_cents >= 0 AND price_e4 >= 0", name=op.f("ck_fills_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["account_id", "portfolio_id"],
            ["accounts.id", "accounts.portfolio_id"],
            name=op.f("fk_fills_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["instrument_id", "portfolio_id"],
            ["instruments.id", "instruments.portfolio_id"],
            name=op.f("fk_fills_instrument_id_instruments"),
        ),
        sa.ForeignKeyConstraint(["portfolio_id"], ["portfolios.id"], name=op.f("fk_fills_portfolio_id_portfolios")),
        sa.ForeignKeyConstraint(
            ["transfer_id", "portfolio_id"],
            ["transfers.id", "transfers.portfolio_id"],
            name=op.f("fk_fills_transfer_id_transfers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fills")),
        sa.UniqueConstraint("id", "portfolio_id", name=op.f("uq_fills_id_portfolio_id")),
    )
    op.create_index(op.f("ix_fills_account_id_trade_date"), "fills", ["account_id", "trade_date"], unique=False)
    op.create_index(op.f("ix_fills_portfolio_id_week_start"), "fills", ["portfolio_id", "week_start"], unique=False)
    create_partitioned(
        op,
        "positions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("portfolio_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("instrument_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("mark_e4", sa.BigInteger(), nullable=False),
        sa.Column("marked_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id", "portfolio_id"],
            ["accounts.id", "accounts.portfolio_id"],
            name=op.f("fk_positions_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["instrument_id", "portfolio_id"],
            ["instruments.id", "instruments.portfolio_id"],
            name=op.f("fk_positions_instrument_id_instruments"),
        ),
        sa.ForeignKeyConstraint(["portfolio_id"], ["portfolios.id"], name=op.f("fk_positions_portfolio_id_portfolios")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_positions")),
        sa.UniqueConstraint("account_id", "instrument_id", name=op.f("uq_positions_account_id_instrument_id")),
        by="account_id",
    )
    op.create_table(
        "tax_payments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("portfolio_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tax_year", sa.Integer(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.Column("transfer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.CheckConstraint("amount_cents > 0", name=op.f("ck_tax_payments_positive")),
        sa.ForeignKeyConstraint(
            ["account_id", "portfolio_id"],
            ["accounts.id", "accounts.portfolio_id"],
            name=op.f("fk_tax_payments_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["portfolio_id"], ["portfolios.id"], name=op.f("fk_tax_payments_portfolio_id_portfolios")
        ),
        sa.ForeignKeyConstraint(
            ["transfer_id", "portfolio_id"],
            ["transfers.id", "transfers.portfolio_id"],
            name=op.f("fk_tax_payments_transfer_id_transfers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tax_payments")),
    )
    create_partitioned(
        op,
        "lots",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("portfolio_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("instrument_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("open_fill_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("side", sa.String(length=5), nullable=False),
        sa.Column("opened_on", sa.Date(), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("open_cash_cents", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("remaining_cash_cents", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("side IN ('LONG', 'SHORT')", name=op.f("ck_lots_side")),
        sa.CheckConstraint("remaining >= 0 AND remaining <= quantity AND quantity > 0", name=op.f("ck_lots_remaining")),
        sa.ForeignKeyConstraint(
            ["account_id", "portfolio_id"],
            ["accounts.id", "accounts.portfolio_id"],
            name=op.f("fk_lots_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["instrument_id", "portfolio_id"],
            ["instruments.id", "instruments.portfolio_id"],
            name=op.f("fk_lots_instrument_id_instruments"),
        ),
        sa.ForeignKeyConstraint(
            ["open_fill_id", "portfolio_id"],
            ["fills.id", "fills.portfolio_id"],
            name=op.f("fk_lots_open_fill_id_fills"),
        ),
        sa.ForeignKeyConstraint(["portfolio_id"], ["portfolios.id"], name=op.f("fk_lots_portfolio_id_portfolios")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lots")),
        sa.UniqueConstraint("id", "account_id", "portfolio_id", name=op.f("uq_lots_id_account_id_portfolio_id")),
        by="account_id",
    )
    op.create_index(
        op.f("ix_lots_account_id_instrument_id_remaining"),
        "lots",
        ["account_id", "instrument_id", "remaining"],
        unique=False,
    )
    create_partitioned(
        op,
        "lot_closes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("portfolio_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("lot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("fill_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("closed_on", sa.Date(), nullable=False),
        sa.Column("open_cash_cents", sa.BigInteger(), nullable=False),
        sa.Column("close_cash_cents", sa.BigInteger(), nullable=False),
        sa.Column("gain_cents", sa.BigInteger(), nullable=False),
        sa.Column("term", sa.String(length=5), nullable=False),
        sa.Column("realized", sa.Boolean(), nullable=False),
        sa.CheckConstraint("term IN ('SHORT', 'LONG')", name=op.f("ck_lot_closes_term")),
        sa.CheckConstraint("gain_cents = open_cash_cents + close_cash_cents", name=op.f("ck_lot_closes_gain")),
        sa.ForeignKeyConstraint(
            ["account_id", "portfolio_id"],
            ["accounts.id", "accounts.portfolio_id"],
            name=op.f("fk_lot_closes_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["fill_id", "portfolio_id"], ["fills.id", "fills.portfolio_id"], name=op.f("fk_lot_closes_fill_id_fills")
        ),
        sa.ForeignKeyConstraint(
            ["lot_id", "account_id", "portfolio_id"],
            ["lots.id", "lots.account_id", "lots.portfolio_id"],
            name=op.f("fk_lot_closes_lot_id_lots"),
        ),
        sa.ForeignKeyConstraint(
            ["portfolio_id"], ["portfolios.id"], name=op.f("fk_lot_closes_portfolio_id_portfolios")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lot_closes")),
        by="account_id",
    )
    op.create_index(op.f("ix_lot_closes_account_id_closed_on"), "lot_closes", ["account_id", "closed_on"], unique=False)
    op.create_index(
        op.f("ix_lot_closes_portfolio_id_closed_on"), "lot_closes", ["portfolio_id", "closed_on"], unique=False
    )


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table("lot_closes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lot_closes_portfolio_id_closed_on"))
        batch_op.drop_index(batch_op.f("ix_lot_closes_account_id_closed_on"))

    op.drop_table("lot_closes")
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lots_account_id_instrument_id_remaining"))

    op.drop_table("lots")
    op.drop_table("tax_payments")
    op.drop_table("positions")
    with op.batch_alter_table("fills", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fills_portfolio_id_week_start"))
        batch_op.drop_index(batch_op.f("ix_fills_account_id_trade_date"))

    op.drop_table("fills")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_account_id_kind_cleared_at"))

    op.drop_table("alerts")
    with op.batch_alter_table("marks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_marks_instrument_id_as_of"))

    op.drop_table("marks")
    op.drop_table("weeks")
    op.drop_table("tax_settings")
    op.drop_table("instruments")
    # ### end Alembic commands ###
