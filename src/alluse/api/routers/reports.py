"""Reports (§8) as JSON, as CSV (`format=csv`, text/csv) and, where the CLI draws one, as a PNG chart
(`format=png`). CSV columns are the JSON fields, amounts as the same decimal-string dollars."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from alluse.api.deps import Ctx, Viewer
from alluse.api.hardening import off_the_loop
from alluse.api.money import typed_money
from alluse.api.problems import responses
from alluse.api.schemas.common import Day, Year, usd
from alluse.api.schemas.reports import MonthlyOut, PerformanceOut, QuarterlyOut, RealizedRow, TaxYearOut, WeeklyOut
from alluse.domain.errors import InvalidInput
from alluse.domain.tax import NOTE
from alluse.services import reports

router = APIRouter(tags=["reports"], responses=responses(400, 401, 403, 404, 422))

MAX_PERIOD_DAYS = 3660  # ten years, as the CLI's performance report
CSV = {"text/csv": {"schema": {"type": "string"}}}
PNG = {"image/png": {"schema": {"type": "string", "format": "binary"}}}
Tabular = Annotated[Literal["json", "csv"], Query(description="json, or csv (text/csv)")]
Charted = Annotated[Literal["json", "csv", "png"], Query(description="json, csv (text/csv) or png (a chart)")]
YearQ = Annotated[Year | None, Query(description="Calendar year (default: this year)")]

# pyplot keeps global state; reports run in worker threads (`off_the_loop`), so charts are drawn one
# at a time.
_CHART_LOCK = threading.Lock()


def _csv(rows: list[dict[str, Any]], columns: list[str], name: str) -> Response:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return Response(
        buf.getvalue(), media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}.csv"'}
    )


def _png(draw: Any, report: Mapping[str, Any], name: str) -> Response:
    buf = io.BytesIO()
    with _CHART_LOCK:
        draw(report, buf)
    return Response(
        buf.getvalue(), media_type="image/png", headers={"Content-Disposition": f'inline; filename="{name}.png"'}
    )


def _period(start: date, end: date) -> None:
    if end < start:
        raise InvalidInput("`to` is before `from`")
    if (end - start).days > MAX_PERIOD_DAYS:
        raise InvalidInput("the period is limited to ten years")


@router.get("/portfolios/{portfolio}/reports/weekly", response_model=WeeklyOut, responses={200: {"content": CSV | PNG}})
@off_the_loop
def weekly(
    scope: Viewer,
    c: Ctx,
    start: Annotated[Day | None, Query(alias="from", description="Default: 12 weeks before `to`")] = None,
    end: Annotated[Day | None, Query(alias="to", description="Default: today")] = None,
    format: Charted = "json",  # noqa: A002 - the query parameter's name
) -> Any:
    """Per week (Monday start): trades, income (realized gains + dividends), predicted and confirmed type."""
    last = end or date.today()
    first = start or last - timedelta(weeks=12)
    _period(first, last)
    r = reports.weekly(c.engine, scope.portfolio_id, first, last)
    name = f"weekly-{first}-{last}"
    if format == "png":
        from alluse.charts import weekly_png

        return _png(weekly_png, r, name)
    out = typed_money(r, reports.Weekly)
    if format == "csv":
        return _csv(out["weeks"], ["week_start", "trades", "income", "predicted", "confirmed", "correct"], name)
    return out


@router.get(
    "/portfolios/{portfolio}/reports/monthly", response_model=MonthlyOut, responses={200: {"content": CSV | PNG}}
)
@off_the_loop
def monthly(scope: Viewer, c: Ctx, year: YearQ = None, format: Charted = "json") -> Any:  # noqa: A002
    """Per month: income vs reinvestment, estimated tax accrued, growth per account (NAV change less flows)."""
    y = year or date.today().year
    r = reports.monthly(c.engine, scope.portfolio_id, y)
    if format == "png":
        from alluse.charts import monthly_png

        return _png(monthly_png, r, f"monthly-{y}")
    out = typed_money(r, reports.Monthly)
    # `growth_cents` maps account names to cents (not a `Cents` field): convert its values here.
    for m in out["months"]:
        m["growth"] = {name: usd(cents) for name, cents in m.pop("growth_cents").items()}
    if format == "csv":
        names = sorted({n for m in out["months"] for n in m["growth"]})
        rows = [
            {
                **{k: v for k, v in m.items() if k != "growth"},
                **{f"growth {n}": m["growth"].get(n, "0.00") for n in names},
                "note": NOTE,
            }
            for m in out["months"]
        ]
        cols = ["month", "income", "reinvested", "estimated_tax", *[f"growth {n}" for n in names], "note"]
        return _csv(rows, cols, f"monthly-{y}")
    return out


@router.get("/portfolios/{portfolio}/reports/quarterly", response_model=QuarterlyOut, responses={200: {"content": CSV}})
@off_the_loop
def quarterly(scope: Viewer, c: Ctx, year: YearQ = None, format: Tabular = "json") -> Any:  # noqa: A002
    """The tax ledger by quarter and account, with each account's estimated tax year to date."""
    y = year or date.today().year
    out = typed_money(reports.quarterly(c.engine, scope.portfolio_id, y), reports.Quarterly)
    if format == "csv":
        cols = ["quarter", "account", "short_term", "long_term", "dividends", "net_realized", "estimated_tax_ytd"]
        return _csv([{**q, "note": NOTE} for q in out["rows"]], [*cols, "note"], f"quarterly-{y}")
    return out


@router.get("/portfolios/{portfolio}/reports/tax-year", response_model=TaxYearOut)
@off_the_loop
def tax_year(scope: Viewer, c: Ctx, year: YearQ = None) -> dict:
    """The household's tax year: IRS-style netting, estimated tax, payments, wash-sale flags."""
    return typed_money(reports.tax_year(c.engine, scope.portfolio_id, year or date.today().year), reports.TaxYear)


@router.get(
    "/portfolios/{portfolio}/reports/realized",
    response_model=list[RealizedRow],
    responses={200: {"content": CSV}},
)
@off_the_loop
def realized(scope: Viewer, c: Ctx, year: YearQ = None, format: Tabular = "json") -> Any:  # noqa: A002
    """Realized gains per lot closing, audit-ready, with wash-sale flags. The CSV is the CLI's
    `alluse report realized` file, byte for byte."""
    y = year or date.today().year
    if format == "csv":
        buf = io.StringIO()
        reports.write_realized_csv(c.engine, scope.portfolio_id, y, buf)
        return Response(
            buf.getvalue(),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="realized-{y}.csv"'},
        )
    return list(reports.realized_rows(c.engine, scope.portfolio_id, y))


@router.get(
    "/portfolios/{portfolio}/reports/performance",
    response_model=PerformanceOut,
    responses={200: {"content": CSV | PNG}},
)
@off_the_loop
def performance(
    scope: Viewer,
    c: Ctx,
    start: Annotated[Day, Query(alias="from", description="First day")],
    end: Annotated[Day | None, Query(alias="to", description="Last day (default: today)")] = None,
    account: Annotated[str | None, Query(min_length=1, max_length=100, description="One account")] = None,
    format: Charted = "json",  # noqa: A002
) -> Any:
    """Per account: time-weighted return with flows (deposits, forks, merges) excluded, and max drawdown."""
    last = end or date.today()
    _period(start, last)
    r = reports.performance_report(c.engine, scope.portfolio_id, start, last, account)
    name = f"performance-{start}-{last}"
    if format == "png":
        from alluse.charts import performance_png

        return _png(performance_png, r, name)
    out = typed_money(r, reports.Performance)
    for a in out["accounts"]:
        a["series"] = [{"on": on, "nav": usd(nav), "flow": usd(flow)} for on, nav, flow in a["series"]]
    if format == "csv":
        cols = ["account", "start_nav", "end_nav", "flows", "twr", "max_drawdown"]
        return _csv([{k: a[k] for k in cols} for a in out["accounts"]], cols, name)
    return out
