"""The tax ledger's writes (payments, rates) and the pre/post-tax module per account (§5, §6).
Every figure is an estimate, not tax advice; the answers say so in `note`."""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query

from alluse.api.deps import Ctx, IdemKey, Owner, Trader, Viewer
from alluse.api.money import typed_money
from alluse.api.problems import responses
from alluse.api.schemas.common import Day, money
from alluse.api.schemas.tax import PnlOut, SurplusOut, TaxPaymentIn, TaxPaymentOut, TaxRatesIn, TaxRatesOut
from alluse.domain.errors import InvalidInput
from alluse.domain.parsing import parse_money
from alluse.domain.tax import NOTE
from alluse.services.tax import RatesSet, TaxPaid, pay_tax, set_rates
from alluse.views.tax import SurplusRecord, account_pnl, account_surplus, surplus_record

router = APIRouter(tags=["tax"], responses=responses(400, 401, 403, 404, 409, 422))
AccountRef = Annotated[str, Path(min_length=1, max_length=60, description="Account name (e.g. A1-GEN) or id")]
MAX_PERIOD_DAYS = 3660  # ten years, as the performance report


@router.post("/portfolios/{portfolio}/tax/payments", response_model=TaxPaymentOut, status_code=201)
def pay(scope: Trader, body: TaxPaymentIn, c: Ctx, key: IdemKey) -> dict:
    """Record estimated tax paid from an account: a fact, recorded even below the buffer (with an alert)."""
    paid_on = body.paid_on or date.today()
    amount = parse_money(body.amount)
    paid = pay_tax(c.engine, scope.actor, scope.portfolio_id, key, body.account, body.tax_year, amount, paid_on)
    return typed_money(paid, TaxPaid)


@router.put("/portfolios/{portfolio}/tax/rates", response_model=TaxRatesOut)
def rates(scope: Owner, body: TaxRatesIn, c: Ctx, key: IdemKey) -> RatesSet:
    """Owner: the portfolio's estimated tax rates, in percent."""
    return set_rates(c.engine, scope.actor, scope.portfolio_id, key, body.short_term, body.long_term, body.dividend)


@router.get("/portfolios/{portfolio}/accounts/{account}/surplus", response_model=SurplusOut)
def surplus(
    scope: Viewer,
    account: AccountRef,
    c: Ctx,
    as_of: Annotated[Day | None, Query(description="Default: today")] = None,
) -> dict:
    """Post-tax surplus (§5): NAV − base capital − unpaid tax on realized gains − tax on unrealized gains."""
    day = as_of or date.today()
    name, s = account_surplus(c.engine, scope.portfolio_id, account, day)
    return typed_money(surplus_record(name, day, s), SurplusRecord)


@router.get("/portfolios/{portfolio}/accounts/{account}/pnl", response_model=PnlOut)
def pnl(
    scope: Viewer,
    account: AccountRef,
    c: Ctx,
    start: Annotated[Day, Query(alias="from", description="First day of the period")],
    end: Annotated[Day | None, Query(alias="to", description="Last day (default: today)")] = None,
) -> dict:
    """Pre- and post-tax realized P&L of an account for a period."""
    last = end or date.today()
    if last < start:
        raise InvalidInput("`to` is before `from`")
    if (last - start).days > MAX_PERIOD_DAYS:
        raise InvalidInput("the period is limited to ten years")
    name, p = account_pnl(c.engine, scope.portfolio_id, account, start, last)
    return money(
        {
            "account": name,
            "start": start,
            "end": last,
            "realized_cents": p.realized,
            "dividends_cents": p.dividends,
            "fees_cents": p.fees,
            "pre_tax_cents": p.pre_tax,
            "estimated_tax_cents": p.estimated_tax,
            "post_tax_cents": p.post_tax,
            "note": NOTE,
        }
    )
