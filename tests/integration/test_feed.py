"""`alluse marks listen`: marks from price messages on a real NATS subject, batched, idempotent by
message id, bad messages counted and skipped; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date

import nats
import sqlalchemy as sa

from alluse.services import feed, groups
from alluse.services.trades import Fill, FillAction, record_fill
from alluse.store.schema import accounts, marks
from tests.conftest import db_state


def _listen(engine: sa.Engine, url: str, portfolio: str, messages: list[tuple[bytes, dict | None]]) -> feed.FeedStats:
    subject = f"tprices{uuid.uuid4().hex[:10]}.us"

    async def scenario() -> feed.FeedStats:
        ready = asyncio.Event()
        task = asyncio.create_task(
            feed.listen(
                engine,
                "feed",
                portfolio,
                url,
                f"{subject}.>",
                batch=3,
                max_messages=len(messages),
                idle_seconds=5,
                on_ready=ready.set,
            )  # fmt: skip
        )
        await asyncio.wait_for(ready.wait(), 10)
        nc = await nats.connect(url)
        for data, headers in messages:
            await nc.publish(f"{subject}.quote", data, headers=headers)
        await nc.flush()
        await nc.close()
        return await task

    return asyncio.run(scenario())


def _msg(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def test_price_messages_become_marks_once_and_bad_ones_are_skipped(
    engine: sa.Engine, portfolio: str, nats_url: str
) -> None:
    groups.open_group(engine, "t", portfolio, "open", groups.group_opening(25_000_000))
    record_fill(
        engine, "t", portfolio, "buy", Fill("A1-COM", FillAction.BTO, "ABC", 100, "20", trade_date=date(2027, 1, 11))
    )
    quote = _msg(symbol="ABC", price="21.50", time="2027-01-15T15:30:00Z")
    stats = _listen(engine, nats_url, portfolio, [
        (quote, {"Nats-Msg-Id": "m1"}),
        (quote, {"Nats-Msg-Id": "m1"}),  # redelivered
        (b"not json", None),
        (_msg(symbol="ABC", time="2027-01-15"), None),  # no price
        (_msg(symbol="ABC", price="abc", time="2027-01-15"), None),
        (_msg(symbol="ABC", price="1", time="yesterday"), None),
        (_msg(symbol="ZZZ", price="5", time="2027-01-15", id="z1"), None),  # never traded here
        (b'{"symbol": "ABC", "price": 22.25, "time": "2027-01-16", "id": "m7"}', None),  # a JSON number, exactly
    ])  # fmt: skip
    assert (stats.received, stats.recorded, stats.duplicates, stats.skipped, stats.bad) == (8, 2, 1, 1, 4)
    with engine.connect() as conn:
        got = conn.execute(sa.select(marks.c.as_of, marks.c.price_e4).order_by(marks.c.as_of)).all()
        value = conn.execute(sa.select(accounts.c.positions_value_cents).where(accounts.c.name == "A1-COM")).scalar()
    assert [tuple(r) for r in got] == [(date(2027, 1, 15), 215_000), (date(2027, 1, 16), 222_500)]
    assert value == 222_500  # 100 shares at $22.25: NAV follows the feed

    before = db_state(engine)
    again = _listen(engine, nats_url, portfolio, [(quote, {"Nats-Msg-Id": "m1"})])
    assert (again.recorded, again.duplicates) == (0, 1)
    assert db_state(engine) == before  # a message seen before changes nothing
