"""Webhooks: owners register endpoints per portfolio; the relay signs and delivers events to them.

Signatures follow the Standard Webhooks specification: headers `webhook-id` (the event id),
`webhook-timestamp` (unix seconds of the attempt) and `webhook-signature` (`v1,<base64 HMAC-SHA-256
over "<id>.<timestamp>.<body>">` with the endpoint's `whsec_` secret). The secret is shown once at
registration and stored encrypted with the keyring, like broker credentials.

Delivery runs in the relay, never in a write: a write only adds outbox rows. The relay fans new events
out into delivery records (one per endpoint and matching event), sends the due ones concurrently, and
records every attempt's outcome; a failed attempt is retried with exponential backoff until the
attempt limit, then the delivery is FAILED.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NotRequired, TypedDict, cast
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from standardwebhooks import Webhook

from alluse.domain.errors import InvalidInput, NotFound
from alluse.domain.events import DeliveryStatus, Event, kind_matches, validate_kinds
from alluse.security.keyring import Keyring, KeyringError
from alluse.store import outbox
from alluse.store.db import writer_lock
from alluse.store.schema import events, webhook_deliveries, webhook_endpoints
from alluse.store.scope import resolve_portfolio
from alluse.store.uow import Request, Tx, write, write_connection

CONSUMER = "webhooks"
MAX_URL = 500
BACKOFF_CAP = timedelta(hours=1)
_w, _d, _e = webhook_endpoints.c, webhook_deliveries.c, events.c


class EndpointRegistered(TypedDict):
    endpoint_id: int
    host: str | None  # the URL's host only: the audit record and the event never carry the URL
    kinds: list[str]
    url: NotRequired[str]  # these two in the first answer only, never in a replay
    secret: NotRequired[str]
    replayed: NotRequired[bool]


class EndpointDisabled(TypedDict):
    endpoint_id: int
    enabled: bool
    replayed: NotRequired[bool]


class Endpoint(TypedDict):
    id: int
    url: str
    kinds: list[str]
    enabled: bool
    created_at: datetime
    deliveries: dict[str, int]  # delivery status -> how many


class Delivery(TypedDict):
    id: int
    event_id: str
    seq: int
    kind: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str
    next_attempt_at: datetime | None
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    timeout_seconds: float = 10.0
    backoff_seconds: float = 10.0
    max_attempts: int = 8

    def next_attempt(self, attempts: int, now: datetime) -> datetime:
        """After the n-th failed attempt, wait backoff × 2^(n-1), at most an hour."""
        return now + min(timedelta(seconds=self.backoff_seconds * 2 ** (attempts - 1)), BACKOFF_CAP)


def validate_url(url: str) -> str:
    url = url.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:  # a malformed host ("http://[") or port
        raise InvalidInput("url is not a valid address (host or port)") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > MAX_URL or not url.isprintable():
        raise InvalidInput(f"url must be an http:// or https:// address of at most {MAX_URL} characters")
    return url


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def register(
    engine: Engine, actor: str, portfolio: str | int | None, url: str, kinds: list[str], key: str, keyring: Keyring
) -> EndpointRegistered:
    """Register an endpoint; the result carries the signing secret, shown this once (a replay of the
    same key returns the endpoint without it)."""
    url, kinds = validate_url(url), validate_kinds(kinds)
    secret = new_secret()
    token = keyring.encrypt(secret.encode())

    def apply(tx: Tx, _reqs: list[Request]) -> list[EndpointRegistered]:
        eid = tx.conn.execute(
            webhook_endpoints.insert()
            .values(
                portfolio_id=tx.portfolio_id,
                url=url,
                kinds=json.dumps(kinds),
                secret_encrypted=token,
                enabled=True,
                created_at=tx.now,
            )  # fmt: skip
            .returning(_w.id)
        ).scalar_one()
        # The audit log and the event carry the host only: a webhook URL often embeds a token.
        return [{"endpoint_id": eid, "host": urlsplit(url).hostname, "kinds": kinds}]

    request = Request(key, {"url": url, "kinds": kinds})
    out = cast(EndpointRegistered, write(engine, portfolio, actor, "webhook.register", [request], apply)[0])
    return out if out.get("replayed") else {**out, "url": url, "secret": secret}


def disable(engine: Engine, actor: str, portfolio: str | int | None, endpoint_id: int, key: str) -> EndpointDisabled:
    def apply(tx: Tx, _reqs: list[Request]) -> list[EndpointDisabled]:
        done = tx.conn.execute(
            webhook_endpoints.update()
            .where(_w.id == endpoint_id, _w.portfolio_id == tx.portfolio_id, _w.enabled.is_(True))
            .values(enabled=False, disabled_at=tx.now)
        ).rowcount
        if not done:
            raise NotFound(f"no enabled webhook endpoint {endpoint_id} in this portfolio")
        return [{"endpoint_id": endpoint_id, "enabled": False}]

    request = Request(key, {"endpoint_id": endpoint_id})
    return cast(EndpointDisabled, write(engine, portfolio, actor, "webhook.disable", [request], apply)[0])


def list_endpoints(engine: Engine, portfolio: str | int | None) -> list[Endpoint]:
    with engine.connect() as conn:
        pid = resolve_portfolio(conn, portfolio)
        counts = (
            sa.select(_d.endpoint_id, _d.status, sa.func.count().label("n"))
            .where(_d.portfolio_id == pid)
            .group_by(_d.endpoint_id, _d.status)
        )
        by_status: dict[int, dict[str, int]] = {}
        for eid, status, n in conn.execute(counts):
            by_status.setdefault(eid, {})[status] = n
        q = sa.select(_w.id, _w.url, _w.kinds, _w.enabled, _w.created_at).where(_w.portfolio_id == pid).order_by(_w.id)
        return [
            {
                "id": r.id,
                "url": r.url,
                "kinds": json.loads(r.kinds),
                "enabled": r.enabled,
                "created_at": r.created_at,
                "deliveries": by_status.get(r.id, {}),
            }  # fmt: skip
            for r in conn.execute(q)
        ]


def deliveries(engine: Engine, portfolio: str | int | None, endpoint_id: int, limit: int = 50) -> list[Delivery]:
    """The newest delivery records of one endpoint, with their status."""
    with engine.connect() as conn:
        pid = resolve_portfolio(conn, portfolio)
        if conn.execute(sa.select(_w.id).where(_w.id == endpoint_id, _w.portfolio_id == pid)).first() is None:
            raise NotFound(f"no webhook endpoint {endpoint_id} in this portfolio")
        q = (
            sa.select(
                _d.id,
                _e.event_id,
                _e.seq,
                _e.kind,
                _d.status,
                _d.attempts,
                _d.last_status_code,
                _d.last_error,
                _d.next_attempt_at,
                _d.delivered_at,
            )  # fmt: skip
            .join(events, sa.and_(_e.portfolio_id == _d.portfolio_id, _e.id == _d.event_id))
            .where(_d.endpoint_id == endpoint_id)
            .order_by(_d.id.desc())
            .limit(limit)
        )
        return [
            {
                "id": r.id,
                "event_id": r.event_id,
                "seq": r.seq,
                "kind": r.kind,
                "status": r.status,
                "attempts": r.attempts,
                "last_status_code": r.last_status_code,
                "last_error": r.last_error,
                "next_attempt_at": r.next_attempt_at,
                "delivered_at": r.delivered_at,
            }  # fmt: skip
            for r in conn.execute(q)
        ]


# --- the relay's side ---------------------------------------------------------------------------


def fan_out(engine: Engine, limit: int = 1000) -> int:
    """Turn new outbox events into delivery records for the enabled endpoints whose kinds match, and
    move the webhook cursor past them, in one transaction. Returns the number of events passed."""
    with writer_lock(engine), write_connection(engine) as conn, conn.begin():
        batch = outbox.pending(conn, CONSUMER, limit)
        if not batch:
            return 0
        now = datetime.now(UTC)
        targets: dict[int, list[tuple[int, list[str]]]] = {}
        for eid, pid, kinds in conn.execute(sa.select(_w.id, _w.portfolio_id, _w.kinds).where(_w.enabled.is_(True))):
            targets.setdefault(pid, []).append((eid, json.loads(kinds)))
        rows = [
            {
                "portfolio_id": ev.portfolio_id,
                "endpoint_id": eid,
                "event_id": ev.id,
                "status": DeliveryStatus.PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "last_error": "",
                "created_at": now,
            }  # fmt: skip
            for ev in batch
            for eid, kinds in targets.get(ev.portfolio_id, [])
            if kind_matches(kinds, ev.kind)
        ]
        if rows:
            conn.execute(webhook_deliveries.insert(), rows)
        heads: dict[int, int] = {}
        for ev in batch:
            heads[ev.portfolio_id] = ev.seq
        outbox.advance(conn, CONSUMER, heads, now)
        return len(batch)


@dataclass(frozen=True, slots=True)
class _Outcome:
    """One attempt's outcome, as the delivery record keeps it."""

    id: int  # the delivery's
    status: str
    attempts: int
    code: int | None  # the endpoint's HTTP status
    error: str
    next: datetime


def sign(secret: str, event_id: str, at: datetime, body: str) -> dict[str, str]:
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(event_id, at, body),
        "content-type": "application/json",
    }


async def deliver_due(
    engine: Engine, keyring: Keyring, client: httpx.AsyncClient, policy: DeliveryPolicy, limit: int = 200
) -> int:
    """Send every due delivery (concurrently: one slow endpoint holds up no other) and record each
    outcome. Returns the number of attempts made."""
    now = datetime.now(UTC)
    q = (
        sa.select(_d.id, _d.attempts, _w.url, _w.enabled, _w.secret_encrypted, *outbox.EVENT_COLUMNS)
        .join(webhook_endpoints, sa.and_(_w.portfolio_id == _d.portfolio_id, _w.id == _d.endpoint_id))
        .join(events, sa.and_(_e.portfolio_id == _d.portfolio_id, _e.id == _d.event_id))
        .where(_d.status == DeliveryStatus.PENDING, _d.next_attempt_at <= now)
        .order_by(_d.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        due = conn.execute(q).all()
    if not due:
        return 0
    secrets_by_token: dict[bytes, str] = {}

    async def attempt(row: Any) -> _Outcome:
        if not row.enabled:
            return _Outcome(row.id, DeliveryStatus.FAILED, row.attempts, None, "endpoint disabled", now)
        token = row.secret_encrypted
        if token not in secrets_by_token:
            try:
                secrets_by_token[token] = keyring.decrypt(token).decode()
            except KeyringError as exc:  # a lost or wrong key: nothing can be signed for this endpoint
                return _Outcome(row.id, DeliveryStatus.FAILED, row.attempts, None, str(exc)[:300], now)
        ev = Event(*row[5:])
        body = ev.body().decode()
        at = datetime.now(UTC)
        n = row.attempts + 1
        try:
            resp = await client.post(row.url, content=body, headers=sign(secrets_by_token[token], ev.event_id, at, body),
                                     timeout=policy.timeout_seconds)  # fmt: skip
            code, error = resp.status_code, "" if resp.is_success else f"HTTP {resp.status_code}"
        except httpx.HTTPError as exc:
            code, error = None, f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
        if not error:
            return _Outcome(row.id, DeliveryStatus.DELIVERED, n, code, "", at)
        status = DeliveryStatus.FAILED if n >= policy.max_attempts else DeliveryStatus.PENDING
        return _Outcome(row.id, status, n, code, error, policy.next_attempt(n, datetime.now(UTC)))

    outcomes = await asyncio.gather(*(attempt(r) for r in due))
    _record(engine, outcomes, datetime.now(UTC))
    return len(outcomes)


def _record(engine: Engine, outcomes: list[_Outcome], done_at: datetime) -> None:
    """Every attempt's outcome onto its delivery record, in one transaction."""
    with writer_lock(engine), write_connection(engine) as conn, conn.begin():
        conn.execute(
            webhook_deliveries.update()
            .where(_d.id == sa.bindparam("did"))
            .values(
                status=sa.bindparam("st"),
                attempts=sa.bindparam("n"),
                last_status_code=sa.bindparam("code"),
                last_error=sa.bindparam("err"),
                next_attempt_at=sa.bindparam("nxt"),
                delivered_at=sa.bindparam("dat"),
            ),
            [
                {
                    "did": o.id,
                    "st": o.status,
                    "n": o.attempts,
                    "code": o.code,
                    "err": o.error,
                    "nxt": o.next,
                    "dat": done_at if o.status == DeliveryStatus.DELIVERED else None,
                }  # fmt: skip
                for o in outcomes
            ],
        )
