"""A batch's fill payloads and results are spelled as canonical JSON with their shape known
(`trades.payload_texts`, `trades.result_texts`): the same text as the generic encoder, whatever the
accounts, symbols, prices, dates and figures, or left to the generic encoder."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from alluse.domain.audit import canonical_json, digests, text_digests
from alluse.domain.errors import InvalidInput
from alluse.services.trades import Fill, FillAction, FillResult, payload_texts, result_texts

names = st.text(max_size=12)
counts = st.integers(0, 10**9)


def _fact(**fields: object) -> Fill | None:
    """A fact, or None when its own checks refuse it (such a fact is never recorded)."""
    try:
        return Fill(**fields)  # type: ignore[arg-type]
    except InvalidInput:
        return None


facts = st.builds(
    _fact,
    account=names | st.integers(-(10**15), 10**15) | st.booleans(),
    action=st.sampled_from(FillAction),
    symbol=st.none() | names,
    quantity=counts | st.just(True),
    price=st.sampled_from(["0", "10.25", "1", "180.0001"]) | st.decimals("0", "1000", places=4) | st.integers(0, 999),
    commission_cents=st.integers(0, 10**6) | st.just(False),
    trade_date=st.none() | st.dates(date(1990, 1, 1), date(2100, 1, 1)),
    amount_cents=st.integers(0, 10**12),
    multiplier=st.integers(1, 1000),
)


@given(st.lists(facts, max_size=12))
def test_payload_texts_are_the_canonical_json(drawn: list[Fill | None]) -> None:
    """Spelled with the shape known, or left to the generic encoder (None) when a value is of a type
    the payload does not declare: never a different text."""
    batch = [f for f in drawn if f is not None]
    for fact, text in zip(batch, payload_texts(batch), strict=True):
        assert text is None or text == canonical_json(fact.payload())


def test_payload_texts_spell_the_declared_types() -> None:
    batch = [
        Fill(7, FillAction.BTO, "XYZ", 10, "10.25", 100, date(2027, 1, 4)),
        Fill("a1-COM", FillAction.STO, "XYZ  271217P00050000", 1, "1.5", 65, None),
        Fill('A "b" é', FillAction.DIVIDEND, None, amount_cents=1234, trade_date=date(2026, 3, 1)),
    ]
    assert payload_texts(batch) == [canonical_json(f.payload()) for f in batch]


def test_a_value_of_another_type_is_left_to_the_encoder() -> None:
    batch = [Fill(True, FillAction.FEE, None, amount_cents=5, trade_date=date(2026, 3, 1)),
             Fill(3, FillAction.BTO, "XYZ", 1, Decimal("1.25"), 0, date(2026, 3, 1))]  # type: ignore[arg-type]  # fmt: skip
    assert payload_texts(batch) == [None, None]


def test_a_spelled_payload_has_the_digest_of_its_payload() -> None:
    batch = [Fill(3, FillAction.BTO, "XYZ", 10, "10.25", 100, date(2027, 1, 4)), Fill("é", FillAction.FEE, None,
             amount_cents=7, trade_date=date(2027, 1, 5))]  # fmt: skip
    assert text_digests(payload_texts(batch)) == digests([f.payload() for f in batch])  # type: ignore[arg-type]


cents = st.integers(-(10**15), 10**15)
results = st.fixed_dictionaries(
    {
        "fill_id": st.integers(1, 10**12),
        "account": names,
        "action": st.sampled_from([str(a) for a in FillAction]) | names,
        "symbol": st.none() | names,
        "quantity": counts | st.just(True),
        "cash_cents": cents,
        "realized_cents": cents,
        "trade_date": st.dates().map(date.isoformat),
        "buffer_breach": st.booleans() | st.just(1),
    },
    optional={"earmark_drawn_cents": cents | st.just(False)},
)


@given(st.lists(results, max_size=20))
def test_result_texts_are_the_canonical_json(batch: list[FillResult]) -> None:
    assert result_texts(batch) == [canonical_json(r) for r in batch]
