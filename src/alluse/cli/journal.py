"""`alluse journal`: find a transfer (to correct it with `alluse reverse NUMBER`)."""

from typing import Annotated

import typer
from rich.table import Table

from alluse.cli.common import JsonOpt, app, friendly, parse_date, print_json, state
from alluse.cli.render import console, usd


@app.command()
@friendly
def journal(
    account: Annotated[str | None, typer.Option(help="Only transfers with a leg on this account.")] = None,
    kind: Annotated[
        str | None, typer.Option(help="Only these kinds, comma-separated, e.g. DEPOSIT,WITHDRAWAL,TRANSFER.")
    ] = None,
    start: Annotated[str | None, typer.Option("--from", help="Recorded on or after YYYY-MM-DD (UTC).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Recorded on or before YYYY-MM-DD (UTC).")] = None,
    page: Annotated[int, typer.Option(help="Page number, 1 = the oldest transfers.")] = 1,
    per_page: Annotated[int, typer.Option(help="Transfers per page (at most 1000).")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The portfolio's transfers by number, oldest first, with their legs."""
    from alluse.services.journal import journal as read_journal

    r = read_journal(
        state.engine(),
        state.portfolio,
        account=account,
        kind=kind,
        start=parse_date(start) if start else None,
        end=parse_date(end) if end else None,
        page=page,
        per_page=per_page,
    )
    if as_json:
        print_json(r)
        return
    pages = max(1, -(-r["total"] // r["per_page"]))
    t = Table("#", "Recorded", "Kind", "Amount", "Legs", "Memo", title=f"Journal, page {r['page']} of {pages}")
    for e in r["transfers"]:
        legs = ", ".join(f"{leg['account']} {'+' if leg['amount_cents'] > 0 else ''}{usd(leg['amount_cents'])}"
                         for leg in e["legs"])  # fmt: skip
        memo = e["memo"]
        if e["reverses"]:
            memo = f"reverses #{e['reverses']}: {memo}"
        if e["reversed_by"]:
            memo = f"{memo} (reversed by #{e['reversed_by']})".strip()
        t.add_row(
            str(e["number"]), e["recorded_at"][:16].replace("T", " "), e["kind"], usd(e["amount_cents"]), legs, memo
        )
    console.print(t)
    console.print(f"{r['total']} transfers", highlight=False)
