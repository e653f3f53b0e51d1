"""Reports: tables, CSV and PNG charts."""

import csv
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from alluse.cli.common import JsonOpt, app, friendly, parse_date, print_json, state
from alluse.cli.render import console, tax_line, usd
from alluse.domain.errors import InvalidInput
from alluse.domain.tax import NOTE

if TYPE_CHECKING:
    from alluse.services.reports import TaxYears, TaxYearsTotal

report_app = typer.Typer(help="Reports: tables, CSV and PNG charts.", no_args_is_help=True)
app.add_typer(report_app, name="report")

CsvOpt = Annotated[Path | None, typer.Option("--csv", help="Also write the rows to this CSV file.")]
PngOpt = Annotated[Path | None, typer.Option("--png", help="Also draw a chart into this PNG file.")]


def _write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    if not rows:
        raise InvalidInput("nothing to write: the report has no rows")
    try:
        with path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror}") from None
    console.print(f"wrote {len(rows)} rows to {path}")


@report_app.command("weekly")
@friendly
def report_weekly(
    start: Annotated[str | None, typer.Option("--from", help="YYYY-MM-DD (default: 12 weeks ago).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="YYYY-MM-DD (default: today).")] = None,
    csv_path: CsvOpt = None,
    png: PngOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Per week: trades, income (realized + dividends), predicted and confirmed week type."""
    from datetime import timedelta

    from alluse.services.reports import weekly

    to = parse_date(end)
    r = weekly(state.engine(), state.portfolio, parse_date(start, to - timedelta(weeks=12)), to)
    if as_json:
        print_json(r)
        return
    t = Table("Week of", "Trades", "Income", "Predicted", "Confirmed", "Right?")
    for w in r["weeks"]:
        right = "" if w["correct"] is None else ("yes" if w["correct"] else "no")
        t.add_row(
            w["week_start"],
            str(w["trades"]),
            usd(w["income_cents"]),
            w["predicted"] or "",
            w["confirmed"] or "",
            right,
        )
    console.print(t)
    if r["predicted_and_confirmed"]:
        console.print(f"prediction right {r['correct']} of {r['predicted_and_confirmed']} weeks")
    if csv_path:
        _write_csv(csv_path, r["weeks"])
    if png:
        from alluse.charts import weekly_png

        weekly_png(r, png)
        console.print(f"chart: {png}")


@report_app.command("monthly")
@friendly
def report_monthly(
    year: Annotated[int, typer.Option(help="Calendar year (default: this year).")] = 0,
    csv_path: CsvOpt = None,
    png: PngOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Per month: income vs reinvestment, estimated tax, growth per account."""
    from alluse.services.reports import monthly

    r = monthly(state.engine(), state.portfolio, year or date.today().year)
    if as_json:
        print_json(r)
        return
    names = sorted({n for m in r["months"] for n in m["growth_cents"]})
    t = Table("Month", "Income", "Reinvested", "Est. tax", *[f"Growth {n}" for n in names])
    for m in r["months"]:
        t.add_row(
            m["month"],
            usd(m["income_cents"]),
            usd(m["reinvested_cents"]),
            usd(m["estimated_tax_cents"]),
            *[usd(m["growth_cents"][n]) for n in names],
        )
    console.print(t)
    tax_line()
    if csv_path:
        _write_csv(
            csv_path,
            [
                {
                    **{k: v for k, v in m.items() if k != "growth_cents"},
                    **{f"growth_{n}_cents": m["growth_cents"][n] for n in names},
                    "note": NOTE,
                }
                for m in r["months"]
            ],
        )
    if png:
        from alluse.charts import monthly_png

        monthly_png(r, png)
        console.print(f"chart: {png}")


@report_app.command("quarterly")
@friendly
def report_quarterly(
    year: Annotated[int, typer.Option(help="Calendar year (default: this year).")] = 0,
    csv_path: CsvOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The tax ledger by quarter and account."""
    from alluse.services.reports import quarterly

    r = quarterly(state.engine(), state.portfolio, year or date.today().year)
    if as_json:
        print_json(r)
        return
    t = Table("Quarter", "Account", "Short-term", "Long-term", "Dividends", "Net realized", "Est. tax YTD")
    for q in r["rows"]:
        t.add_row(
            q["quarter"],
            q["account"],
            usd(q["short_term_cents"]),
            usd(q["long_term_cents"]),
            usd(q["dividends_cents"]),
            usd(q["net_realized_cents"]),
            usd(q["estimated_tax_ytd_cents"]),
        )
    console.print(t)
    tax_line()
    if csv_path:
        _write_csv(csv_path, [{**q, "note": NOTE} for q in r["rows"]])


YearsOpt = Annotated[
    str | None, typer.Option("--years", help="A range of tax years, e.g. 2027-2031 (instead of --year).")
]


def parse_years(year: int, years: str | None) -> tuple[int, int]:
    """--year Y or --years FIRST-LAST (either alone; default: this year) as (first, last)."""
    if years is None:
        y = year or date.today().year
        return y, y
    if year:
        raise InvalidInput("give --year or --years, not both")
    first, sep, last = years.strip().partition("-")
    try:
        return int(first), int(last if sep else first)
    except ValueError:
        raise InvalidInput(f"--years must look like 2027-2031, got {years!r}") from None


@report_app.command("tax-year")
@friendly
def report_tax_year(
    year: Annotated[int, typer.Option(help="Tax year (default: this year).")] = 0,
    years: YearsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The household's tax year (or a range of years): netting, estimated tax, payments, wash-sale flags."""
    from alluse.services.reports import tax_year, tax_years

    first, last = parse_years(year, years)
    if years is not None:
        _tax_years(tax_years(state.engine(), state.portfolio, first, last), as_json)
        return
    r = tax_year(state.engine(), state.portfolio, first)
    if as_json:
        print(json.dumps(r, indent=2))
        return
    t = Table("", "USD", title=f"Tax year {r['year']} ({NOTE})", title_justify="left")
    for term in ("short_term", "long_term"):
        t.add_row(f"{term.replace('_', '-')} gains ({r[term]['closes']} closes)", usd(r[term]["gains_cents"]))
        t.add_row(f"{term.replace('_', '-')} losses", usd(r[term]["losses_cents"]))
    t.add_row("dividends", usd(r["dividends_cents"]))
    t.add_row("taxable short-term after netting", usd(r["taxable_short_term_cents"]))
    t.add_row("taxable long-term after netting", usd(r["taxable_long_term_cents"]))
    if r["net_capital_loss_cents"]:
        t.add_row("net capital loss (not applied)", usd(r["net_capital_loss_cents"]))
    t.add_row("[bold]estimated tax[/]", f"[bold]{usd(r['estimated_tax_cents'])}[/]")
    t.add_row("paid", usd(r["paid_cents"]))
    t.add_row("unpaid", usd(r["unpaid_cents"]))
    console.print(t)
    w = r["wash_sale_flagged"]
    if w["closes"]:
        console.print(
            f"[yellow]![/] {w['closes']} losing closes ({usd(w['loss_cents'])}) may be wash sales: flagged, not applied"
        )
    tax_line()


def _tax_years(r: "TaxYears", as_json: bool) -> None:
    if as_json:
        print_json(r)
        return
    t = Table("Year", "Net short-term", "Net long-term", "Dividends", "Est. tax", "Paid", "Unpaid",
              title=f"Tax years {r['from_year']}–{r['to_year']} ({NOTE})", title_justify="left")  # fmt: skip
    rows: list[tuple[str, TaxYearsTotal]] = [(str(y["year"]), y) for y in r["years"]]
    for label, y in [*rows, ("[bold]total[/]", r["total"])]:
        t.add_row(
            label,
            usd(y["short_term"]["net_cents"]),
            usd(y["long_term"]["net_cents"]),
            usd(y["dividends_cents"]),
            usd(y["estimated_tax_cents"]),
            usd(y["paid_cents"]),
            usd(y["unpaid_cents"]),
        )
    console.print(t)
    tax_line()


@report_app.command("realized")
@friendly
def report_realized(
    year: Annotated[int, typer.Option(help="Tax year (default: this year).")] = 0,
    years: YearsOpt = None,
    out: Annotated[Path | None, typer.Option("--csv", help="CSV file (default: standard output).")] = None,
) -> None:
    """Audit-ready CSV of realized gains per lot, with wash-sale flags (one year or a range)."""
    from alluse.services.reports import write_realized_csv

    first, last = parse_years(year, years)
    if out is None:
        write_realized_csv(state.engine(), state.portfolio, first, sys.stdout, last)
        return
    try:
        with out.open("w", newline="") as fh:
            n = write_realized_csv(state.engine(), state.portfolio, first, fh, last)
    except OSError as exc:
        raise InvalidInput(f"cannot write {out}: {exc.strerror}") from None
    span = str(first) if first == last else f"{first}–{last}"
    console.print(f"wrote {n} realized lot closings of {span} to {out} ({NOTE})")


@report_app.command("performance")
@friendly
def report_performance(
    start: Annotated[str, typer.Option("--from", help="YYYY-MM-DD")],
    end: Annotated[str | None, typer.Option("--to", help="YYYY-MM-DD (default: today).")] = None,
    account: Annotated[str | None, typer.Option(help="One account (default: all).")] = None,
    csv_path: CsvOpt = None,
    png: PngOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Time-weighted return per account (deposits, forks, merges excluded) and max drawdown."""
    from decimal import Decimal

    from alluse.services.reports import performance_report

    s, e = parse_date(start), parse_date(end)
    if e < s:
        raise InvalidInput("--to is before --from")
    if (e - s).days > 3660:
        raise InvalidInput("the period is limited to ten years")
    r = performance_report(state.engine(), state.portfolio, s, e, account)
    if as_json:
        print_json(r)
        return
    t = Table("Account", "Start NAV", "End NAV", "Flows", "TWR", "Max drawdown")
    rows = []
    for a in r["accounts"]:
        t.add_row(
            a["account"],
            usd(a["start_nav_cents"]),
            usd(a["end_nav_cents"]),
            usd(a["flows_cents"]),
            f"{Decimal(a['twr']) * 100:.2f} %",
            f"{Decimal(a['max_drawdown']) * 100:.2f} %",
        )
        rows.append({k: v for k, v in a.items() if k != "series"})
    console.print(t)
    if csv_path:
        _write_csv(csv_path, rows)
    if png:
        from alluse.charts import performance_png

        performance_png(r, png)
        console.print(f"chart: {png}")
