"""Commands for broker statements and orders: `import ibkr`, `reconcile ibkr`, `broker fetch`, `order`."""

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from alluse.cli.common import JsonOpt, KeyOpt, actor, app, friendly, new_key, parse_date, print_json, settings, state
from alluse.cli.render import console, replay_note, usd
from alluse.domain.errors import InvalidInput

broker_app = typer.Typer(help="Brokerage accounts and the portfolio's pool.", no_args_is_help=True)
app.add_typer(broker_app, name="broker")
import_app = typer.Typer(help="Import broker statements.", no_args_is_help=True)
reconcile_app = typer.Typer(
    help="Compare alluse with a broker statement (exit 3 on differences).", no_args_is_help=True
)
app.add_typer(import_app, name="import")
app.add_typer(reconcile_app, name="reconcile")

FilesArg = Annotated[list[Path], typer.Argument(help="IBKR Flex Query XML files (Activity statements).")]

DIFFERENCES_EXIT = 3


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None


def print_import(report: Mapping[str, Any], source: str) -> None:
    table = Table(title=f"Imported {source}", title_justify="left")
    for col in ("Brokerage account", "Account", "Period", "Added", "Already present", "Unsupported"):
        table.add_column(col, justify="right" if col in ("Added", "Already present") else "left")
    for a in report["accounts"]:
        unsupported = ", ".join(f"{k}: {v}" for k, v in a["unsupported"].items()) or "—"
        table.add_row(
            a["brokerage_account"],
            a["account"],
            a["period"],
            str(a["added"]),
            str(a["already_present"]),
            unsupported,
        )
    console.print(table)
    if report["not_read"]:
        console.print(
            "sections not imported: " + ", ".join(f"{k} ({v} rows)" for k, v in report["not_read"].items()),
            highlight=False,
        )
    if report["ignored_attributes"]:
        n = sum(report["ignored_attributes"].values())
        console.print(f"[dim]{n} attribute values unknown to the Flex parser were ignored[/]", highlight=False)
    print_reconciliation(report["reconciliation"])


def print_reconciliation(rec: Mapping[str, Any]) -> None:
    for a in rec["accounts"]:
        head = f"{a['brokerage_account']} → {a['account']} as of {a['as_of']}: cash {usd(a['cash_cents'])}, "
        head += f"{a['positions']} positions"
        if not a["differences"]:
            console.print(f"{head}: [green]reconciled[/]", highlight=False)
        for d in a["differences"]:
            if d["what"] == "quantity":
                broker, ours = str(d["broker_quantity"]), str(d["alluse_quantity"])
            else:
                broker = "—" if d["broker_cents"] is None else usd(d["broker_cents"])
                ours = usd(d["alluse_cents"])
            what = f"{d['symbol']} {d['what']}" if d.get("symbol") else d["what"]
            note = f" ({d['note']})" if d.get("note") else ""
            console.print(f"{head}: [red]{what}[/] broker {broker}, alluse {ours}{note}", highlight=False)
        for k, v in a["not_compared"].items():
            console.print(f"  [dim]not compared: {k} ({v})[/]", highlight=False)
    n = rec["differences"]
    console.print("no differences" if n == 0 else f"[red]{n} differences[/]", highlight=False)


@broker_app.command("add")
@friendly
def broker_add(
    refs: Annotated[list[str], typer.Argument(help="Brokerage accounts, e.g. IBKR:U1234567")],
    key: KeyOpt = None,
) -> None:
    """Register brokerage accounts into the portfolio's pool (unmapped, ready for new groups and forks)."""
    from alluse.services.brokers import register

    r = register(state.engine(), actor(), state.portfolio, refs, new_key(key))
    console.print(f"registered {', '.join(r['registered'])} into the pool{replay_note(r)}")


@broker_app.command("list")
@friendly
def broker_list(as_json: JsonOpt = False) -> None:
    """Brokerage accounts and the system account each maps to (POOL: registered, unmapped)."""
    from rich.table import Table

    from alluse.views.brokers import list_brokerage

    rows = list_brokerage(state.engine(), state.portfolio)
    if as_json:
        print_json(rows)
        return
    table = Table("Brokerage account", "Mapped to", "Status")
    for row in rows:
        table.add_row(row["brokerage_account"], row["mapped_to"] or "—", row["status"])
    console.print(table)


@import_app.command("ibkr")
@friendly
def import_ibkr(files: FilesArg, as_json: JsonOpt = False) -> None:
    """Import IBKR Flex statements: each row once (keyed by IBKR's ids), then reconcile."""
    from alluse.services.statements import import_statement

    for path in files:
        report = import_statement(state.engine(), actor(), state.portfolio, _read(path))
        if as_json:
            console.print_json(json.dumps(report))
        else:
            print_import(report, path.name)


@reconcile_app.command("ibkr")
@friendly
def reconcile_ibkr(files: FilesArg, as_json: JsonOpt = False) -> None:
    """Compare each mapped account's cash and positions with the statement as of its end date."""
    from alluse.services.statements import reconcile_statement

    total = 0
    for path in files:
        rec = reconcile_statement(state.engine(), state.portfolio, _read(path))
        total += rec["differences"]
        if as_json:
            console.print_json(json.dumps(rec))
        else:
            print_reconciliation(rec)
    if total:
        raise typer.Exit(DIFFERENCES_EXIT)


@broker_app.command("fetch")
@friendly
def broker_fetch(
    ref: Annotated[str, typer.Argument(help="The brokerage account, e.g. IBKR:U1234567")],
    save: Annotated[Path | None, typer.Option("--save", help="Also keep the downloaded XML in this file.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Download the account's Flex statement (its stored token and query id), then import it."""
    from alluse.security.keyring import load_keyring
    from alluse.services.statements import fetch_statement, import_statement

    keyring = load_keyring(settings(), create=False)
    data = fetch_statement(state.engine(), state.portfolio, ref, keyring, settings())
    if save is not None:
        try:
            save.write_bytes(data)  # kept even if the import below refuses the statement
        except OSError as exc:
            raise InvalidInput(f"cannot write {save}: {exc.strerror}") from None
    report = import_statement(state.engine(), actor(), state.portfolio, data)
    if as_json:
        console.print_json(json.dumps(report))
    else:
        print_import(report, ref)


@broker_app.command("flex-credentials")
@friendly
def broker_flex_credentials(
    ref: Annotated[str, typer.Argument(help="The IBKR brokerage account, e.g. IBKR:U1234567")],
    query_id: Annotated[str, typer.Option("--query-id", help="The Flex query's id (Reports → Flex Queries).")],
    token: Annotated[
        str,
        typer.Option(
            "--token", prompt="Flex Web Service token", hide_input=True, help="Asked for when not given (not echoed)."
        ),
    ],
    key: KeyOpt = None,
) -> None:
    """Store the Flex Web Service token and query id of an IBKR account, encrypted."""
    from alluse.security.keyring import load_keyring
    from alluse.services.brokers import set_credentials

    secret = json.dumps({"flex_token": token.strip(), "flex_query_id": query_id.strip()})
    keyring = load_keyring(settings())
    r = set_credentials(state.engine(), actor(), state.portfolio, ref, secret, new_key(key), keyring)
    console.print(f"Flex credentials of {r['brokerage_account']} stored (encrypted){replay_note(r)}")


@app.command("order")
@friendly
def order(
    account: Annotated[str, typer.Argument(help="Account name, e.g. A1-GEN.")],
    action: Annotated[str, typer.Argument(help="BTO, STO, BTC or STC.")],
    symbol: Annotated[str, typer.Argument(help="Ticker or OCC symbol.")],
    quantity: Annotated[int, typer.Argument(help="Shares or contracts.")],
    delta: Annotated[str | None, typer.Option("--delta", help="The option's delta, for the protocol check.")] = None,
    on: Annotated[str | None, typer.Option("--date", help="YYYY-MM-DD (default: today).")] = None,
    accept_warnings: Annotated[
        bool, typer.Option("--accept-warnings", help="Send the order even if the check warns (a human decision).")
    ] = False,
    key: KeyOpt = None,
) -> None:
    """Check an order against the method (§7), record the intent, and send it to the account's broker
    (the paper broker fills at the latest mark). Refused intents are recorded as refused."""
    from alluse.services.orders import OrderIntent, place_order

    intent = OrderIntent(account, action.strip().upper(), symbol, quantity, delta, parse_date(on), accept_warnings)
    r = place_order(state.engine(), actor(), state.portfolio, new_key(key), intent, settings())
    for w in r["warnings"]:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    if r["status"] == "REFUSED":
        for v in r["violations"]:
            console.print(f"[red]violation:[/] {v}", highlight=False)
        console.print(f"order #{r['order_id']} [red]REFUSED[/] (recorded){replay_note(r)}", highlight=False)
        raise typer.Exit(1)
    console.print(
        f"order #{r['order_id']} FILLED by {r['broker']}: {r['action']} {r['quantity']} {r['symbol']} at "
        f"{r['price']}, commission {usd(r['commission_cents'])}, cash {usd(r['cash_cents'])}{replay_note(r)}",
        highlight=False,
    )
