"""`alluse`: every command is a thin shell over one service call; errors are one line and exit 1."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from alluse.cli.common import (
    JsonOpt,
    KeyOpt,
    OverrideOpt,
    actor,
    app,
    broker_app,
    friendly,
    new_key,
    print_json,
    state,
)
from alluse.cli.render import account_tree_table, console, err_console, replay_note, usd
from alluse.config import get_settings, server_workers
from alluse.domain.errors import InvalidInput
from alluse.domain.parsing import parse_money

group_app = typer.Typer(help="Account groups.", no_args_is_help=True)
config_app = typer.Typer(help="Account, group and portfolio configuration.", no_args_is_help=True)
keys_app = typer.Typer(help="The encryption keys of stored broker credentials.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
app.add_typer(group_app, name="group")
lifecycle_app = typer.Typer(help="The lifecycle: forks, merges, quarterly reinvestment.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(lifecycle_app, name="lifecycle")


@app.command()
@friendly
def init(
    name: Annotated[str, typer.Option("--name", help="Name of the portfolio to create.")] = "main",
    template: Annotated[str, typer.Option(help="conservative | moderate | aggressive")] = "moderate",
    key: KeyOpt = None,
) -> None:
    """Create the database schema (or bring it up to date) and a portfolio."""
    from alluse.security.keyring import load_keyring
    from alluse.services.portfolios import create_portfolio, use_portfolio

    result = create_portfolio(state.engine(), actor(), name, new_key(key or f"init-{name}"), template)
    load_keyring(get_settings())  # creates the key file (0600) unless ALLUSE_SECRET_KEY is set
    use_portfolio(state.engine(), result["name"])
    console.print(
        f"portfolio [bold]{result['name']}[/] ready (id {result['portfolio_id']}){replay_note(result)}; "
        "commands act on it unless told otherwise (`alluse use NAME` changes that)"
    )


@app.command()
@friendly
def use(name: Annotated[str, typer.Argument(help="Portfolio name or id.")]) -> None:
    """Choose the portfolio commands act on when --portfolio is not given (stored in the database)."""
    from alluse.services.portfolios import use_portfolio

    console.print(f"commands now act on portfolio [bold]{use_portfolio(state.engine(), name)}[/]")


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
    from alluse.services.queries import account_tree

    tree = account_tree(state.engine(), state.portfolio)
    if as_json:
        import json

        print(json.dumps(tree, indent=2))
    else:
        console.print(account_tree_table(tree))


def _print_move(r: dict[str, Any]) -> None:
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

    from alluse.services.brokers import list_brokerage

    rows = list_brokerage(state.engine(), state.portfolio)
    if as_json:
        print_json(rows)
        return
    table = Table("Brokerage account", "Mapped to", "Status")
    for row in rows:
        table.add_row(row["brokerage_account"], row["mapped_to"] or "—", row["status"])
    console.print(table)


@config_app.command("show")
@friendly
def config_show(
    target: Annotated[str, typer.Argument(help="An account, a group, or 'portfolio'.")], as_json: JsonOpt = False
) -> None:
    """Effective configuration: template values with overrides applied; for 'portfolio' also the
    lifecycle settings (fork and merge thresholds, splits) and the tax reserve rate."""
    from rich.table import Table

    from alluse.services.configuration import show

    cfg = show(state.engine(), state.portfolio, target)
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


@app.command()
@friendly
def verify(
    export_head: Annotated[
        bool, typer.Option("--export-head", help="Print each chain's head (chain:seq:mac) to keep elsewhere.")
    ] = False,
    expect_head: Annotated[
        list[str] | None,
        typer.Option("--expect-head", help="A head printed by --export-head earlier; fails if the chain lost it."),
    ] = None,
) -> None:
    """Recompute every balance from the journal; check zero-sum, the one-to-one mapping, the keyed audit
    chain and that every recorded row is the one the chain recorded."""
    from alluse.services.verify import Head
    from alluse.services.verify import verify as run_verify

    expect = [Head.parse(h) for h in expect_head or []]
    report = run_verify(state.engine(), expect=expect)
    counts = ", ".join(f"{v} {k}" for k, v in report.counts.items())
    if export_head:
        for h in report.heads:
            print(h.token())
    if report.ok:
        (err_console if export_head else console).print(
            f"[green]verified[/]: {counts}; balances equal the journal, postings sum to zero, "
            "brokerage mapping one-to-one, audit chain intact, every row as the chain recorded it"
        )
        return
    for p in report.problems:
        err_console.print(f"[red]✗[/] {p}", highlight=False)
    err_console.print(f"[red]{len(report.problems)} discrepancies[/] ({counts})")
    raise typer.Exit(1)


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
    resume after a crash, and on PostgreSQL to run in several processes at once)."""
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
            )
    else:
        report = lifecycle.run(state.engine(), actor(), state.portfolio, day)
    for a in report.applied:
        console.print(f"{a['rule'].lower()} {usd(a['amount_cents'])}: {a['reason']}", highlight=False)
    for w in report.waiting:
        console.print(f"[yellow]waiting[/] {w['account']}: {w['reason']}", highlight=False)
    counts = ", ".join(f"{n} {r.value.lower()}" for r in lifecycle.Rule if (n := report.count(r)))
    console.print(
        f"lifecycle {as_of}: {len(report.applied)} actions applied ({counts or 'none'}), "
        f"{len(report.waiting)} waiting; {report.families_skipped} of {report.families} families "
        "were being worked on by another worker",
        highlight=False,
    )


@lifecycle_app.command("history")
@friendly
def lifecycle_history(as_json: JsonOpt = False) -> None:
    """Every lifecycle action applied so far, oldest first."""
    from alluse.services import lifecycle

    rows = lifecycle.history(state.engine(), state.portfolio)
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

    from alluse.services import lifecycle

    roots = lifecycle.family_tree(state.engine(), state.portfolio)
    if as_json:
        import json

        print(json.dumps(roots, indent=2))
        return
    top = Tree("[bold]groups[/]")

    def add(parent: Any, node: dict[str, Any]) -> None:
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


@app.command()
@friendly
def demo() -> None:
    """Build a realistic demo portfolio (groups, pooled brokerage accounts, movements) and show it.

    Every step carries a fixed idempotency key, so running it again changes nothing."""
    from alluse.services.demo import build_demo
    from alluse.services.queries import account_tree

    engine = state.engine()
    for line in build_demo(engine, actor()):
        console.print(line, highlight=False)
    console.print(account_tree_table(account_tree(engine, "demo")))
    console.print(
        "next: [bold]alluse -p demo verify[/], [bold]alluse -p demo broker list[/], "
        "[bold]alluse -p demo config show A1-GEN[/]"
    )


@app.command()
@friendly
def bench(
    quick: Annotated[bool, typer.Option(help="Smaller counts, for a fast look.")] = False,
    db: Annotated[
        str,
        typer.Option(
            help="sqlite (a fresh file in a temp dir), postgres (a scratch database <name>_bench next to the "
            "URL's) or citus (the same on the Citus cluster whose coordinator the URL names, distributed)"
        ),
    ] = "sqlite",
    url: Annotated[
        str | None, typer.Option(help="PostgreSQL server for --db postgres or citus (default: ALLUSE_DATABASE_URL).")
    ] = None,
    http: Annotated[
        bool, typer.Option("--http", help="The REST API under HTTP load from a second process, on loopback.")
    ] = False,
    only: Annotated[
        str | None,
        typer.Option(
            help="Run one part only: ledger, lifecycle, trades, verify, ibkr, projection, web or events (needs NATS, ALLUSE_NATS_URL)."
        ),
    ] = None,
) -> None:
    """Benchmark: one JSON object per line, with the raw-database baseline from the same run."""
    from alluse.bench.run import run_bench

    run_bench(
        db,
        quick=quick,
        out=sys.stdout,
        url=url or state.database_url or get_settings().database_url,
        http=http,
        only=only,
    )


@app.command("schema-docs")
@friendly
def schema_docs(
    root: Annotated[str, typer.Option(help="Repository root holding docs/ and deploy/.")] = ".",
    url: Annotated[
        str | None,
        typer.Option(
            help="PostgreSQL server for deploy/schema.sql (default: ALLUSE_DATABASE_URL); a scratch "
            "database <name>_schema is created there and dropped."
        ),
    ] = None,
) -> None:
    """Regenerate docs/data-model.md (tables, keys, ERD), deploy/citus.sql and deploy/schema.sql."""
    from pathlib import Path

    from alluse.store.schema_doc import dump_postgres_schema, render_citus_sql, update_data_model

    base = Path(root)
    doc = base / "docs" / "data-model.md"
    doc.write_text(update_data_model(doc))
    console.print(f"wrote {doc}")
    citus = base / "deploy" / "citus.sql"
    citus.write_text(render_citus_sql())
    console.print(f"wrote {citus}")
    pg = url or state.database_url or get_settings().database_url
    if not pg.startswith("postgresql"):
        raise InvalidInput("deploy/schema.sql needs PostgreSQL: pass --url postgresql+psycopg://… (data-model.md done)")
    sql = base / "deploy" / "schema.sql"
    sql.write_text(dump_postgres_schema(pg))
    console.print(f"wrote {sql}")


@keys_app.command("rotate")
@friendly
def keys_rotate() -> None:
    """Re-encrypt every stored broker credential under a new key.

    With the key file: a new key is generated, every credential re-encrypted, and the old key
    dropped. With ALLUSE_SECRET_KEY: put the new key first in the list, run this, then drop the
    old one from the list."""
    from cryptography.fernet import Fernet

    from alluse.security.audit_key import forget as forget_signer
    from alluse.security.keyring import Keyring, load_keyring, write_key_file
    from alluse.services.brokers import rotate_credentials

    settings = get_settings()
    current = load_keyring(settings)
    engine = state.engine()
    if current.source == "env":
        r = rotate_credentials(engine, actor(), current)
        console.print(
            f"re-encrypted {r['reencrypted']} credentials in {r['portfolios']} portfolios under key "
            f"{current.fingerprint}; now remove the older keys from ALLUSE_SECRET_KEY"
        )
        return
    from pathlib import Path

    path = Path(current.source)
    # The old keys stay in the file until every row is re-encrypted, so a crash leaves nothing unreadable.
    rotated = Keyring((Fernet.generate_key(), *current.keys), current.source)
    write_key_file(path, rotated.keys)
    forget_signer()  # the audit chain signs with the new key from here on
    r = rotate_credentials(engine, actor(), rotated)
    write_key_file(path, rotated.keys[:1])
    forget_signer()
    console.print(
        f"re-encrypted {r['reencrypted']} credentials in {r['portfolios']} portfolios; "
        f"new key {rotated.fingerprint} in {path}, old key removed"
    )


@audit_app.command("verify")
@friendly
def audit_verify() -> None:
    """Re-hash every portfolio's audit chain: any edited or deleted entry is reported (exit 1)."""
    from alluse.services.verify import verify_audit

    report = verify_audit(state.engine())
    if report.ok:
        console.print(f"[green]audit chain intact[/]: {report.counts['audit_entries']} entries")
        return
    for p in report.problems:
        err_console.print(f"[red]✗[/] {p}", highlight=False)
    err_console.print(f"[red]audit chain broken[/]: {len(report.problems)} problems")
    raise typer.Exit(1)


@app.command()
@friendly
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    relay: Annotated[bool, typer.Option("--relay", help="Also run the event relay (alluse events relay).")] = False,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Server processes (default ALLUSE_WORKERS, else one per CPU, at most 4)."),
    ] = None,
) -> None:
    """Serve the REST API. The first run on an empty database builds the demo portfolio and an admin
    user, and prints the password once."""
    import os
    import secrets

    import uvicorn

    from alluse.security.keyring import load_keyring
    from alluse.services import access
    from alluse.services.demo import build_demo

    settings = get_settings()
    engine = state.engine()
    keyring = load_keyring(settings)
    host, port = host or settings.host, port or settings.port
    if not access.list_users(engine):
        for line in build_demo(engine, "system:serve"):
            console.print(line, highlight=False)
        password = secrets.token_urlsafe(12)
        access.create_user(engine, "admin", password, is_admin=True)
        with engine.connect() as conn:
            pid = access.portfolio_id_for(conn, "demo")
        assert pid is not None
        access.grant_role(engine, "system:serve", pid, "admin", "owner", "serve:admin-owner")
        console.print(
            f"\n[bold]first run[/]: user [bold]admin[/] (admin, owner of 'demo'), password [bold]{password}[/]"
            " — shown once, keep it.\n"
            f"log in:  curl -s -X POST http://{host}:{port}/auth/login -H 'content-type: application/json' "
            f'-d \'{{"username":"admin","password":"{password}"}}\'\n'
            f"then:    curl -s http://{host}:{port}/portfolios/demo/accounts -H 'Authorization: Bearer <access_token>'\n"
            f"API docs: http://{host}:{port}/docs",
            highlight=False,
        )
    processes = workers or server_workers(settings.workers)
    console.print(
        f"serving on http://{host}:{port} (database {engine.url.render_as_string(hide_password=True)}, "
        f"{processes} worker{'s' if processes > 1 else ''})"
    )
    console.print(f"dashboard: http://{host}:{port}/ in a browser (docs/web.md)", highlight=False)
    if relay:
        from alluse.services.relay import RelayConfig, start_in_thread

        cfg = RelayConfig.from_settings(settings)
        start_in_thread(engine, keyring, cfg)
        console.print(f"relaying events to {cfg.nats_url} (stream {cfg.stream}) and to webhooks")
    # Forwarded headers are believed only from ALLUSE_TRUSTED_PROXIES, by the app itself (api/app.py);
    # uvicorn's own handling would believe them from loopback.
    options = {"host": host, "port": port, "log_level": "warning", "access_log": False, "proxy_headers": False}
    if processes == 1:
        from alluse.api.app import create_app

        uvicorn.run(create_app(settings, engine, keyring), **options)
        return
    # Each worker process builds its own app from the settings (create_app): its own engine and pool,
    # the same keys (the key file exists by now, or ALLUSE_SECRET_KEY). State shared between requests
    # lives in the database: the login throttle, refresh tokens, idempotency keys, the audit chain.
    os.environ["ALLUSE_DATABASE_URL"] = engine.url.render_as_string(hide_password=False)
    uvicorn.run("alluse.api.app:create_app", factory=True, workers=processes, **options)


# Commands in their own modules register themselves on `app` when imported.
from alluse.cli import brokers as _brokers  # noqa: E402, F401
from alluse.cli import events as _events  # noqa: E402, F401
from alluse.cli import journal as _journal  # noqa: E402, F401
from alluse.cli import project as _project  # noqa: E402, F401
from alluse.cli import trading as _trading  # noqa: E402, F401
from alluse.cli import users as _users  # noqa: E402, F401
