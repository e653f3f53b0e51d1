"""The event envelope, subjects and kind filters (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from alluse.domain.audit import canonical_json
from alluse.domain.errors import InvalidInput
from alluse.domain.events import Event, alert_kind, kind_matches, subject, validate_kinds, validate_prefix


@pytest.mark.parametrize("kind", ["cash.deposit", "alert.buffer_breach", 'odd "kind"'])
@pytest.mark.parametrize("account", [None, 12])
def test_the_body_is_the_envelope_as_compact_sorted_json(kind: str, account: int | None) -> None:
    payload = canonical_json({"b": [1, {"z": "é\n"}], "a": "x", "amount_cents": 12345})
    e = Event(1, "0c4f-uuid", 2, 3, kind, 1, datetime(2027, 1, 15, 15, 30, tzinfo=UTC), 4, account, payload)
    assert e.body().decode() == json.dumps(e.envelope(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    env = json.loads(e.body())
    assert env["at"] == "2027-01-15T15:30:00Z" and env["schema"] == "alluse.event.v1" and env["data"]["a"] == "x"
    naive = e._replace(at=datetime(2027, 1, 15, 15, 30))  # SQLite hands back naive UTC timestamps
    assert json.loads(naive.body())["at"] == "2027-01-15T15:30:00Z"


def test_subjects_and_kind_filters() -> None:
    assert subject("alluse", 7, "cash.deposit") == "alluse.7.cash.deposit"
    assert validate_prefix("a.b-c_1") == "a.b-c_1"
    for bad in ("", "a..b", "a b", "a.*", "a.>"):
        with pytest.raises(InvalidInput, match="prefix"):
            validate_prefix(bad)
    assert validate_kinds([" alert.* ", "trade.fill", "alert.*"]) == ["alert.*", "trade.fill"]
    for bad in ("Alert.x", "alert.", "*.x", "a b", "alert.*.x"):
        with pytest.raises(InvalidInput, match="kinds"):
            validate_kinds([bad])
    assert kind_matches([], "anything.at_all")
    assert kind_matches(["*"], "cash.deposit")
    assert kind_matches(["alert.*"], "alert.fork_ready") and not kind_matches(["alert.*"], "alerts.x")
    assert not kind_matches(["cash.deposit"], "cash.withdrawal")
    assert alert_kind("BUFFER_BREACH") == "alert.buffer_breach"
    with pytest.raises(InvalidInput):
        alert_kind("NO_SUCH_RULE")
