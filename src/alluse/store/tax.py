"""Writing the tax ledger's own rows: estimated tax paid and the portfolio's rates."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from alluse.domain.tax import TaxRates
from alluse.store.schema import tax_payments, tax_settings


def insert_tax_payment(
    conn: sa.Connection,
    portfolio_id: int,
    account_id: int,
    tax_year: int,
    amount_cents: int,
    paid_on: date,
    transfer_id: int,
) -> None:
    conn.execute(
        tax_payments.insert().values(
            portfolio_id=portfolio_id,
            account_id=account_id,
            tax_year=tax_year,
            amount_cents=amount_cents,
            paid_on=paid_on,
            transfer_id=transfer_id,
        )
    )


def save_rates(conn: sa.Connection, portfolio_id: int, rates: TaxRates) -> None:
    """The portfolio's tax rates, replacing any it had."""
    t = tax_settings.c
    values = {
        "short_term_bps": rates.short_term_bps,
        "long_term_bps": rates.long_term_bps,
        "dividend_bps": rates.dividend_bps,
    }
    if conn.execute(sa.select(t.portfolio_id).where(t.portfolio_id == portfolio_id)).first():
        conn.execute(tax_settings.update().where(t.portfolio_id == portfolio_id).values(**values))
    else:
        conn.execute(tax_settings.insert().values(portfolio_id=portfolio_id, **values))
