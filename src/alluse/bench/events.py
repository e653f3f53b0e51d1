"""Events out and in (`alluse bench --only events`; needs NATS with JetStream at ALLUSE_NATS_URL).

- events_published_per_s: the relay moving an outbox of deposit events to JetStream (read in sequence
  order, published with Nats-Msg-Id, every acknowledgement awaited, cursors moved), against
  raw_events_published_per_s: a bare nats-py loop publishing the same messages (subjects, bodies,
  headers) asynchronously and awaiting every acknowledgement, into a stream of its own.
- marks_ingested_per_s: `marks listen` recording price messages as marks (parse, batch, one unit of
  work per batch with idempotency keys, positions revalued), from the first publish to the last
  mark committed, against raw_marks_ingested_per_s: a bare subscriber parsing the same messages and
  inserting the marks rows with the bare driver in batches of the same size.

Streams and subjects carry a random tag and are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import date
from typing import TYPE_CHECKING, Any

import nats
from cryptography.fernet import Fernet

from alluse.config import get_settings
from alluse.domain.events import subject
from alluse.domain.instruments import parse_price
from alluse.security.keyring import Keyring
from alluse.services import cash, feed, groups, relay
from alluse.services.trades import Fill, FillAction, record_fills
from alluse.store import outbox

if TYPE_CHECKING:
    from alluse.bench.harness import Bench

BATCH = 1000
SYMBOLS = 50
MARK_DAY = date(2027, 1, 15)


def run(bench: Bench) -> None:
    url = get_settings().nats_url
    n_events = 5_000 if bench.quick else 20_000
    ours = bench.median_rate("relay to JetStream", n_events, lambda: _relay_once(bench, url, n_events))
    raw = bench.median_rate("raw nats-py publish", n_events, lambda: _raw_publish(bench, url, n_events))
    bench.emit("events_published_per_s", ours, "events/s", events=n_events)
    bench.emit("raw_events_published_per_s", raw, "events/s", events=n_events)
    bench.emit("events_published_vs_raw", ours / raw, "ratio")
    n_marks = 2_000 if bench.quick else 10_000
    ours = bench.median_rate("marks listen", n_marks, lambda: _ingest(bench, url, n_marks, raw=False))
    raw = bench.median_rate("raw marks insert", n_marks, lambda: _ingest(bench, url, n_marks, raw=True))
    bench.emit("marks_ingested_per_s", ours, "marks/s", messages=n_marks, batch=BATCH)
    bench.emit("raw_marks_ingested_per_s", raw, "marks/s", messages=n_marks, batch=BATCH)
    bench.emit("marks_ingested_vs_raw", ours / raw, "ratio")


def _outbox(bench: Bench, n: int) -> Any:
    engine = bench.fresh_engine()
    groups.open_group(engine, "bench", "bench", "g", groups.group_opening(100_000_00))
    for start in range(0, n - 2, BATCH):  # portfolio.create and group.open are two of the n
        moves = [(f"d{i}", cash.deposit("A1", 100 + i)) for i in range(start, min(start + BATCH, n - 2))]
        cash.move_cash(engine, "bench", "bench", moves)
    return engine


def _tag() -> tuple[str, str]:
    t = uuid.uuid4().hex[:10]
    return f"BENCH_{t}", f"bench{t}"


async def _drop(url: str, stream: str) -> None:
    nc = await nats.connect(url)
    try:
        await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


def _relay_once(bench: Bench, url: str, n: int) -> float:
    engine = _outbox(bench, n)
    stream, prefix = _tag()
    cfg = relay.RelayConfig(nats_url=url, stream=stream, prefix=prefix, batch=BATCH, deliver_webhooks=False)
    keyring = Keyring((Fernet.generate_key(),), "bench")  # unused: no webhooks here
    t = time.perf_counter()
    stats = asyncio.run(relay.run(engine, keyring, cfg, once=True))
    elapsed = time.perf_counter() - t
    asyncio.run(_drop(url, stream))
    assert stats.published == n, stats
    engine.dispose()
    return elapsed


def _raw_publish(bench: Bench, url: str, n: int) -> float:
    engine = _outbox(bench, n)
    with engine.connect() as conn:
        evs = outbox.pending(conn, "raw", n)
    engine.dispose()
    stream, prefix = _tag()
    messages = [(subject(prefix, e.portfolio_id, e.kind), e.body(), {"Nats-Msg-Id": e.event_id}) for e in evs]

    async def go() -> float:
        nc = await nats.connect(url)
        js = nc.jetstream()
        await js.add_stream(name=stream, subjects=[f"{prefix}.>"], duplicate_window=relay.DUPLICATE_WINDOW_SECONDS)
        t = time.perf_counter()
        for start in range(0, len(messages), BATCH):
            futures = [await js.publish_async(s, b, headers=h) for s, b, h in messages[start : start + BATCH]]
            await asyncio.gather(*futures)
        elapsed = time.perf_counter() - t
        await js.delete_stream(stream)
        await nc.close()
        return elapsed

    return asyncio.run(go())


def _marked_portfolio(bench: Bench) -> Any:
    engine = bench.fresh_engine()
    groups.open_group(engine, "bench", "bench", "g", groups.group_opening(1_000_000_00))
    facts = [(f"buy{s}", Fill("A1-COM", FillAction.BTO, f"S{s:03d}", 10, "10", trade_date=date(2027, 1, 11)))
             for s in range(SYMBOLS)]  # fmt: skip
    record_fills(engine, "bench", "bench", facts)
    return engine


def _ingest(bench: Bench, url: str, n: int, raw: bool) -> float:
    engine = _marked_portfolio(bench)
    subj = f"benchprices{uuid.uuid4().hex[:10]}"
    bodies = [
        json.dumps(
            {
                "id": f"m{i}",
                "symbol": f"S{i % SYMBOLS:03d}",
                "price": f"{10 + i % 7}.25",
                "time": f"{MARK_DAY.isoformat()}T15:30:00Z",
            }
        ).encode()  # fmt: skip
        for i in range(n)
    ]

    async def go() -> float:
        ready = asyncio.Event()
        listen = _raw_listen if raw else feed.listen
        task = asyncio.create_task(
            listen(engine, "bench", "bench", url, subj, batch=BATCH, max_messages=n, on_ready=ready.set)
        )
        await asyncio.wait_for(ready.wait(), 10)
        nc = await nats.connect(url)
        t = time.perf_counter()
        for b in bodies:
            await nc.publish(subj, b)
        await nc.flush()
        stats = await task
        elapsed = time.perf_counter() - t
        await nc.close()
        assert stats.received == n, stats
        return elapsed

    elapsed = asyncio.run(go())
    engine.dispose()
    return elapsed


async def _raw_listen(engine: Any, _actor: str, _portfolio: str, url: str, subj: str, *, batch: int,
                      max_messages: int, on_ready: Any) -> feed.FeedStats:  # fmt: skip
    """The bare-driver baseline: parse each message, insert the marks rows in batches."""
    raw = engine.raw_connection()
    cur = raw.cursor()
    cur.execute("SELECT symbol, id FROM instruments")
    ids = dict(cur.fetchall())
    param = "?" if engine.dialect.name == "sqlite" else "%s"
    sql = f"INSERT INTO marks (portfolio_id, instrument_id, as_of, price_e4, audit_seq) VALUES (1, {param}, {param}, {param}, 0)"
    stats = feed.FeedStats()
    nc = await nats.connect(url)
    sub = await nc.subscribe(subj)
    await nc.flush()
    on_ready()
    rows = []
    while stats.received < max_messages:
        msg = await sub.next_msg(timeout=30)
        stats.received += 1
        m = json.loads(msg.data, parse_float=str)
        rows.append((ids[m["symbol"]], m["time"][:10], parse_price(m["price"])))
        if len(rows) >= batch or stats.received == max_messages:
            if engine.dialect.name == "sqlite":  # the engine's sqlite connections run in autocommit mode
                cur.execute("BEGIN")
            cur.executemany(sql, rows)
            raw.commit() if engine.dialect.name != "sqlite" else cur.execute("COMMIT")
            stats.recorded += len(rows)
            rows = []
    await nc.close()
    raw.close()
    return stats
