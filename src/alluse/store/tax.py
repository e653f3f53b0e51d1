"""The tax ledger's own rows (estimated tax paid, the portfolio's rates) and the per-year figures
read from the facts for many accounts at once."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from alluse.domain.lots import Term
from alluse.domain.tax import TaxRates
from alluse.store.idlist import in_ids
from alluse.store.prepared import Prepared
from alluse.store.schema import fills, lot_closes, tax_payments, tax_settings


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


# Prepared: every lifecycle run reads the rates.
_RATES = Prepared(
    sa.select(tax_settings.c.short_term_bps, tax_settings.c.long_term_bps, tax_settings.c.dividend_bps).where(
        tax_settings.c.portfolio_id == sa.bindparam("pid")
    )
)


def load_rates(conn: sa.Connection, portfolio_id: int) -> TaxRates:
    """The portfolio's tax rates (the defaults when it set none)."""
    row = _RATES.first(conn, pid=portfolio_id)
    return TaxRates(*row) if row else TaxRates()


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


def realized_by_year(conn: sa.Connection, pid: int, ids: list[int], through: date) -> dict[int, dict[int, list[int]]]:
    """Per account and tax year, up to `through`: [realized short-term gain, long-term gain, dividends]
    (a year appears when it has any realized closing or dividend)."""
    c, f = lot_closes.c, fills.c
    out: dict[int, dict[int, list[int]]] = {}
    closings = sa.select(c.account_id, c.closed_on, c.term, c.gain_cents).where(
        c.portfolio_id == pid, in_ids(c.account_id), c.realized.is_(True), c.closed_on <= through
    )
    for aid, on, term, gain in conn.execute(closings, {"ids": ids}):
        out.setdefault(aid, {}).setdefault(on.year, [0, 0, 0])[1 if term == Term.LONG else 0] += int(gain)
    dividends = sa.select(f.account_id, f.trade_date, f.cash_cents + f.commission_cents).where(
        f.portfolio_id == pid, in_ids(f.account_id), f.action == "DIVIDEND", f.trade_date <= through
    )
    for aid, on, cents in conn.execute(dividends, {"ids": ids}):
        out.setdefault(aid, {}).setdefault(on.year, [0, 0, 0])[2] += int(cents)
    return out


def paid_by_year(conn: sa.Connection, pid: int, ids: list[int], through: date) -> dict[int, dict[int, int]]:
    """Per account and tax year, the tax paid on or before `through`."""
    t = tax_payments.c
    out: dict[int, dict[int, int]] = {}
    q = (
        sa.select(t.account_id, t.tax_year, sa.func.sum(t.amount_cents))
        .where(t.portfolio_id == pid, in_ids(t.account_id), t.paid_on <= through)
        .group_by(t.account_id, t.tax_year)
    )
    for aid, year, cents in conn.execute(q, {"ids": ids}):
        out.setdefault(aid, {})[int(year)] = int(cents)
    return out
