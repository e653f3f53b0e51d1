"""Rich rendering of results: tables for a trader's eye, one line per outcome."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from alluse.domain.money import format_usd

if TYPE_CHECKING:
    from alluse.views.accounts import AccountTree

console = Console()
# Errors and findings are one line each, whatever the width: scripts read them line by line.
err_console = Console(stderr=True, soft_wrap=True)
if not console.is_terminal:
    # Piped output has no width to fit: lines and table rows are never wrapped or truncated.
    console.soft_wrap = True
    console.width = 10_000


def usd(cents: int) -> str:
    return format_usd(cents)


def account_tree_table(tree: AccountTree) -> Table:
    table = Table(title=f"Portfolio {tree['portfolio']} ({tree['template']})", title_justify="left")
    for col, justify in [
        ("Group / account", "left"),
        ("Status", "left"),
        ("Cash", "right"),
        ("Buffer", "right"),
        ("Deployable", "right"),
        ("Base capital", "right"),
        ("Brokerage account", "left"),
    ]:
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    totals = {"cash": 0, "buffer": 0, "deployable": 0}
    for g in tree["groups"]:
        parent = f" ← {g['parent_group']}" if g.get("parent_group") else ""
        table.add_row(f"[bold]{g['name']}[/] {g['kind']}{parent}", g["status"], "", "", "", "", "")
        for a in g["accounts"]:
            status = a["status"] + (" [red]BUFFER_BREACH[/]" if a["buffer_breach"] else "")
            deployable = usd(a["deployable_cents"])
            if a["deployable_cents"] < 0:
                deployable = f"[red]{deployable}[/]"
            table.add_row(
                f"  {a['label']} {a['name']}",
                status,
                usd(a["cash_cents"]),
                usd(a["cash_buffer_cents"]),
                deployable,
                usd(a["base_capital_cents"]),
                a["brokerage_account"] or "",
            )
            totals["cash"] += a["cash_cents"]
            totals["buffer"] += a["cash_buffer_cents"]
            totals["deployable"] += a["deployable_cents"]
        table.add_section()
    table.add_row("[bold]total[/]", "", usd(totals["cash"]), usd(totals["buffer"]), usd(totals["deployable"]), "", "")
    return table


def tax_line() -> None:
    from alluse.domain.tax import NOTE

    console.print(f"[dim]tax figures: {NOTE}[/]")


def replay_note(result: Mapping[str, Any]) -> str:
    return (
        " [dim](replayed: this idempotency key was already applied; nothing changed)[/]"
        if result.get("replayed")
        else ""
    )
