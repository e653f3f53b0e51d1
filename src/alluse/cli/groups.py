"""Account groups, the account tree and configuration."""

from collections.abc import Mapping
from typing import Annotated, Any

import typer

from alluse.cli.common import JsonOpt, KeyOpt, actor, app, friendly, new_key, print_json, state
from alluse.cli.render import account_tree_table, console, replay_note, usd
from alluse.domain.parsing import parse_money

group_app = typer.Typer(help="Account groups.", no_args_is_help=True)
config_app = typer.Typer(help="Account, group and portfolio configuration.", no_args_is_help=True)
app.add_typer(group_app, name="group")
app.add_typer(config_app, name="config")


@group_app.command("open")
@friendly
def group_open(
    amount: Annotated[str, typer.Argument(help="New capital in USD, e.g. 250000 or 250,000.00")],
    broker: Annotated[
        list[str] | None,
        typer.Option(
            "--broker",
            "-b",
            help="Brokerage account for Gen, Rev, Com in that order (three times), e.g. IBKR:U1234567; default: new paper accounts.",
        ),
    ] = None,
    allocation: Annotated[
        str | None, typer.Option(help="Gen/Rev/Com percentages, e.g. 40/30/30 (default: the portfolio's).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Group name (default A1, A2 ...).")] = None,
    key: KeyOpt = None,
) -> None:
    """Open a PRIMARY group: Gen-Acc, Rev-Acc and Com-Acc, each with its 5 % cash buffer."""
    from alluse.services.configuration import parse_allocation
    from alluse.services.groups import group_opening, open_group

    amount_cents = parse_money(amount, allow_zero=True)  # 0: a group over real accounts, funded by statements
    opening = group_opening(amount_cents, broker, parse_allocation(allocation) if allocation else None, name)
    r = open_group(state.engine(), actor(), state.portfolio, new_key(key), opening)
    parts = ", ".join(f"{k} {usd(v['cash_cents'])} → {v['brokerage_account']}" for k, v in r["accounts"].items())
    console.print(f"opened group [bold]{r['name']}[/] with {usd(r['amount_cents'])}: {parts}{replay_note(r)}")


@app.command()
@friendly
def accounts(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """The tree of groups and accounts: cash, buffer, deployable cash, status, brokerage account."""
    from alluse.views.accounts import account_tree

    tree = account_tree(state.engine(), state.portfolio)
    if as_json:
        import json

        print(json.dumps(tree, indent=2))
    else:
        console.print(account_tree_table(tree))


@config_app.command("show")
@friendly
def config_show(
    target: Annotated[str, typer.Argument(help="An account, a group, or 'portfolio'.")], as_json: JsonOpt = False
) -> None:
    """Effective configuration: template values with overrides applied; for 'portfolio' also the
    lifecycle settings (fork and merge thresholds, splits) and the tax reserve rate."""
    from rich.table import Table

    from alluse.services.configuration import show

    cfg: Mapping[str, Any] = show(state.engine(), state.portfolio, target)  # every shape is shown alike
    if as_json:
        print_json(cfg)
        return
    table = Table("Setting", "Value", title=f"{cfg['target']}", title_justify="left")
    overridden = set(cfg.get("overridden", []))
    for k, v in cfg.items():
        if k not in ("target", "rules", "overridden", "lifecycle"):
            table.add_row(k, str(v))
    for k, v in {**cfg.get("rules", {}), **cfg.get("lifecycle", {})}.items():
        mark = " [yellow](override)[/]" if k in overridden or k.replace("_pct", "_bps") in overridden else ""
        table.add_row(k, f"{v}{mark}")
    console.print(table)


@config_app.command("set")
@friendly
def config_set(
    target: Annotated[str, typer.Argument(help="An account, a group, or 'portfolio'.")],
    setting: Annotated[
        str,
        typer.Argument(
            metavar="KEY",
            help="e.g. delta_min, entry_days, buffer_pct, template, allocation; for 'portfolio' also "
            "gen_fork_threshold, merge_threshold, gen_fork_split … (see `alluse config show portfolio`)",
        ),
    ],
    value: Annotated[str, typer.Argument(help="New value")],
    key: KeyOpt = None,
) -> None:
    """Change one setting (validated before anything is stored)."""
    from alluse.services.configuration import set_value

    r = set_value(state.engine(), actor(), state.portfolio, target, setting, value, new_key(key))
    console.print(f"{target}: {setting} = {value}{replay_note(r)}")
