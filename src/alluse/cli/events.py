"""Commands for events out and in: the relay, webhooks, alerts as they happen, marks from a feed."""

import json
import logging
import time
from typing import Annotated

import typer
from rich.table import Table

from alluse.cli.common import JsonOpt, KeyOpt, actor, app, friendly, new_key, print_json, settings, state, utc_text
from alluse.cli.render import console
from alluse.domain.errors import InvalidInput

events_app = typer.Typer(help="The event outbox and its relay to NATS JetStream and webhooks.", no_args_is_help=True)
webhook_app = typer.Typer(help="Webhook endpoints of the portfolio (signed deliveries).", no_args_is_help=True)
marks_app = typer.Typer(help="Marks from a price feed.", no_args_is_help=True)
app.add_typer(events_app, name="events")
app.add_typer(webhook_app, name="webhook")
app.add_typer(marks_app, name="marks")

NatsOpt = Annotated[str | None, typer.Option("--nats-url", help="NATS server (default ALLUSE_NATS_URL).")]


def _log_to_stderr() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    alluse_log = logging.getLogger("alluse")
    alluse_log.addHandler(handler)
    alluse_log.setLevel(logging.INFO)


@events_app.command("relay")
@friendly
def relay_cmd(
    once: Annotated[bool, typer.Option("--once", help="Publish and deliver what is pending, then exit.")] = False,
    nats_url: NatsOpt = None,
    stream: Annotated[str | None, typer.Option(help="JetStream stream (default ALLUSE_EVENTS_STREAM).")] = None,
    prefix: Annotated[str | None, typer.Option(help="Subject prefix (default ALLUSE_EVENTS_PREFIX).")] = None,
    nats: Annotated[bool, typer.Option("--nats/--no-nats", help="Publish to NATS JetStream.")] = True,
    webhooks: Annotated[bool, typer.Option("--webhooks/--no-webhooks", help="Deliver to webhooks.")] = True,
) -> None:
    """Publish the outbox to NATS JetStream (subject <prefix>.<portfolio id>.<kind>) and deliver it to
    webhooks, at least once, resuming where it stopped. Runs until interrupted (or --once)."""
    from nats.errors import NoServersError

    from alluse.domain.events import validate_prefix
    from alluse.security.keyring import load_keyring
    from alluse.services import relay

    config = settings()
    given = {"nats_url": nats_url, "stream": stream, "prefix": prefix}
    cfg = relay.RelayConfig.from_settings(
        config, **{k: v for k, v in given.items() if v}, publish_nats=nats, deliver_webhooks=webhooks
    )
    validate_prefix(cfg.prefix)
    if not (nats or webhooks):
        raise InvalidInput("nothing to relay: both --no-nats and --no-webhooks were given")
    _log_to_stderr()
    engine = state.engine()
    keyring = load_keyring(config)
    import asyncio

    try:
        stats = asyncio.run(relay.run(engine, keyring, cfg, once=once))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    except (OSError, NoServersError) as exc:
        raise InvalidInput(f"NATS at {cfg.nats_url} is unreachable: {exc}") from None
    console.print(
        f"published {stats.published} ({stats.duplicates} duplicates dropped by JetStream), "
        f"webhooks: {stats.webhook_events} events fanned out, {stats.webhook_attempts} attempts"
    )


@events_app.command("list")
@friendly
def events_list(
    after: Annotated[int, typer.Option(help="Only events with a sequence number above this.")] = 0,
    kind: Annotated[list[str] | None, typer.Option("--kind", help="Event kind or prefix.* (repeatable).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
) -> None:
    """The portfolio's events as JSON lines (the envelope subscribers receive)."""
    from alluse.services import events

    for env in events.after(state.engine(), state.portfolio, after, kind, limit):
        print(events.to_json(env))


@app.command()
@friendly
def alerts(
    as_json: JsonOpt = False,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Then stream new alerts as they happen.")] = False,
) -> None:
    """Open alerts (BUFFER_BREACH ...)."""
    from alluse.services.alerts import open_alerts

    rows = open_alerts(state.engine(), state.portfolio)
    if as_json:
        print_json(
            [
                {"id": r["id"], "account": r["name"], "kind": r["kind"], "message": r["message"],
                 "raised_at": utc_text(r["raised_at"])}
                for r in rows
            ]
        )  # fmt: skip
    else:
        if not rows:
            console.print("no open alerts")
        for r in rows:
            console.print(f"[red]{r['kind']}[/] {r['name']}: {r['message']} (since {r['raised_at']:%Y-%m-%d %H:%M})")
    if follow:
        follow_alerts(as_json=as_json)


def follow_alerts(as_json: bool = False, poll_seconds: float = 1.0) -> None:
    """Print alert events as they are committed (JSON lines: their envelopes), until interrupted."""
    from alluse.services import events

    engine = state.engine()
    seq = events.head(engine, state.portfolio)
    if not as_json:
        console.print(f"following alerts after event {seq} (Ctrl-C to stop)")
    try:
        while True:
            for env in events.after(engine, state.portfolio, seq, None, 500):
                seq = env["seq"]
                if env["kind"].startswith("alert.") and as_json:
                    print(events.to_json(env), flush=True)
                elif env["kind"].startswith("alert."):
                    d = env["data"]
                    colour = "green" if d.get("state") == "cleared" else "red"
                    console.print(f"{env['at']} [{colour}]{d['rule']} {d['state']}[/] {d['message']}", highlight=False)
            time.sleep(poll_seconds)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


@webhook_app.command("add")
@friendly
def webhook_add(
    url: Annotated[str, typer.Argument(help="http:// or https:// address receiving POSTs.")],
    kind: Annotated[
        list[str] | None, typer.Option("--kind", help="Event kind or prefix.* (repeatable; default: every kind).")
    ] = None,
    key: KeyOpt = None,
) -> None:
    """Register a webhook endpoint; prints its signing secret once."""
    from alluse.security.keyring import load_keyring
    from alluse.services import webhooks

    r = webhooks.register(state.engine(), actor(), state.portfolio, url, kind or [], new_key(key),
                          load_keyring(settings()))  # fmt: skip
    if r.get("replayed"):
        console.print(f"endpoint {r['endpoint_id']} was already registered with this key (secret shown then)")
        return
    console.print(f"endpoint {r['endpoint_id']}: {r['url']} kinds {', '.join(r['kinds']) or 'all'}", highlight=False)
    console.print(f"signing secret (shown once): {r['secret']}", highlight=False)


@webhook_app.command("list")
@friendly
def webhook_list(as_json: JsonOpt = False) -> None:
    from alluse.services import webhooks

    rows = webhooks.list_endpoints(state.engine(), state.portfolio)
    if as_json:
        print(json.dumps(rows, default=str, indent=2))
        return
    t = Table("id", "url", "kinds", "enabled", "delivered", "pending", "failed")
    for r in rows:
        d = r["deliveries"]
        t.add_row(str(r["id"]), r["url"], ", ".join(r["kinds"]) or "all", "yes" if r["enabled"] else "no",
                  str(d.get("DELIVERED", 0)), str(d.get("PENDING", 0)), str(d.get("FAILED", 0)))  # fmt: skip
    console.print(t)


@webhook_app.command("disable")
@friendly
def webhook_disable(endpoint_id: Annotated[int, typer.Argument(help="Endpoint id.")], key: KeyOpt = None) -> None:
    from alluse.services import webhooks

    webhooks.disable(state.engine(), actor(), state.portfolio, endpoint_id, new_key(key))
    console.print(f"endpoint {endpoint_id} disabled; its pending deliveries are dropped")


@webhook_app.command("deliveries")
@friendly
def webhook_deliveries(
    endpoint_id: Annotated[int, typer.Argument(help="Endpoint id.")],
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """The newest delivery records of an endpoint: status, attempts, last HTTP status or error."""
    from alluse.services import webhooks

    rows = webhooks.deliveries(state.engine(), state.portfolio, endpoint_id, limit)
    if as_json:
        print(json.dumps(rows, default=str, indent=2))
        return
    t = Table("event seq", "kind", "status", "attempts", "last status", "last error", "next attempt")
    for r in rows:
        t.add_row(str(r["seq"]), r["kind"], r["status"], str(r["attempts"]), str(r["last_status_code"] or ""),
                  r["last_error"], f"{r['next_attempt_at']:%Y-%m-%d %H:%M:%S}" if r["status"] == "PENDING" else "")  # fmt: skip
    console.print(t)


@marks_app.command("listen")
@friendly
def marks_listen(
    subject: Annotated[str, typer.Argument(help="NATS subject carrying price messages (wildcards allowed).")],
    nats_url: NatsOpt = None,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Marks per unit of work at most.")] = 500,
    max_messages: Annotated[int | None, typer.Option(min=1, help="Stop after this many messages.")] = None,
    idle_exit: Annotated[float | None, typer.Option(min=0.1, help="Stop after this many seconds without one.")] = None,
) -> None:
    """Record marks from a price feed: JSON {symbol, price, time[, id]} per message (docs/events.md)."""
    from nats.errors import NoServersError

    from alluse.services import feed

    _log_to_stderr()
    url = nats_url or settings().nats_url
    import asyncio

    try:
        stats = asyncio.run(feed.listen(state.engine(), actor(), state.portfolio, url, subject, batch=batch,
                                        max_messages=max_messages, idle_seconds=idle_exit))  # fmt: skip
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    except (OSError, NoServersError) as exc:
        raise InvalidInput(f"NATS at {url} is unreachable: {exc}") from None
    console.print(
        f"received {stats.received}: recorded {stats.recorded}, duplicates {stats.duplicates}, "
        f"unknown symbols {stats.skipped}, bad messages {stats.bad}"
    )
