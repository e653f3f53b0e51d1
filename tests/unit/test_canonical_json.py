"""canonical_json, from the encoder's C core made once, spells every value exactly as the standard
library's JSONEncoder with the same options (what every stored digest, result and manifest was
written with)."""

import json
from datetime import date
from enum import StrEnum

from hypothesis import given
from hypothesis import strategies as st

from alluse.domain.audit import canonical_json, digest, digests

_reference = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)

_plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)


@given(value=_plain)
def test_canonical_json_is_the_reference_encoding(value: object) -> None:
    assert canonical_json(value) == _reference.encode(value)


class _Kind(StrEnum):
    DEPOSIT = "DEPOSIT"


def test_values_json_does_not_know_are_spelled_by_str() -> None:
    value = {"on": date(2026, 11, 30), "kind": _Kind.DEPOSIT, "text": 'quote " and é'}
    assert canonical_json(value) == _reference.encode(value)
    assert canonical_json(value) == '{"kind":"DEPOSIT","on":"2026-11-30","text":"quote \\" and é"}'


@given(values=st.lists(_plain, max_size=5))
def test_digests_is_digest_of_each(values: list[object]) -> None:
    assert digests(values) == [digest(v) for v in values]
