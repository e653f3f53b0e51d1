"""The outbox, the relay to a real NATS JetStream, and signed webhooks to a local HTTP receiver; on
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import nats
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from standardwebhooks import Webhook

from alluse.domain.errors import InvalidInput, NotFound, RuleViolation
from alluse.security.keyring import Keyring
from alluse.services import cash, events, groups, relay, webhooks
from alluse.services.marks import record_marks
from alluse.services.portfolios import create_portfolio
from alluse.services.trades import Fill, FillAction, record_fill
from alluse.store.schema import event_cursors, webhook_deliveries
from tests.conftest import Stream, db_state

KEYRING = Keyring((Fernet.generate_key(),), "test")


def _events(engine: sa.Engine, portfolio: str) -> list[dict]:
    return events.after(engine, portfolio, 0, None, 10_000)


def _open(engine: sa.Engine, portfolio: str) -> None:
    groups.open_group(engine, "t", portfolio, f"open-{portfolio}", groups.group_opening(25_000_000))


def test_every_write_is_an_event_numbered_per_portfolio(engine: sa.Engine, portfolio: str) -> None:
    create_portfolio(engine, "t", "other", "other:portfolio")
    _open(engine, portfolio)
    _open(engine, "other")
    cash.move_cash(engine, "t", portfolio, [("d1", cash.deposit("A1", 100_00)), ("d2", cash.deposit("A1", 1))])
    cash.move_cash(engine, "t", portfolio, [("d1", cash.deposit("A1", 100_00))])  # a replay: no new event
    evs = _events(engine, portfolio)
    assert [e["kind"] for e in evs] == ["portfolio.create", "group.open", "cash.deposit", "cash.deposit"]
    assert [e["seq"] for e in evs] == [1, 2, 3, 4]
    assert [e["seq"] for e in _events(engine, "other")] == [1, 2]  # its own sequence
    assert len({e["id"] for e in evs + _events(engine, "other")}) == 6
    dep = evs[2]
    assert dep["schema"] == "alluse.event.v1" and dep["at"].endswith("Z")
    assert dep["data"]["amount_cents"] == 100_00 and sum(leg["amount_cents"] for leg in dep["data"]["legs"]) == 0
    assert events.head(engine, portfolio) == 4


def test_a_refused_write_leaves_no_event(engine: sa.Engine, portfolio: str) -> None:
    _open(engine, portfolio)
    before = db_state(engine)
    with pytest.raises(RuleViolation):
        cash.move_cash(engine, "t", portfolio, [("w", cash.withdrawal("A1-COM", 100))])
    assert db_state(engine) == before


def test_a_breach_and_an_assignment_are_alert_events_in_the_same_unit_of_work(
    engine: sa.Engine, portfolio: str
) -> None:
    _open(engine, portfolio)
    sym = "XYZ   270108P00490000"
    sto = Fill("A1-GEN", FillAction.STO, sym, 2, price="1.25", trade_date=date(2027, 1, 4))
    record_fill(engine, "t", portfolio, "sto", sto)
    # Assigned: 200 shares at $490 = $98,000 out of a $100,250 account: below its buffer.
    record_fill(engine, "t", portfolio, "asg", Fill("A1-GEN", FillAction.ASSIGN, sym, 2, trade_date=date(2027, 1, 8)))
    evs = _events(engine, portfolio)
    fill_ev = [e for e in evs if e["kind"] == "trade.fill"][-1]
    alerts = [e for e in evs if e["kind"].startswith("alert.")]
    assert sorted(a["kind"] for a in alerts) == ["alert.assignment", "alert.buffer_breach"]
    assert all(a["audit_seq"] == fill_ev["audit_seq"] and a["seq"] > fill_ev["seq"] for a in alerts)
    breach = next(a for a in alerts if a["kind"] == "alert.buffer_breach")
    assert breach["data"]["state"] == "raised" and "below its cash buffer" in breach["data"]["message"]
    cash.move_cash(engine, "t", portfolio, [("top-up", cash.deposit("A1-GEN", 10_000_00))])
    record_marks(engine, "t", portfolio, "mark", {"XYZ": "490"}, date(2027, 1, 8))  # the next check clears it
    (cleared,) = events.after(engine, portfolio, max(a["seq"] for a in alerts), ["alert.*"])
    assert cleared["kind"] == "alert.buffer_breach" and cleared["data"]["state"] == "cleared"


@pytest.fixture
def cfg(stream: Stream) -> relay.RelayConfig:
    policy = webhooks.DeliveryPolicy(timeout_seconds=2, backoff_seconds=0.01, max_attempts=3)
    return relay.RelayConfig(nats_url=stream.url, stream=stream.name, prefix=stream.prefix, poll_seconds=0.01,
                             policy=policy)  # fmt: skip


def _relay(engine: sa.Engine, cfg: relay.RelayConfig, **kw: object) -> relay.RelayStats:
    from dataclasses import replace

    return asyncio.run(relay.run(engine, KEYRING, replace(cfg, **kw), once=True))  # type: ignore[arg-type]


def test_relay_publishes_in_order_once_and_resumes(
    engine: sa.Engine, portfolio: str, stream: Stream, cfg: relay.RelayConfig
) -> None:
    _open(engine, portfolio)
    assert _relay(engine, cfg, deliver_webhooks=False).published == 2
    cash.move_cash(engine, "t", portfolio, [(f"d{i}", cash.deposit("A1", 100 + i)) for i in range(5)])
    assert _relay(engine, cfg, deliver_webhooks=False).published == 5  # only what is new
    msgs = stream.messages()
    assert [env["seq"] for _, env, _ in msgs] == list(range(1, 8))
    pid = msgs[0][1]["portfolio_id"]
    assert [s for s, _, _ in msgs][1:3] == [f"{stream.prefix}.{pid}.group.open", f"{stream.prefix}.{pid}.cash.deposit"]
    assert all(h["Nats-Msg-Id"] == env["id"] for _, env, h in msgs)
    assert msgs[-1][1]["data"]["amount_cents"] == 104

    # A relay that crashed after publishing but before moving its cursor publishes again: JetStream
    # drops every repeat by its message id, so the stream still holds each event once.
    with engine.begin() as conn:
        conn.execute(event_cursors.update().where(event_cursors.c.consumer == cfg.consumer).values(seq=3))
    stats = _relay(engine, cfg, deliver_webhooks=False)
    assert (stats.published, stats.duplicates) == (4, 4)
    assert [env["seq"] for _, env, _ in stream.messages()] == list(range(1, 8))


def test_relay_reports_an_unreachable_server(engine: sa.Engine, portfolio: str, cfg: relay.RelayConfig) -> None:
    with pytest.raises(nats.errors.NoServersError):
        _relay(engine, cfg, nats_url="nats://127.0.0.1:1", deliver_webhooks=False)
    with engine.connect() as conn:  # nothing was marked as published
        assert conn.execute(sa.select(sa.func.count()).select_from(event_cursors)).scalar_one() == 0


class Receiver:
    """A local webhook receiver: records each POST (headers, body); answers with the next status
    from `statuses` (then 200); blocks while `hold` is clear."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, str], str]] = []
        self.statuses: list[int] = []
        self.hold = threading.Event()
        self.hold.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["content-length"])).decode()
                receiver.hold.wait(10)
                receiver.calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kinds(self) -> list[str]:
        return [json.loads(b)["kind"] for _, b in self.calls]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.hold.set()
    r.server.shutdown()
    r.server.server_close()


def test_webhooks_are_signed_filtered_and_recorded(
    engine: sa.Engine, portfolio: str, receiver: Receiver, cfg: relay.RelayConfig
) -> None:
    reg = webhooks.register(engine, "t", portfolio, receiver.url, ["cash.*", "alert.*"], "wh1", KEYRING)
    assert reg["secret"].startswith("whsec_") and webhooks.register(
        engine, "t", portfolio, receiver.url, ["cash.*", "alert.*"], "wh1", KEYRING
    ).get("replayed")
    _open(engine, portfolio)
    cash.move_cash(engine, "t", portfolio, [("d", cash.deposit("A1", 500_00))])
    stats = _relay(engine, cfg, publish_nats=False)
    assert stats.webhook_attempts == 1 and receiver.kinds() == ["cash.deposit"]
    headers, body = receiver.calls[0]
    assert Webhook(reg["secret"]).verify(body, headers)["data"]["amount_cents"] == 500_00
    with pytest.raises(Exception, match="signature"):
        Webhook(webhooks.new_secret()).verify(body, headers)
    assert headers["webhook-id"] == json.loads(body)["id"]
    (rec,) = webhooks.deliveries(engine, portfolio, reg["endpoint_id"])
    assert (rec["status"], rec["attempts"], rec["last_status_code"]) == ("DELIVERED", 1, 200)
    with engine.connect() as conn:  # the secret is stored encrypted, never in the clear
        stored = conn.execute(sa.text("SELECT secret_encrypted FROM webhook_endpoints")).scalar_one()
    assert reg["secret"].encode() not in bytes(stored) and KEYRING.decrypt(bytes(stored)).decode() == reg["secret"]
    assert reg["secret"] not in json.dumps(_events(engine, portfolio))


def test_a_failing_endpoint_is_retried_with_backoff_then_failed(
    engine: sa.Engine, portfolio: str, receiver: Receiver, cfg: relay.RelayConfig
) -> None:
    good = Receiver()
    try:
        bad = webhooks.register(engine, "t", portfolio, receiver.url, [], "bad", KEYRING)["endpoint_id"]
        ok = webhooks.register(engine, "t", portfolio, good.url, ["group.*"], "ok", KEYRING)["endpoint_id"]
        webhooks.disable(engine, "t", portfolio, bad, "bad-off")  # its own registration events: not for it
        bad = webhooks.register(engine, "t", portfolio, receiver.url, ["group.*"], "bad2", KEYRING)["endpoint_id"]
        receiver.statuses = [500, 503, 500, 500]
        _open(engine, portfolio)
        policy = webhooks.DeliveryPolicy(timeout_seconds=2, backoff_seconds=0.01, max_attempts=3)
        attempts = 0
        for _ in range(100):  # `once` stops at retries not yet due: run it again until the last attempt
            attempts += _relay(engine, cfg, publish_nats=False, policy=policy).webhook_attempts
            if webhooks.deliveries(engine, portfolio, bad)[0]["status"] != "PENDING":
                break
            threading.Event().wait(0.01)
        assert good.kinds() == ["group.open"]  # never held up by the failing endpoint
        (rec,) = webhooks.deliveries(engine, portfolio, bad)
        assert (rec["kind"], rec["status"], rec["attempts"]) == ("group.open", "FAILED", 3)
        assert rec["last_status_code"] == 500 and rec["last_error"] == "HTTP 500"
        assert attempts == 4 and len(receiver.calls) == 3
        assert [r["status"] for r in webhooks.deliveries(engine, portfolio, ok)] == ["DELIVERED"]
    finally:
        good.server.shutdown()
        good.server.server_close()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    slow = webhooks.DeliveryPolicy(backoff_seconds=10, max_attempts=8)
    assert [slow.next_attempt(n, start) - start for n in (1, 2, 3, 10)] == [
        timedelta(seconds=10), timedelta(seconds=20), timedelta(seconds=40), timedelta(hours=1)
    ]  # fmt: skip


def test_a_hanging_endpoint_never_holds_up_a_write(
    engine: sa.Engine, portfolio: str, receiver: Receiver, cfg: relay.RelayConfig
) -> None:
    webhooks.register(engine, "t", portfolio, receiver.url, [], "slow", KEYRING)
    receiver.hold.clear()  # the endpoint accepts the connection and then does not answer
    stop = threading.Event()
    t = threading.Thread(target=lambda: asyncio.run(relay.run(engine, KEYRING, cfg, stop)), daemon=True)
    t.start()
    try:
        _open(engine, portfolio)
        with engine.connect() as conn:  # wait until the relay is inside a delivery to the hanging endpoint
            for _ in range(500):
                if conn.execute(sa.select(sa.func.count()).select_from(webhook_deliveries)).scalar_one():
                    break
                conn.rollback()
                threading.Event().wait(0.01)
        cash.move_cash(engine, "t", portfolio, [(f"d{i}", cash.deposit("A1", 100)) for i in range(3)])
        assert receiver.calls == []  # the writes committed while the delivery was still waiting
        assert [e["kind"] for e in _events(engine, portfolio)][-3:] == ["cash.deposit"] * 3
    finally:
        receiver.hold.set()
        stop.set()
        t.join(10)


def test_disabled_endpoints_get_nothing_and_bad_input_is_refused(
    engine: sa.Engine, portfolio: str, receiver: Receiver, cfg: relay.RelayConfig
) -> None:
    eid = webhooks.register(engine, "t", portfolio, receiver.url, [], "w", KEYRING)["endpoint_id"]
    webhooks.disable(engine, "t", portfolio, eid, "off")
    _open(engine, portfolio)
    _relay(engine, cfg, publish_nats=False)
    assert receiver.calls == [] and webhooks.deliveries(engine, portfolio, eid) == []
    before = db_state(engine)
    for url, kinds, field in [
        ("ftp://x/y", [], "url"),
        ("http://x:bad/", [], "url"),
        (receiver.url, ["A B"], "kinds"),
    ]:
        with pytest.raises(InvalidInput, match=field):
            webhooks.register(engine, "t", portfolio, url, kinds, f"bad-{field}", KEYRING)
    with pytest.raises(NotFound):
        webhooks.disable(engine, "t", portfolio, eid, "off-again")
    assert db_state(engine) == before


def test_an_api_write_reaches_nats_and_a_webhook_and_only_owners_register(  # type: ignore[no-untyped-def]
    api, portfolio, receiver: Receiver, stream: Stream, cfg: relay.RelayConfig
) -> None:
    owner, trader = api.user("olivia", role="owner"), api.user("tom", role="trader")
    body = {"url": receiver.url, "kinds": ["cash.*"]}
    assert api.client.post("/portfolios/main/webhooks", json=body, headers=trader).status_code == 403
    r = api.client.post("/portfolios/main/webhooks", json=body, headers=owner)
    assert r.status_code == 201, r.text
    secret = r.json()["secret"]
    bad = api.client.post("/portfolios/main/webhooks", json={"url": "nope"}, headers=owner)
    assert bad.status_code in (400, 422) and "url" in bad.text
    assert api.client.post("/portfolios/main/groups", json={"amount": "100000"}, headers=owner).status_code == 201
    r = api.client.post("/portfolios/main/deposits", json={"to": "A1", "amount": "12.34"}, headers=trader)
    assert r.status_code == 201, r.text
    stats = asyncio.run(relay.run(api.engine, api.app.state.ctx.keyring, cfg, once=True))
    assert stats.published >= 4 and stats.webhook_attempts == 1
    (deposit,) = [env for _, env, _ in stream.messages() if env["kind"] == "cash.deposit"]
    assert deposit["data"]["amount_cents"] == 1234
    headers, payload = receiver.calls[0]
    assert Webhook(secret).verify(payload, headers)["id"] == deposit["id"]
    listed = api.client.get("/portfolios/main/webhooks", headers=owner).json()
    assert listed[0]["deliveries"] == {"DELIVERED": 1} and "secret" not in listed[0]
    got = api.client.get("/portfolios/main/events", params={"kind": "cash.*"}, headers=trader).json()
    assert [e["id"] for e in got] == [deposit["id"]]


def test_a_statement_that_disagrees_raises_a_reconciliation_alert_once(engine: sa.Engine, portfolio: str) -> None:
    from pathlib import Path

    from alluse.services.statements import import_statement

    accounts_ = ["IBKR:U9100001", "IBKR:U9100002", "IBKR:U9100003"]
    groups.open_group(engine, "t", portfolio, "g-ibkr", groups.group_opening(0, accounts_))
    cash.move_cash(engine, "t", portfolio, [("extra", cash.deposit("A1-GEN", 1))])  # a cent the broker never saw
    statement = (Path(__file__).parents[1] / "data" / "ibkr" / "flex_statement.xml").read_bytes()
    report = import_statement(engine, "t", portfolio, statement)
    assert report["reconciliation"]["differences"] == 1
    (alert,) = events.after(engine, portfolio, 0, ["alert.*"])
    assert alert["kind"] == "alert.reconciliation_difference"
    assert alert["data"]["message"].startswith("A1-GEN (IBKR:U9100001): 1 difference against the statement of")
    (rec,) = events.after(engine, portfolio, 0, ["broker.reconcile"])
    assert rec["data"]["differences"] == [{"what": "cash", "broker_cents": 10063909, "alluse_cents": 10063910}]
    before = db_state(engine)
    import_statement(engine, "t", portfolio, statement)  # the same finding again: recorded once
    assert db_state(engine) == before
