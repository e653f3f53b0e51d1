"""Cash: deposits, withdrawals, transfers and their reversal."""

from typing import TYPE_CHECKING, Annotated

import typer

from alluse.cli.common import KeyOpt, OverrideOpt, actor, app, friendly, new_key, state
from alluse.cli.render import console, replay_note, usd
from alluse.domain.parsing import parse_money

if TYPE_CHECKING:
    from alluse.services.cash import CashMoved


def _print_move(r: "CashMoved") -> None:
    legs = ", ".join(
        f"{leg['account']} {'+' if leg['amount_cents'] > 0 else ''}{usd(leg['amount_cents'])}" for leg in r["legs"]
    )
    console.print(
        f"{r['kind'].lower()} {usd(r['amount_cents'])} · transfer #{r['transfer_number']} · {legs}{replay_note(r)}"
    )


@app.command()
@friendly
def deposit(
    target: Annotated[str, typer.Argument(help="A group (split by its allocation) or one account.")],
    amount: Annotated[str, typer.Argument(help="USD")],
    memo: Annotated[str, typer.Option(help="Note stored with the transfer.")] = "",
    key: KeyOpt = None,
) -> None:
    """Add funds to a group (split by its allocation) or to one account."""
    from alluse.services import cash

    (r,) = cash.move_cash(
        state.engine(), actor(), state.portfolio, [(new_key(key), cash.deposit(target, parse_money(amount), memo=memo))]
    )
    _print_move(r)


@app.command()
@friendly
def withdraw(
    account: Annotated[str, typer.Argument(help="Account name (e.g. A1-REV) or id.")],
    amount: Annotated[str, typer.Argument(help="USD")],
    memo: Annotated[str, typer.Option(help="Note stored with the transfer.")] = "",
    override: OverrideOpt = None,
    key: KeyOpt = None,
) -> None:
    """Withdraw cash (never from a Com-Acc; never into the cash buffer without an admin override)."""
    from alluse.services import cash

    (r,) = cash.move_cash(
        state.engine(),
        actor(),
        state.portfolio,
        [(new_key(key), cash.withdrawal(account, parse_money(amount), memo=memo))],
        override,
    )
    _print_move(r)


@app.command()
@friendly
def transfer(
    source: Annotated[str, typer.Argument(metavar="FROM", help="Account the cash leaves.")],
    to: Annotated[str, typer.Argument(metavar="TO", help="Account the cash enters.")],
    amount: Annotated[str, typer.Argument(help="USD")],
    memo: Annotated[str, typer.Option(help="Note stored with the transfer.")] = "",
    override: OverrideOpt = None,
    key: KeyOpt = None,
) -> None:
    """Move cash between two accounts of the portfolio, subject to the buffer rule."""
    from alluse.services import cash

    (r,) = cash.move_cash(
        state.engine(),
        actor(),
        state.portfolio,
        [(new_key(key), cash.transfer(source, to, parse_money(amount), memo=memo))],
        override,
    )
    _print_move(r)


@app.command()
@friendly
def reverse(
    number: Annotated[int, typer.Argument(help="Transfer number to correct (see `alluse journal`).")],
    reason: Annotated[str, typer.Option("--reason", help="Why; stored with the reversing entry.")],
    override: OverrideOpt = None,
    key: KeyOpt = None,
) -> None:
    """Correct a deposit, withdrawal or transfer with a reversing entry."""
    from alluse.services.cash import reverse as reverse_transfer

    r = reverse_transfer(state.engine(), actor(), state.portfolio, None, reason, new_key(key), override, number=number)
    console.print(
        f"transfer #{r['reverses_transfer_number']} reversed by transfer #{r['transfer_number']}{replay_note(r)}"
    )
