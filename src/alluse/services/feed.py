"""Marks from a price feed: a NATS subject carrying one price a message (docs/events.md, "Marks in").

A message is JSON `{"symbol": "ABC", "price": "21.50", "time": "2027-01-15T15:30:00Z"}` (price as a
string or a JSON number, read exactly; time an ISO 8601 date-time or date whose date is the mark's
day). Its id is the `Nats-Msg-Id` header, else an `"id"` field, else the SHA-256 of the body; the
mark is written with the key `feed:<id>`, so a message delivered twice is recorded once. Messages are
recorded in batches (one unit of work each); a bad message is logged, counted and skipped.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import nats
from sqlalchemy.engine import Engine

from alluse.domain.errors import AlluseError, InvalidInput
from alluse.domain.instruments import parse_price, parse_symbol
from alluse.services.marks import record_feed_marks

log = logging.getLogger("alluse.feed")
MAX_ID = 150


@dataclass(slots=True)
class FeedStats:
    received: int = 0
    recorded: int = 0
    skipped: int = 0  # symbols never traded in the portfolio
    duplicates: int = 0  # message ids seen before
    bad: int = 0


Tick = tuple[str, str, str, date]


def parse_tick(data: bytes, headers: dict[str, str] | None) -> Tick:
    """(message id, symbol, price, day) of one message, or InvalidInput naming the field."""
    try:
        msg = json.loads(data, parse_float=str, parse_int=str)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidInput("message is not JSON") from None
    if not isinstance(msg, dict):
        raise InvalidInput("message must be a JSON object")
    mid = (headers or {}).get("Nats-Msg-Id") or msg.get("id") or hashlib.sha256(data).hexdigest()
    if not isinstance(mid, str) or not mid.strip() or len(mid) > MAX_ID:
        raise InvalidInput(f"id must be a string of 1–{MAX_ID} characters")
    for name in ("symbol", "price", "time"):
        if not isinstance(msg.get(name), str):
            raise InvalidInput(f"{name} is missing or not a string or number")
    symbol = parse_symbol(msg["symbol"]).symbol
    parse_price(msg["price"])
    text = msg["time"].strip()
    try:
        day = datetime.fromisoformat(text).date() if "T" in text or " " in text else date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"time: not an ISO 8601 date-time or date: {text!r}") from None
    return mid.strip(), symbol, msg["price"], day


def record(engine: Engine, actor: str, portfolio: str | int | None, ticks: list[Tick], stats: FeedStats) -> None:
    try:
        results = record_feed_marks(engine, actor, portfolio, ticks)
    except AlluseError as exc:
        log.warning("batch of %d marks refused: %s", len(ticks), exc)
        stats.bad += len(ticks)
        return
    stats.duplicates += len(ticks) - len(results)  # the same id twice within one batch
    for r in results:
        if r.get("replayed"):
            stats.duplicates += 1
        elif r["recorded"]:
            stats.recorded += 1
        else:
            stats.skipped += 1


async def listen(
    engine: Engine,
    actor: str,
    portfolio: str | int | None,
    nats_url: str,
    subject: str,
    *,
    batch: int = 500,
    flush_seconds: float = 0.2,
    max_messages: int | None = None,
    idle_seconds: float | None = None,
    stop: threading.Event | None = None,
    on_ready: Any = None,
) -> FeedStats:
    """Subscribe and record until `stop`, `max_messages` received, or `idle_seconds` without one."""
    stop = stop or threading.Event()
    stats = FeedStats()
    nc = await nats.connect(nats_url, connect_timeout=5)
    try:
        sub = await nc.subscribe(subject)
        await nc.flush()
        if on_ready is not None:
            on_ready()
        pending: list[Tick] = []
        idle = 0.0
        loop = asyncio.get_running_loop()
        started = loop.time()
        while not stop.is_set() and (max_messages is None or stats.received < max_messages):
            try:
                msg = await sub.next_msg(timeout=flush_seconds)
            except nats.errors.TimeoutError:
                msg = None
            if msg is None:
                idle += flush_seconds
                if pending:
                    await asyncio.to_thread(record, engine, actor, portfolio, pending, stats)
                    pending = []
                if idle_seconds is not None and idle >= idle_seconds:
                    break
                continue
            idle = 0.0
            if not pending:
                started = loop.time()
            stats.received += 1
            try:
                pending.append(parse_tick(msg.data, msg.headers))
            except AlluseError as exc:
                stats.bad += 1
                log.warning("bad price message on %s skipped: %s", msg.subject, exc)
            if len(pending) >= batch or (pending and loop.time() - started >= flush_seconds):
                await asyncio.to_thread(record, engine, actor, portfolio, pending, stats)
                pending = []
        if pending:
            record(engine, actor, portfolio, pending, stats)
    finally:
        await nc.close()
    return stats
