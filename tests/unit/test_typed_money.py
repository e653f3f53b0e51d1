"""The API shows money found by type (`Cents` fields) exactly as the old name-suffix rule did."""

from __future__ import annotations

from typing import NotRequired, TypedDict

from alluse.api.money import typed_money
from alluse.api.schemas import money
from alluse.domain.money import Cents
from alluse.services.statements import Reconciliation


class Leg(TypedDict):
    amount_cents: Cents
    cents_paid: Cents  # typed cents without the suffix: the type decides, not the name
    count_cents: int  # a count that happens to end in _cents is left alone
    note: NotRequired[Cents | None]


def test_cents_fields_become_dollars_by_their_type() -> None:
    legs = [{"amount_cents": -12_345, "cents_paid": 5, "count_cents": 3, "note": None}]
    assert typed_money(legs, list[Leg]) == [{"amount": "-123.45", "cents_paid": "0.05", "count_cents": 3, "note": None}]


def test_a_typed_result_converts_as_the_suffix_rule_did() -> None:
    rec = {
        "accounts": [
            {
                "brokerage_account": "IBKR:U1",
                "account": "A1-GEN",
                "as_of": "2027-01-08",
                "cash_cents": 1_000_001,
                "positions": 1,
                "differences": [
                    {"what": "cash", "broker_cents": None, "alluse_cents": 7, "note": "no USD ending cash"},
                    {"what": "quantity", "symbol": "AAPL", "broker_quantity": 100, "alluse_quantity": 0},
                ],
                "not_compared": {},
            }
        ],
        "differences": 2,
    }
    assert typed_money(rec, Reconciliation) == money(rec)
