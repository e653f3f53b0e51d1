"""Trades: fills, marks, positions, the protocol check and week types."""

import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from alluse.cli.common import DateOpt, JsonOpt, KeyOpt, actor, app, friendly, new_key, parse_date, print_json, state
from alluse.cli.render import console, replay_note, usd
from alluse.domain.errors import InvalidInput
from alluse.domain.parsing import parse_money, parse_quantity
from alluse.domain.tax import NOTE

week_app = typer.Typer(help="Week types: predict at week start, confirm at week end.", no_args_is_help=True)
app.add_typer(week_app, name="week")


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
