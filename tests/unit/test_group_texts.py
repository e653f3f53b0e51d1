"""A group opening's results are spelled as canonical JSON with their shape known
(`groups.opened_texts`): the same text as the generic encoder, whatever the names, amounts, sleeves
and whether a transfer funded the group."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from alluse.domain.audit import canonical_json
from alluse.services.groups import GroupOpened, opened_texts

names = st.text(max_size=12)
cents = st.integers(-(10**15), 10**15)
ids = st.integers(1, 10**12)
sleeve = st.fixed_dictionaries({"account_id": ids, "name": names, "cash_cents": cents, "brokerage_account": names})
sleeves = st.sampled_from([("GEN", "REV", "COM"), ("GEN", "COM")]).flatmap(
    lambda kinds: st.fixed_dictionaries({k: sleeve for k in kinds})
)


@st.composite
def results(draw: Any) -> GroupOpened:
    r: dict[str, Any] = {"group_id": draw(ids), "name": draw(names), "amount_cents": draw(cents)}
    r["accounts"] = draw(sleeves)
    if draw(st.booleans()):
        r["transfer_id"] = draw(ids)
    return r  # type: ignore[return-value]


@settings(deadline=None)  # a loaded machine must not fail it on time
@given(st.lists(results(), max_size=10))
def test_opened_texts_are_the_canonical_json(batch: list[GroupOpened]) -> None:
    assert opened_texts(batch) == [canonical_json(r) for r in batch]
