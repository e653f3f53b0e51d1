"""The lifecycle: plan, run, history, earmarks and the fork/merge tree."""

from typing import TYPE_CHECKING, Annotated, Any

import typer

from alluse.cli.common import JsonOpt, actor, app, friendly, print_json, state
from alluse.cli.render import console, usd

if TYPE_CHECKING:
    from alluse.views.lifecycle import FamilyNode

lifecycle_app = typer.Typer(help="The lifecycle: forks, merges, quarterly reinvestment.", no_args_is_help=True)
app.add_typer(lifecycle_app, name="lifecycle")


def _as_of(text: str) -> Any:
    from datetime import date

    from alluse.domain.errors import InvalidInput

    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"--as-of must be a date like 2026-12-31, got {text!r}") from None


AsOfOpt = Annotated[str, typer.Option("--as-of", help="The day the rules run for, e.g. 2026-12-31 (a quarter end).")]


@lifecycle_app.command("plan")
@friendly
def lifecycle_plan(as_of: AsOfOpt, as_json: JsonOpt = False) -> None:
    """Every action a run would take on this day, with amounts and reasons. Changes nothing."""
    from alluse.services import lifecycle

    rows = lifecycle.plan(state.engine(), state.portfolio, _as_of(as_of))
    if as_json:
        import json

        print(json.dumps(rows, indent=2))
        return
    if not rows:
        console.print(f"nothing to do on {as_of}")
        return
    from rich.table import Table

    table = Table("Rule", "Subject", "Outcome", "Amount", "Reason", title=f"Lifecycle plan for {as_of}")
    for r in rows:
        table.add_row(r["rule"], r["subject"], r["outcome"], usd(r["amount_cents"]), r["reason"])
    console.print(table)
    console.print("[dim]Tax figures are estimates for running the method, not tax advice.[/]")


@lifecycle_app.command("run")
@friendly
def lifecycle_run(
    as_of: AsOfOpt,
    batch: Annotated[
        int, typer.Option("--families-per-batch", min=1, help="Families (a group and its forks) per transaction.")
    ] = 500,
) -> None:
    """Apply the plan: every action exactly once under its own idempotency key (safe to re-run, to
    resume after a crash, and to start in several processes at once: one sweeps, and on PostgreSQL
    the others say so and leave it to that one)."""
    from alluse.domain.lifecycle import Rule
    from alluse.services import lifecycle

    day = _as_of(as_of)
    if console.is_terminal:
        from rich.progress import Progress

        with Progress(transient=True, console=console) as bar:
            task = bar.add_task(f"lifecycle {as_of}", total=None)
            report = lifecycle.run(
                state.engine(),
                actor(),
                state.portfolio,
                day,
                progress=lambda d, t: bar.update(task, completed=d, total=t),
                families_per_batch=batch,
            )
    else:
        report = lifecycle.run(state.engine(), actor(), state.portfolio, day, families_per_batch=batch)
    if report.busy:  # not a failure: the sweep is being done, once
        console.print(
            f"[yellow]lifecycle {as_of}: another worker is sweeping this portfolio as of that day; this one "
            "did nothing[/] (run it again once that one has ended to act on anything changed since)",
            highlight=False,
        )
        return
    for a in report.applied:
        console.print(f"{a['rule'].lower()} {usd(a['amount_cents'])}: {a['reason']}", highlight=False)
    for w in report.waiting:
        console.print(f"[yellow]waiting[/] {w['account']}: {w['reason']}", highlight=False)
    counts = ", ".join(f"{n} {r.value.lower()}" for r in Rule if (n := report.count(r)))
    console.print(
        f"lifecycle {as_of}: {len(report.applied)} actions applied ({counts or 'none'}), "
        f"{len(report.waiting)} waiting ({report.families} families acting)",
        highlight=False,
    )


@lifecycle_app.command("history")
@friendly
def lifecycle_history(as_json: JsonOpt = False) -> None:
    """Every lifecycle action applied so far, oldest first."""
    from alluse.views.lifecycle import history

    rows = history(state.engine(), state.portfolio)
    if as_json:
        import json

        print(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    table = Table("#", "As of", "Rule", "Account", "Group", "Amount", "Reason", title="Lifecycle history")
    for r in rows:
        table.add_row(str(r["id"]), r["as_of"], r["rule"], r["account"], r["group"] or "", usd(r["amount_cents"]),
                      r["reason"])  # fmt: skip
    console.print(table)


@lifecycle_app.command("earmarks")
@friendly
def lifecycle_earmarks(as_json: JsonOpt = False) -> None:
    """Reinvestment planned versus executed: earmarked, drawn down by purchases, still open."""
    from rich.table import Table

    from alluse.services.earmarks import earmark_report

    rows = earmark_report(state.engine(), state.portfolio)
    if as_json:
        print_json(rows)
        return
    table = Table("Account", "Purpose", "Planned", "Executed", "Open", title="Earmarks: planned versus executed")
    for r in rows:
        table.add_row(r["account"], r["purpose"], usd(r["planned_cents"]), usd(r["executed_cents"]),
                      usd(r["open_cents"]))  # fmt: skip
    console.print(table)


@app.command()
@friendly
def tree(as_json: JsonOpt = False) -> None:
    """The fork/merge genealogy of every group."""
    from rich.tree import Tree

    from alluse.views.lifecycle import family_tree

    roots = family_tree(state.engine(), state.portfolio)
    if as_json:
        import json

        print(json.dumps(roots, indent=2))
        return
    top = Tree("[bold]groups[/]")

    def add(parent: Any, node: "FamilyNode") -> None:
        how = f" forked from {node['forked_from']}" if node["forked_from"] else ""
        merged = f" → merged into {node['merged_into']}" if node["merged_into"] else ""
        branch = parent.add(
            f"[bold]{node['name']}[/] {node['kind']} {node['status']} NAV {usd(node['nav_cents'])}{how}{merged}"
        )
        for child in node["children"]:
            add(branch, child)

    for root in roots:
        add(top, root)
    console.print(top)
