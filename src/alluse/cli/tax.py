"""The tax ledger: payments, rates, post-tax surplus and period P&L (estimates, not tax advice)."""

from typing import Annotated

import typer
from rich.table import Table

from alluse.cli.common import DateOpt, JsonOpt, KeyOpt, actor, app, friendly, new_key, parse_date, print_json, state
from alluse.cli.render import console, replay_note, tax_line, usd
from alluse.domain.errors import InvalidInput
from alluse.domain.parsing import parse_money
from alluse.domain.tax import NOTE

tax_app = typer.Typer(help=f"Tax ledger ({NOTE}).", no_args_is_help=True)
app.add_typer(tax_app, name="tax")


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
    from alluse.views.tax import account_surplus, surplus_record

    engine = state.engine()
    day = parse_date(as_of)
    name, s = account_surplus(engine, state.portfolio, account, day)
    if as_json:
        print_json(surplus_record(name, day, s))
        return
    t = Table("Figure", "USD", title=f"{name} post-tax surplus", title_justify="left")
    t.add_row("NAV", usd(s.nav))
    t.add_row("− base capital", usd(s.base_capital))
    t.add_row("− unpaid estimated tax on realized gains", usd(s.unpaid_tax_on_realized))
    t.add_row("− estimated tax on unrealized gains", usd(s.tax_on_unrealized))
    t.add_row("[bold]post-tax surplus[/]", f"[bold]{usd(s.surplus)}[/]")
    console.print(t)
    tax_line()


@tax_app.command("pnl")
@friendly
def tax_pnl(
    account: Annotated[str, typer.Argument(help="Account name or id.")],
    start: Annotated[str, typer.Option("--from", help="YYYY-MM-DD")],
    end: Annotated[str | None, typer.Option("--to", help="YYYY-MM-DD (default: today).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Pre- and post-tax realized P&L of an account for a period."""
    from alluse.views.tax import account_pnl

    engine = state.engine()
    s, e = parse_date(start), parse_date(end)
    if e < s:
        raise InvalidInput(f"--from {s} is after --to {e}")
    name, p = account_pnl(engine, state.portfolio, account, s, e)
    if as_json:
        figures = {f"{k}_cents": getattr(p, k) for k in p.__dataclass_fields__}
        print_json({"account": name, "from": s.isoformat(), "to": e.isoformat(), **figures, "note": NOTE})
        return
    t = Table("Figure", "USD", title=f"{name} {start} – {end or 'today'}", title_justify="left")
    t.add_row("net realized gain", usd(p.realized))
    t.add_row("+ dividends", usd(p.dividends))
    t.add_row("− fees", usd(p.fees))
    t.add_row("[bold]pre-tax[/]", f"[bold]{usd(p.pre_tax)}[/]")
    t.add_row("− estimated tax", usd(p.estimated_tax))
    t.add_row("[bold]post-tax[/]", f"[bold]{usd(p.post_tax)}[/]")
    console.print(t)
    tax_line()
