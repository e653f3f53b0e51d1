"""Setting up and looking after an installation: init, use, verify, keys, audit, demo, bench,
schema docs and the server."""

import sys
from typing import Annotated, Any, NoReturn

import typer

from alluse.cli.common import KeyOpt, actor, app, friendly, new_key, settings, state
from alluse.cli.render import account_tree_table, console, err_console, replay_note

keys_app = typer.Typer(help="The encryption keys of stored broker credentials.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")


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
    load_keyring(settings())  # creates the key file (0600) unless ALLUSE_SECRET_KEY is set
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
    _fail(report.problems, f"[red]{len(report.problems)} discrepancies[/] ({counts})")


def _fail(problems: list[str], summary: str) -> NoReturn:
    """Each problem on its own line, the summary last, exit 1: what `verify` and `audit verify` print."""
    for p in problems:
        err_console.print(f"[red]✗[/] {p}", highlight=False)
    err_console.print(summary)
    raise typer.Exit(1)


@app.command()
@friendly
def demo() -> None:
    """Build a realistic demo portfolio (groups, pooled brokerage accounts, movements) and show it.

    Every step carries a fixed idempotency key, so running it again changes nothing."""
    from alluse.services.demo import build_demo
    from alluse.views.accounts import account_tree

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
            help="Run one part only: ledger, lifecycle, trades, verify, ibkr, projection, web, cli or events (needs NATS, ALLUSE_NATS_URL)."
        ),
    ] = None,
) -> None:
    """Benchmark: one JSON object per line, with the raw-database baseline from the same run."""
    from alluse.bench.run import run_bench

    run_bench(
        db,
        quick=quick,
        out=sys.stdout,
        url=url or state.database_url or settings().database_url,
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

    from alluse.services.database import write_schema_docs

    for written in write_schema_docs(Path(root), url or state.database_url or settings().database_url):
        console.print(f"wrote {written}")


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

    current = load_keyring(settings())
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
    _fail(report.problems, f"[red]audit chain broken[/]: {len(report.problems)} problems")


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

    from alluse.api.server import PROTOCOL
    from alluse.config import server_workers
    from alluse.security.keyring import load_keyring
    from alluse.services import access
    from alluse.services.demo import build_demo
    from alluse.views.accounts import portfolio_id

    config = settings()
    engine = state.engine()
    keyring = load_keyring(config)
    host, port = host or config.host, port or config.port
    if not access.list_users(engine):
        for line in build_demo(engine, "system:serve"):
            console.print(line, highlight=False)
        password = secrets.token_urlsafe(12)
        access.create_user(engine, "admin", password, is_admin=True)
        pid = portfolio_id(engine, "demo")
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
    processes = workers or server_workers(config.workers)
    console.print(
        f"serving on http://{host}:{port} (database {engine.url.render_as_string(hide_password=True)}, "
        f"{processes} worker{'s' if processes > 1 else ''})"
    )
    console.print(f"dashboard: http://{host}:{port}/ in a browser (docs/web.md)", highlight=False)
    if relay:
        from alluse.services.relay import RelayConfig, start_in_thread

        cfg = RelayConfig.from_settings(config)
        start_in_thread(engine, keyring, cfg)
        console.print(f"relaying events to {cfg.nats_url} (stream {cfg.stream}) and to webhooks")
    # Forwarded headers are believed only from ALLUSE_TRUSTED_PROXIES, by the app itself (api/app.py);
    # uvicorn's own handling would believe them from loopback.
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "warning",
        "access_log": False,
        "proxy_headers": False,
        "http": PROTOCOL,  # httptools, each answer in one write (api/server.py)
    }
    if processes == 1:
        from alluse.api.app import create_app

        uvicorn.run(create_app(config, engine, keyring), **options)
        return
    # Each worker process builds its own app from the settings (create_app): its own engine and pool,
    # the same keys (the key file exists by now, or ALLUSE_SECRET_KEY). State shared between requests
    # lives in the database: the login throttle, refresh tokens, idempotency keys, the audit chain.
    os.environ["ALLUSE_DATABASE_URL"] = engine.url.render_as_string(hide_password=False)
    uvicorn.run("alluse.api.app:create_app", factory=True, workers=processes, **options)
