"""The tax ledger's writes (ALLUSE_RULES §5, §6): estimated tax payments and the portfolio's rates.
Estimates, not tax advice. The reads (post-tax surplus, P&L, tax years) are `views/tax.py`."""

from __future__ import annotations

from datetime import date
from typing import NotRequired, TypedDict, cast

from sqlalchemy.engine import Engine

from alluse.domain.errors import InvalidInput
from alluse.domain.ledger import TAX, Leg, TransferKind
from alluse.domain.money import MAX_CENTS, Cents
from alluse.domain.parsing import parse_percent
from alluse.domain.tax import TaxRates
from alluse.services.alerts import check_buffer
from alluse.store import tax as tax_store
from alluse.store.repo import JournalEntry, apply_cash, external_account, insert_journal, load_accounts, resolve_account
from alluse.store.uow import Request, Tx, write

# --- writes: tax payments and rates --------------------------------------------------------------


class TaxPaid(TypedDict):
    account: str
    tax_year: int
    amount_cents: Cents
    transfer_id: int
    buffer_breach: bool
    replayed: NotRequired[bool]


class RatesSet(TypedDict):
    short_term_bps: int
    long_term_bps: int
    dividend_bps: int
    replayed: NotRequired[bool]


def pay_tax(
    engine: Engine,
    actor: str,
    portfolio: str | int | None,
    key: str,
    account: str | int,
    tax_year: int,
    amount_cents: int,
    paid_on: date,
) -> TaxPaid:
    """Record estimated tax paid from an account (a fact: never refused by the buffer rule)."""
    if not 0 < amount_cents <= MAX_CENTS:
        raise InvalidInput("tax payment must be a positive amount")
    if not 1900 < tax_year < 3000:
        raise InvalidInput(f"not a tax year: {tax_year}")

    def apply(tx: Tx, _reqs: list[Request]) -> list[TaxPaid]:
        conn, pid = tx.conn, tx.portfolio_id
        aid = resolve_account(conn, pid, account)
        ext = external_account(conn, pid, TAX, tx.now)
        state = load_accounts(conn, pid, [aid, ext])
        legs = [Leg(aid, -amount_cents), Leg(ext, amount_cents)]
        (tid,) = insert_journal(
            conn, pid, tx.now, [JournalEntry(TransferKind.TAX_PAYMENT, legs, tx.seq(0), memo=f"tax {tax_year}")]
        )
        for leg in legs:
            state[leg.account_id].add_cash(leg.amount_cents)
        apply_cash(conn, list(state.values()))
        tax_store.insert_tax_payment(conn, pid, aid, tax_year, amount_cents, paid_on, tid)
        breach = check_buffer(tx, state[aid], "a tax payment")
        return [
            {
                "account": state[aid].name,
                "tax_year": tax_year,
                "amount_cents": Cents(amount_cents),
                "transfer_id": tid,
                "buffer_breach": breach,
            }
        ]

    payload = {"account": account, "tax_year": tax_year, "amount_cents": amount_cents, "paid_on": paid_on.isoformat()}
    return cast(TaxPaid, write(engine, portfolio, actor, "tax.pay", [Request(key, payload)], apply)[0])


def set_rates(
    engine: Engine, actor: str, portfolio: str | int | None, key: str, short_term: str, long_term: str, dividend: str
) -> RatesSet:
    new = TaxRates(
        parse_percent(short_term, field="short_term"),
        parse_percent(long_term, field="long_term"),
        parse_percent(dividend, field="dividend"),
    )

    def apply(tx: Tx, _reqs: list[Request]) -> list[RatesSet]:
        tax_store.save_rates(tx.conn, tx.portfolio_id, new)
        return [
            {
                "short_term_bps": new.short_term_bps,
                "long_term_bps": new.long_term_bps,
                "dividend_bps": new.dividend_bps,
            }
        ]

    payload = {"short_term": short_term, "long_term": long_term, "dividend": dividend}
    return cast(RatesSet, write(engine, portfolio, actor, "tax.rates", [Request(key, payload)], apply)[0])
