"""The relay: the outbox published to NATS JetStream and delivered to webhooks, at least once.

NATS: each batch is read in per-portfolio sequence order and published with the event id as
`Nats-Msg-Id` (JetStream drops a repeat within the stream's duplicate window), then the relay waits for
every acknowledgement and moves the portfolio's cursor to the last event acknowledged without a gap.
A crash before that cursor update only means the same events are published again and dropped as
duplicates. The connection does not reconnect by itself: a publish lost with a dropped connection is
never overtaken by a later one from a reconnect buffer, so the stream keeps per-portfolio order; the
relay opens a new connection and resumes from the cursors.

Webhooks run beside it (services/webhooks.py) and do not need NATS.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import nats
import sqlalchemy as sa
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

from alluse.config import Settings
from alluse.domain.events import Event, subject, validate_prefix
from alluse.security.keyring import Keyring
from alluse.services import webhooks
from alluse.store import outbox
from alluse.store.db import writer_lock
from alluse.store.uow import write_connection

log = logging.getLogger("alluse.relay")
DUPLICATE_WINDOW_SECONDS = 24 * 3600


@dataclass(frozen=True, slots=True)
class RelayConfig:
    nats_url: str = "nats://127.0.0.1:4222"
    stream: str = "ALLUSE"
    prefix: str = "alluse"
    batch: int = 1000
    poll_seconds: float = 0.2
    ack_timeout_seconds: float = 10.0
    publish_nats: bool = True
    deliver_webhooks: bool = True
    policy: webhooks.DeliveryPolicy = field(default_factory=webhooks.DeliveryPolicy)

    @classmethod
    def from_settings(cls, s: Settings, **kw: object) -> RelayConfig:
        policy = webhooks.DeliveryPolicy(s.webhook_timeout_seconds, s.webhook_backoff_seconds, s.webhook_max_attempts)
        base = {"nats_url": s.nats_url, "stream": s.events_stream, "prefix": s.events_prefix, "policy": policy}
        return cls(**{**base, **kw})  # type: ignore[arg-type]

    @property
    def consumer(self) -> str:
        return f"nats:{self.stream}"


@dataclass(slots=True)
class RelayStats:
    published: int = 0
    duplicates: int = 0
    webhook_events: int = 0
    webhook_attempts: int = 0
    errors: int = 0


async def ensure_stream(js: nats.js.JetStreamContext, cfg: RelayConfig) -> None:
    """The stream holding `<prefix>.>`, created when missing, with a duplicate window long enough for
    a relay that was down for hours to republish without duplicates."""
    validate_prefix(cfg.prefix)
    try:
        await js.stream_info(cfg.stream)
    except NotFoundError:
        await js.add_stream(
            StreamConfig(name=cfg.stream, subjects=[f"{cfg.prefix}.>"], duplicate_window=DUPLICATE_WINDOW_SECONDS)
        )


async def publish(js: nats.js.JetStreamContext, cfg: RelayConfig, batch: list[Event]) -> tuple[dict[int, int], int]:
    """Publish a batch, wait for every ack; per portfolio the last seq acknowledged with no gap before
    it, and how many JetStream reported as duplicates."""
    futures = [
        await js.publish_async(
            subject(cfg.prefix, e.portfolio_id, e.kind), e.body(), headers={"Nats-Msg-Id": e.event_id}
        )
        for e in batch
    ]
    acks = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), cfg.ack_timeout_seconds)
    heads: dict[int, int] = {}
    broken: set[int] = set()
    duplicates = 0
    for e, ack in zip(batch, acks, strict=True):
        if e.portfolio_id in broken:
            continue
        if isinstance(ack, BaseException):
            broken.add(e.portfolio_id)
            log.warning("publish of event %s failed: %s", e.event_id, ack)
            continue
        heads[e.portfolio_id] = e.seq
        duplicates += bool(ack.duplicate)
    return heads, duplicates


def mark_published(engine: sa.Engine, consumer: str, heads: dict[int, int]) -> None:
    with writer_lock(engine), write_connection(engine) as conn, conn.begin():
        outbox.advance(conn, consumer, heads, datetime.now(UTC))


async def pump_nats(engine: sa.Engine, js: nats.js.JetStreamContext, cfg: RelayConfig, stats: RelayStats) -> int:
    """One batch from the outbox to JetStream; the number of events acknowledged."""
    with engine.connect() as conn:
        batch = outbox.pending(conn, cfg.consumer, cfg.batch)
    if not batch:
        return 0
    heads, dups = await publish(js, cfg, batch)
    if heads:
        mark_published(engine, cfg.consumer, heads)
    done = sum(1 for e in batch if e.seq <= heads.get(e.portfolio_id, 0))
    stats.published += done
    stats.duplicates += dups
    if done < len(batch):
        raise ConnectionError(f"{len(batch) - done} of {len(batch)} publishes were not acknowledged")
    return done


async def _nats_loop(engine: sa.Engine, cfg: RelayConfig, stats: RelayStats, stop: threading.Event, once: bool) -> None:
    retry = 0.2
    while not stop.is_set():
        nc = None
        try:
            nc = await nats.connect(
                cfg.nats_url,
                allow_reconnect=False,
                connect_timeout=5,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.2,
            )
            js = nc.jetstream()
            await ensure_stream(js, cfg)
            retry = 0.2
            while not stop.is_set():
                if await pump_nats(engine, js, cfg, stats) == 0:
                    if once:
                        return
                    await asyncio.sleep(cfg.poll_seconds)
        except (OSError, TimeoutError, nats.errors.Error, ConnectionError) as exc:
            stats.errors += 1
            log.warning("NATS relay: %s; retrying in %.1fs", exc or type(exc).__name__, retry)
            if once:
                raise
            await asyncio.sleep(retry)
            retry = min(retry * 2, 10.0)
        finally:
            if nc is not None and not nc.is_closed:
                await nc.close()


async def _webhook_loop(
    engine: sa.Engine, keyring: Keyring, cfg: RelayConfig, stats: RelayStats, stop: threading.Event, once: bool
) -> None:
    async with httpx.AsyncClient() as client:
        while not stop.is_set():
            try:
                passed = webhooks.fan_out(engine, cfg.batch)
                tried = await webhooks.deliver_due(engine, keyring, client, cfg.policy)
            except sa.exc.DBAPIError as exc:  # a busy or restarting database: try again shortly
                stats.errors += 1
                log.warning("webhook relay: %s", exc.orig)
                if once:
                    raise
                await asyncio.sleep(1.0)
                continue
            stats.webhook_events += passed
            stats.webhook_attempts += tried
            if not passed and not tried:
                if once:
                    return
                await asyncio.sleep(cfg.poll_seconds)


async def run(
    engine: sa.Engine, keyring: Keyring, cfg: RelayConfig, stop: threading.Event | None = None, once: bool = False
) -> RelayStats:
    """Relay until `stop` is set, or with `once` until nothing is pending or due."""
    stop = stop or threading.Event()
    stats = RelayStats()
    loops = []
    if cfg.publish_nats:
        loops.append(_nats_loop(engine, cfg, stats, stop, once))
    if cfg.deliver_webhooks:
        loops.append(_webhook_loop(engine, keyring, cfg, stats, stop, once))
    await asyncio.gather(*loops)
    return stats


def start_in_thread(engine: sa.Engine, keyring: Keyring, cfg: RelayConfig) -> tuple[threading.Thread, threading.Event]:
    """The relay beside `alluse serve`: its own thread and event loop; set the event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(target=lambda: asyncio.run(run(engine, keyring, cfg, stop)), name="relay", daemon=True)
    thread.start()
    return thread, stop
