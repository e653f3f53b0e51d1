"""A batch's cash results are spelled as canonical JSON with their shape known (`cash.moved_texts`):
the same text as the generic encoder, whatever the names, amounts and legs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from alluse.domain.audit import canonical_json
from alluse.services.cash import CashMoved, moved_texts

names = st.text(max_size=12)
cents = st.integers(-(10**15), 10**15)
legs = st.lists(st.fixed_dictionaries({"account": names, "amount_cents": cents}), min_size=2, max_size=4)
results = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["DEPOSIT", "WITHDRAWAL", "TRANSFER"]) | names,
        "amount_cents": cents,
        "legs": legs,
        "transfer_id": st.integers(1, 10**12),
        "transfer_number": st.integers(1, 10**12),
    }
)


@given(st.lists(results, max_size=20))
def test_moved_texts_are_the_canonical_json(batch: list[CashMoved]) -> None:
    assert moved_texts(batch) == [canonical_json(r) for r in batch]
