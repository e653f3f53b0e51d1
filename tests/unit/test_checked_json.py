"""api/hardening.checked_json: a body within the bounds parses to what `json.loads` gives, in every
encoding json.loads reads; a repeated key, too many keys or too deep a nesting is refused, and text
that is not JSON raises as json.loads raises (check_json then lets FastAPI answer it)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alluse.api.hardening import UnacceptableJson, check_json, checked_json

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4),
    max_leaves=20,
)


@given(values, st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32-be"]))
def test_a_body_within_the_bounds_parses_as_json_loads_parses_it(value: Any, encoding: str) -> None:
    body = json.dumps(value, ensure_ascii=False).encode(encoding, "surrogatepass")
    assert checked_json(body, 32, 1000) == json.loads(body)


@pytest.mark.parametrize(
    ("body", "depth", "keys", "refusal"),
    [
        (b'{"a": 1, "b": {"a": 2, "a": 3}}', 32, 1000, "duplicate key 'a'"),
        (b'{"a": 1, "b": 2, "c": 3}', 32, 2, "has 3 keys; at most 2"),
        (b'[[{"a": []}]]', 3, 1000, "deeper than 3 levels"),
    ],
)
def test_a_body_past_the_bounds_is_refused(body: bytes, depth: int, keys: int, refusal: str) -> None:
    with pytest.raises(UnacceptableJson, match=refusal):
        checked_json(body, depth, keys)
    with pytest.raises(UnacceptableJson, match=refusal):
        check_json(body, depth, keys)


@pytest.mark.parametrize("body", [b"{", b"\xff\xfe\xfd", b"nul", b"[" * 100_000])
def test_text_that_is_not_json_raises_as_json_loads_does(body: bytes) -> None:
    with pytest.raises(Exception) as loads:
        json.loads(body)
    with pytest.raises(type(loads.value)):
        checked_json(body, 32, 1000)
    check_json(body, 32, 1000)  # FastAPI's own parse answers it
