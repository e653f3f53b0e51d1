"""Events as subscribers see them: the envelope, the subject, kind filters, the alert rules.

Pure: no I/O. The outbox (store/outbox.py) stores events; the relay (services/relay.py) publishes
them to NATS JetStream and to webhooks in this shape. docs/events.md is the reference.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any, NamedTuple, TypedDict

from alluse.domain.errors import InvalidInput

# Version of the envelope and of every payload shape; a change a subscriber could trip over bumps it.
SCHEMA_VERSION = 1
DEFAULT_PREFIX = "alluse"

# The alert rules: each reaches a person as an event of kind `alert.<rule>` (webhooks, `alerts --follow`).
ALERT_RULES = (
    "buffer_breach",
    "fork_ready",
    "fork_waiting",
    "merge_waiting",
    "assignment",
    "reinvestment_ready",
    "reconciliation_difference",
)
ALERT_PREFIX = "alert."


class DeliveryStatus(StrEnum):
    """A webhook delivery is PENDING until the endpoint accepts it (DELIVERED) or the attempts run out (FAILED)."""

    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_PLAIN = re.compile(r"^[a-z0-9_.-]+$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")
_KIND = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*)?$|^\*$")


class Envelope(TypedDict):
    """An event as subscribers receive it (docs/events.md)."""

    id: str
    portfolio_id: int
    seq: int
    kind: str
    schema: str
    at: str
    audit_seq: int
    account_id: int | None
    data: dict[str, Any]  # the event's own JSON, as its kind defines it


class Event(NamedTuple):
    """One outbox row, ready to leave the process. (A named tuple: the relay builds thousands a second.)"""

    id: int  # the outbox row id (local)
    event_id: str  # global id: JetStream message id, webhook-id
    portfolio_id: int
    seq: int
    kind: str
    version: int
    at: datetime
    audit_seq: int
    account_id: int | None
    payload: str  # canonical JSON of the data

    def envelope(self) -> Envelope:
        return {
            "id": self.event_id,
            "portfolio_id": self.portfolio_id,
            "seq": self.seq,
            "kind": self.kind,
            "schema": f"alluse.event.v{self.version}",
            "at": _utc_text(self.at),
            "audit_seq": self.audit_seq,
            "account_id": self.account_id,
            "data": json.loads(self.payload),
        }

    def body(self) -> bytes:
        """The message body: the envelope as compact JSON with sorted keys (what webhook signatures
        cover). Written out directly: the payload is canonical JSON already and every other field is a
        number or a string of a fixed alphabet (checked), so nothing needs escaping."""
        if not (_PLAIN.match(self.kind) and _PLAIN.match(self.event_id)):
            return _encode(self.envelope()).encode()
        account = "null" if self.account_id is None else self.account_id
        return (
            f'{{"account_id":{account},"at":"{_utc_text(self.at)}","audit_seq":{self.audit_seq},'
            f'"data":{self.payload},"id":"{self.event_id}","kind":"{self.kind}","portfolio_id":{self.portfolio_id},'
            f'"schema":"alluse.event.v{self.version}","seq":{self.seq}}}'
        ).encode()


@lru_cache(maxsize=256)  # the events of one unit of work share its timestamp
def _utc_text(at: datetime) -> str:
    # SQLite hands timestamps back without a zone; they were written in UTC.
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.isoformat().replace("+00:00", "Z")


def validate_prefix(prefix: str) -> str:
    """A subject prefix is one or more NATS tokens separated by dots."""
    if not prefix or not all(_TOKEN.match(t) for t in prefix.split(".")):
        raise InvalidInput(f"subject prefix must be dot-separated tokens of letters, digits, _ or -, not {prefix!r}")
    return prefix


def subject(prefix: str, portfolio_id: int, kind: str) -> str:
    """`<prefix>.<portfolio id>.<kind>`: the kind's own dots make further tokens (alluse.1.cash.deposit),
    so `alluse.1.>` is one portfolio and `alluse.*.alert.>` every portfolio's alerts. The id, not the
    name, because a name may hold characters a subject cannot (space, dot) and may be renamed."""
    return f"{prefix}.{portfolio_id}.{kind}"


def validate_kinds(kinds: Iterable[str]) -> list[str]:
    """Kind filters: an exact kind (`trade.fill`), a prefix (`alert.*`) or `*`; empty means every kind."""
    out = []
    for k in kinds:
        k = k.strip()
        if not _KIND.match(k):
            raise InvalidInput(f"kinds: {k!r} is not an event kind, a prefix ending in .* or *")
        out.append(k)
    return sorted(set(out))


def kind_matches(filters: Iterable[str], kind: str) -> bool:
    filters = list(filters)
    if not filters:
        return True
    for f in filters:
        if f == "*" or f == kind or (f.endswith(".*") and kind.startswith(f[:-1])):
            return True
    return False


def alert_kind(rule: str) -> str:
    """The event kind of an alert rule (a BUFFER_BREACH alert row is `alert.buffer_breach`)."""
    rule = rule.lower()
    if rule not in ALERT_RULES:
        raise InvalidInput(f"no alert rule {rule!r}")
    return ALERT_PREFIX + rule
