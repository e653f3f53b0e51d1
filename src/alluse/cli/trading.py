"""Commands for trades, marks, the protocol check, weeks, tax and reports (registered on `alluse`)."""

from __future__ import annotations

import csv
import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from alluse.cli.common import JsonOpt, KeyOpt, actor, app, friendly, new_key, parse_date, print_json, state, utc_text
from alluse.cli.render import console, replay_note, usd
from alluse.domain.errors import InvalidInput
from alluse.domain.parsing import parse_money, parse_quantity
from alluse.domain.tax import NOTE

week_app = typer.Typer(help="Week types: predict at week start, confirm at week end.", no_args_is_help=True)
report_app = typer.Typer(help="Reports: tables, CSV and PNG charts.", no_args_is_help=True)
tax_app = typer.Typer(help=f"Tax ledger ({NOTE}).", no_args_is_help=True)
app.add_typer(week_app, name="week")
app.add_typer(report_app, name="report")
app.add_typer(tax_app, name="tax")

DateOpt = Annotated[str | None, typer.Option("--date", help="YYYY-MM-DD (default: today).")]
CsvOpt = Annotated[Path | None, typer.Option("--csv", help="Also write the rows to this CSV file.")]
PngOpt = Annotated[Path | None, typer.Option("--png", help="Also draw a chart into this PNG file.")]


def _tax_line() -> None:
    console.print(f"[dim]tax figures: {NOTE}[/]")


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
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


# --- facts ---------------------------------------------------------------------------------------

# A fill dated further ahead than this is almost surely a typo (2214 for 2024): it needs a yes.
FUTURE_DAYS = 366
FutureOpt = Annotated[
    bool, typer.Option("--future", help=f"Accept a date more than {FUTURE_DAYS} days after today without asking.")
]


def _check_fill_date(day: date, allowed: bool) -> None:
    """A far-future trade date is asked about on a terminal and refused in a script unless --future."""
    if allowed or (day - date.today()).days <= FUTURE_DAYS:
        return
    question = f"the fill is dated {day}, more than {FUTURE_DAYS} days from today; record it anyway?"
    if sys.stdin.isatty() and typer.confirm(question, err=True):
        return
    raise InvalidInput(f"date {day} is more than {FUTURE_DAYS} days after today: check it, or pass --future")


@app.command()
@friendly
def fill(
    account: Annotated[str, typer.Argument(help="Account name (e.g. A1-GEN) or id.")],
    action: Annotated[str, typer.Argument(help="BTO STO BTC STC EXPIRE ASSIGN DIVIDEND FEE")],
    symbol: Annotated[str | None, typer.Argument(help="Ticker or OCC symbol, e.g. 'AAPL  251219P00180000'.")] = None,
    quantity: Annotated[str, typer.Argument(help="Shares or contracts.")] = "0",
    price: Annotated[str, typer.Option(help="Per share, up to 4 decimals.")] = "0",
    commission: Annotated[str, typer.Option(help="Commissions and fees, USD.")] = "0",
    amount: Annotated[str | None, typer.Option(help="Cash of a DIVIDEND or FEE, USD.")] = None,
    on: DateOpt = None,
    multiplier: Annotated[int, typer.Option(help="Option multiplier.")] = 100,
    future: FutureOpt = False,
    key: KeyOpt = None,
) -> None:
    """Record one broker fact: a fill, an expiry, an assignment, a dividend or a fee."""
    from alluse.services.trades import Fill, FillAction, record_fill

    try:
        act = FillAction(action.upper())
    except ValueError:
        raise InvalidInput(f"unknown action {action!r}; one of {', '.join(a.value for a in FillAction)}") from None
    day = parse_date(on) if on or act is not FillAction.EXPIRE else None
    if day is not None:
        _check_fill_date(day, future)
    f = Fill(
        account,
        act,
        symbol,
        parse_quantity(quantity, allow_zero=True),
        price,
        parse_money(commission, field="commission", allow_zero=True),
        day,
        parse_money(amount) if amount else 0,
        multiplier,
    )
    r = record_fill(state.engine(), actor(), state.portfolio, new_key(key), f)
    what = " ".join(str(x) for x in (r["action"], r["quantity"] or "", r["symbol"] or "") if x != "")
    line = f"fill #{r['fill_id']} {what} in {r['account']}: cash {usd(r['cash_cents'])}"
    if r["realized_cents"]:
        line += f", realized {usd(r['realized_cents'])} (tax ledger: {NOTE})"
    if r.get("buffer_breach"):
        line += " [red]BUFFER_BREACH alert raised[/]"
    console.print(line + replay_note(r), highlight=False)


@app.command("import-fills")
@friendly
def import_fills(
    path: Annotated[
        Path,
        typer.Argument(
            help="CSV (key,account,action,symbol,quantity,price,commission,date,amount,multiplier) or .json"
        ),
    ],
    future: FutureOpt = False,
) -> None:
    """Record a file of broker facts (CSV or .json) as one unit of work: all or nothing; each row's key
    (given, or derived from its content) makes re-imports safe. Columns: docs/brokers.md."""
    from alluse.services.fill_files import read_fills
    from alluse.services.trades import record_fills

    facts = read_fills(path)
    if not facts:
        raise InvalidInput(f"{path} holds no fills")
    latest = max((f.trade_date for _, f in facts if f.trade_date is not None), default=None)
    if latest is not None:
        _check_fill_date(latest, future)
    results = record_fills(state.engine(), actor(), state.portfolio, facts)
    replayed = sum(1 for r in results if r.get("replayed"))
    console.print(f"recorded {len(results) - replayed} fills ({replayed} already recorded, unchanged)")


@app.command()
@friendly
def mark(
    symbol: Annotated[str | None, typer.Argument(help="Ticker or OCC symbol.")] = None,
    price: Annotated[str | None, typer.Argument(help="Price, up to 4 decimals.")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="CSV (symbol,price) or JSON {symbol: price}.")] = None,
    on: DateOpt = None,
    key: KeyOpt = None,
) -> None:
    """Record market prices and revalue positions (NAV, unrealized P&L)."""
    from alluse.services.marks import parse_marks_file, record_marks

    if file is not None:
        prices = parse_marks_file(file)
    elif symbol and price:
        prices = {symbol: price}
    else:
        raise InvalidInput("give SYMBOL PRICE or --file")
    r = record_marks(state.engine(), actor(), state.portfolio, new_key(key), prices, parse_date(on))
    msg = f"{r['marks']} marks as of {r['as_of']}: {r['positions_revalued']} positions revalued"
    if r["buffer_breach"]:
        msg += f"; [red]BUFFER_BREACH[/] {', '.join(r['buffer_breach'])}"
    console.print(msg + replay_note(r), highlight=False)


@app.command()
@friendly
def positions(
    account: Annotated[str | None, typer.Argument(help="One account (default: all).")] = None,
    on: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            "--date",
            help="YYYY-MM-DD: only facts dated on or before it (default: today, or the latest fact's date).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Open lots with value and unrealized P&L; NAV per account, as of a date."""
    from alluse.services.reports import holdings

    h = holdings(state.engine(), state.portfolio, account, parse_date(on) if on else None)
    if as_json:
        print(json.dumps(h, indent=2))
        return
    for acc in h["accounts"]:
        if not acc["lots"] and account is None:
            continue
        t = Table(
            "Lot",
            "Symbol",
            "Side",
            "Opened",
            "Qty",
            "Basis",
            "Price",
            "Value",
            "Unrealized",
            "Term",
            title=f"{acc['account']}: NAV {usd(acc['nav_cents'])} (cash {usd(acc['cash_cents'])}, "
            f"positions {usd(acc['positions_value_cents'])}, collateral {usd(acc['collateral_cents'])}, "
            f"unrealized {usd(acc['unrealized_cents'])})",
            title_justify="left",
        )
        for lot in acc["lots"]:
            t.add_row(
                str(lot["lot_id"]),
                lot["symbol"],
                lot["side"],
                lot["opened_on"],
                str(lot["quantity"]),
                usd(lot["basis_cents"]),
                lot["price"],
                usd(lot["value_cents"]),
                usd(lot["unrealized_cents"]),
                lot["term"],
            )
        console.print(t)


@app.command()
@friendly
def alerts(
    as_json: JsonOpt = False,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Then stream new alerts as they happen.")] = False,
) -> None:
    """Open alerts (BUFFER_BREACH ...)."""
    from alluse.services.alerts import open_alerts

    rows = open_alerts(state.engine(), state.portfolio)
    if as_json:
        print_json(
            [
                {"id": r["id"], "account": r["name"], "kind": r["kind"], "message": r["message"],
                 "raised_at": utc_text(r["raised_at"])}
                for r in rows
            ]
        )  # fmt: skip
    else:
        if not rows:
            console.print("no open alerts")
        for r in rows:
            console.print(f"[red]{r['kind']}[/] {r['name']}: {r['message']} (since {r['raised_at']:%Y-%m-%d %H:%M})")
    if follow:
        from alluse.cli.events import follow_alerts

        follow_alerts(as_json=as_json)


@app.command("check-trade")
@friendly
def check_trade(
    account: Annotated[str, typer.Argument(help="Account name or id.")],
    action: Annotated[str, typer.Argument(help="BTO STO BTC STC")],
    symbol: Annotated[str, typer.Argument(help="Ticker or OCC symbol.")],
    quantity: Annotated[str, typer.Argument(help="Shares or contracts.")],
    price: Annotated[str, typer.Option(help="Limit price / premium per share.")] = "0",
    delta: Annotated[str | None, typer.Option(help="Option delta (sign ignored).")] = None,
    on: DateOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check an order intent against the method's rules (§7). Exit 1 when it violates one."""
    from alluse.services.protocol import check_trade as run_check

    r = run_check(
        state.engine(), state.portfolio, account, action, symbol, parse_quantity(quantity), price, parse_date(on), delta
    )
    if as_json:
        print(json.dumps(r, indent=2))
    else:
        head = "[green]OK[/]" if r["ok"] else "[red]REFUSED[/]"
        console.print(f"{head} {r['order']} for {r['account']}", highlight=False)
        for v in r["violations"]:
            console.print(f"  [red]✗[/] {v}", highlight=False)
        for w in r["warnings"]:
            console.print(f"  [yellow]![/] {w}", highlight=False)
    if not r["ok"]:
        raise typer.Exit(1)


# --- weeks ---------------------------------------------------------------------------------------


def _week(stage: str, week_type: str, week: str | None, key: str | None) -> None:
    from alluse.services.weeks import set_week

    r = set_week(state.engine(), actor(), state.portfolio, new_key(key), stage, week_type, parse_date(week))
    console.print(f"week of {r['week_start']}: {stage}ed {week_type.upper()}{replay_note(r)}")


@week_app.command("predict")
@friendly
def week_predict(
    week_type: Annotated[str, typer.Argument(help="GREEN RED CHOP")],
    week: Annotated[str | None, typer.Option("--week", help="Any day of the week (default: this week).")] = None,
    key: KeyOpt = None,
) -> None:
    """Predict this week's type (at week start)."""
    _week("predict", week_type, week, key)


@week_app.command("confirm")
@friendly
def week_confirm(
    week_type: Annotated[str, typer.Argument(help="GREEN RED CHOP")],
    week: Annotated[str | None, typer.Option("--week", help="Any day of the week (default: this week).")] = None,
    key: KeyOpt = None,
) -> None:
    """Confirm the week's type (at week end)."""
    _week("confirm", week_type, week, key)


@week_app.command("accuracy")
@friendly
def week_accuracy_cmd(as_json: JsonOpt = False) -> None:
    """How often the predicted week type was right."""
    from alluse.services.reports import week_accuracy

    r = week_accuracy(state.engine(), state.portfolio)
    if as_json:
        print_json(r)
        return
    if not r["weeks"]:
        console.print("no week has both a prediction and a confirmation yet")
        return
    t = Table("Predicted", "Right", "Weeks", "Hit rate")
    for k, v in r["by_predicted"].items():
        t.add_row(k, str(v["correct"]), str(v["weeks"]), f"{100 * v['correct'] / v['weeks']:.0f} %")
    t.add_row("[bold]all[/]", str(r["correct"]), str(r["weeks"]), f"{100 * r['correct'] / r['weeks']:.0f} %")
    console.print(t)


# --- tax -----------------------------------------------------------------------------------------


@tax_app.command("pay")
@friendly
def tax_pay(
    account: Annotated[str, typer.Argument(help="Account the tax is paid from.")],
    year: Annotated[int, typer.Argument(help="Tax year.")],
    amount: Annotated[str, typer.Argument(help="USD")],
    on: DateOpt = None,
    key: KeyOpt = None,
) -> None:
    """Record an estimated tax payment (a fact: recorded even below the buffer, with an alert)."""
    from alluse.services.tax import pay_tax

    r = pay_tax(
        state.engine(), actor(), state.portfolio, new_key(key), account, year, parse_money(amount), parse_date(on)
    )
    console.print(f"tax {year} paid from {r['account']}: {usd(r['amount_cents'])}{replay_note(r)}")


@tax_app.command("rates")
@friendly
def tax_rates(
    short_term: Annotated[str, typer.Argument(help="Short-term rate, % (default 30)")],
    long_term: Annotated[str, typer.Argument(help="Long-term rate, % (default 15)")],
    dividend: Annotated[str, typer.Argument(help="Dividend rate, % (default 15)")],
    key: KeyOpt = None,
) -> None:
    """Set the portfolio's estimated tax rates."""
    from alluse.services.tax import set_rates

    set_rates(state.engine(), actor(), state.portfolio, new_key(key), short_term, long_term, dividend)
    console.print(f"tax rates: short-term {short_term} %, long-term {long_term} %, dividends {dividend} % ({NOTE})")


@tax_app.command("surplus")
@friendly
def tax_surplus(
    account: Annotated[str, typer.Argument(help="Account name or id.")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="YYYY-MM-DD (default: today).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Post-tax surplus (§5): NAV − base capital − unpaid tax on realized − tax on unrealized."""
    from alluse.services.tax import post_tax_surplus
    from alluse.store.repo import resolve_account
    from alluse.store.scope import resolve_portfolio

    with state.engine().connect() as conn:
        aid = resolve_account(conn, resolve_portfolio(conn, state.portfolio), account)
        day = parse_date(as_of)
        s = post_tax_surplus(conn, aid, day)
    if as_json:
        print_json(
            {
                "account": account.upper(),
                "as_of": day.isoformat(),
                "nav_cents": s.nav,
                "base_capital_cents": s.base_capital,
                "unpaid_tax_on_realized_cents": s.unpaid_tax_on_realized,
                "tax_on_unrealized_cents": s.tax_on_unrealized,
                "post_tax_surplus_cents": s.surplus,
                "note": NOTE,
            }
        )
        return
    t = Table("Figure", "USD", title=f"{account.upper()} post-tax surplus", title_justify="left")
    t.add_row("NAV", usd(s.nav))
    t.add_row("− base capital", usd(s.base_capital))
    t.add_row("− unpaid estimated tax on realized gains", usd(s.unpaid_tax_on_realized))
    t.add_row("− estimated tax on unrealized gains", usd(s.tax_on_unrealized))
    t.add_row("[bold]post-tax surplus[/]", f"[bold]{usd(s.surplus)}[/]")
    console.print(t)
    _tax_line()


@tax_app.command("pnl")
@friendly
def tax_pnl(
    account: Annotated[str, typer.Argument(help="Account name or id.")],
    start: Annotated[str, typer.Option("--from", help="YYYY-MM-DD")],
    end: Annotated[str | None, typer.Option("--to", help="YYYY-MM-DD (default: today).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Pre- and post-tax realized P&L of an account for a period."""
    from alluse.services.tax import period_pnl
    from alluse.store.repo import resolve_account
    from alluse.store.scope import resolve_portfolio

    with state.engine().connect() as conn:
        aid = resolve_account(conn, resolve_portfolio(conn, state.portfolio), account)
        s, e = parse_date(start), parse_date(end)
        if e < s:
            raise InvalidInput(f"--from {s} is after --to {e}")
        p = period_pnl(conn, aid, s, e)
    if as_json:
        figures = {f"{k}_cents": getattr(p, k) for k in p.__dataclass_fields__}
        print_json({"account": account.upper(), "from": s.isoformat(), "to": e.isoformat(), **figures, "note": NOTE})
        return
    t = Table("Figure", "USD", title=f"{account.upper()} {start} – {end or 'today'}", title_justify="left")
    t.add_row("net realized gain", usd(p.realized))
    t.add_row("+ dividends", usd(p.dividends))
    t.add_row("− fees", usd(p.fees))
    t.add_row("[bold]pre-tax[/]", f"[bold]{usd(p.pre_tax)}[/]")
    t.add_row("− estimated tax", usd(p.estimated_tax))
    t.add_row("[bold]post-tax[/]", f"[bold]{usd(p.post_tax)}[/]")
    console.print(t)
    _tax_line()


# --- reports -------------------------------------------------------------------------------------


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
    _tax_line()
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
    _tax_line()
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
    _tax_line()


def _tax_years(r: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(r)
        return
    t = Table("Year", "Net short-term", "Net long-term", "Dividends", "Est. tax", "Paid", "Unpaid",
              title=f"Tax years {r['from_year']}–{r['to_year']} ({NOTE})", title_justify="left")  # fmt: skip
    for y in [*r["years"], {"year": "[bold]total[/]", **r["total"]}]:
        t.add_row(
            str(y["year"]),
            usd(y["short_term"]["net_cents"]),
            usd(y["long_term"]["net_cents"]),
            usd(y["dividends_cents"]),
            usd(y["estimated_tax_cents"]),
            usd(y["paid_cents"]),
            usd(y["unpaid_cents"]),
        )
    console.print(t)
    _tax_line()


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
