"""A batch's cash results and payloads are spelled as canonical JSON with their shape known
(`cash.moved_texts`, `cash.payload_texts`): the same text as the generic encoder, whatever the names,
amounts and legs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from alluse.domain.audit import canonical_json, digests, text_digests
from alluse.domain.ledger import TransferKind
from alluse.services.cash import CashMove, CashMoved, deposit, moved_texts, payload_texts, withdrawal

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


refs = st.none() | names | st.integers(-(10**15), 10**15) | st.booleans() | st.floats(allow_nan=False)
moves = st.builds(
    CashMove,
    kind=st.sampled_from(TransferKind),
    amount_cents=st.integers(1, 10**15) | st.just(True) | st.floats(min_value=0.5, max_value=1e9),
    source=refs,
    to=refs,
    to_group=st.none() | st.booleans() | st.integers(0, 1),
    memo=st.text(max_size=20),
)


@given(st.lists(moves, max_size=20))
def test_payload_texts_are_the_canonical_json(batch: list[CashMove]) -> None:
    """Spelled with the shape known, or left to the generic encoder (None) when a value is of a type
    the payload does not declare: never a different text."""
    for move, text in zip(batch, payload_texts(batch), strict=True):
        assert text is None or text == canonical_json(move.payload())


def test_payload_texts_spell_the_declared_types() -> None:
    batch = [deposit("g1:GEN", 10_000, group=None, memo='a "b"'), withdrawal(7, 1), deposit("g1", 5, group=True)]
    assert payload_texts(batch) == [canonical_json(m.payload()) for m in batch]


def test_a_spelled_payload_has_the_digest_of_its_payload() -> None:
    batch = [deposit(3, 10_000), withdrawal("g1:GEN", 2_500, memo="é")]
    assert text_digests(payload_texts(batch)) == digests([m.payload() for m in batch])  # type: ignore[arg-type]
