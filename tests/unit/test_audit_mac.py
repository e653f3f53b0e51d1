"""The audit chain's MAC: the keyed-state HMAC gives exactly what the standard library's HMAC gives,
over timestamps spelled as they always were."""

import hmac
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from alluse.domain.audit import entry_mac, entry_signer, hmac_sha256, timestamp_text


@given(key=st.binary(min_size=0, max_size=200), message=st.binary(max_size=2_000))
def test_hmac_sha256_is_the_standard_hmac(key: bytes, message: bytes) -> None:
    assert hmac_sha256(key, message) == hmac.digest(key, message, "sha256").hex()


def test_keys_longer_than_a_block_and_of_a_block_exactly() -> None:
    for n in (0, 1, 32, 63, 64, 65, 128):
        key = bytes(range(n))
        assert hmac_sha256(key, b"entry") == hmac.new(key, b"entry", "sha256").hexdigest()
    # One key's states do not leak into another's (the cache is per key).
    assert hmac_sha256(b"a", b"m") != hmac_sha256(b"b", b"m")


_text = st.text(max_size=80)


@given(
    key=st.binary(max_size=100),
    shared=st.tuples(_text, _text, _text, _text, st.none() | _text),
    entries=st.lists(
        st.tuples(_text, st.integers(min_value=0), _text, _text, _text, st.none() | _text), min_size=1, max_size=4
    ),
)
def test_a_unit_of_works_signer_gives_entry_mac(
    key: bytes,
    shared: tuple[str, str, str, str, str | None],
    entries: list[tuple[str, int, str, str, str, str | None]],
) -> None:
    key_id, at_text, actor, action, reason = shared
    mac_of = entry_signer(key, key_id, at_text, actor, action, reason)
    for prev, seq, idem, digest, result, rows in entries:
        expected = entry_mac(key, key_id, prev, seq, at_text, actor, action, idem, digest, result, reason, rows)
        assert mac_of(prev, seq, idem, digest, result, rows) == expected


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(), st.one_of(st.none(), st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m))))
)
def test_a_timestamp_is_spelled_as_its_utc_isoformat(at: datetime, tz: timezone | None) -> None:
    if tz is not None:
        try:
            at = at.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)  # one that exists in UTC too
        except OverflowError:
            return
    utc = at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo is not None else at
    assert timestamp_text(at) == utc.isoformat(timespec="microseconds")
    assert timestamp_text(at) == timestamp_text(at)  # the second spelling is the one remembered
