from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from alluse.domain.errors import InvalidInput, NotFound
from alluse.services import cash, configuration, groups
from alluse.services.trades import Fill, FillAction, record_fill
from alluse.services.verify import verify
from tests.conftest import db_state


@pytest.fixture
def a1(engine: sa.Engine, portfolio: str) -> str:
    groups.open_group(engine, "t", portfolio, "open", groups.group_opening(10_000_000))
    return portfolio


def test_show_and_override_account_rules(engine: sa.Engine, a1: str) -> None:
    shown = configuration.show(engine, a1, "A1-GEN")
    assert shown["template"] == "moderate" and shown["rules"]["delta_min"] == "0.40"
    configuration.set_value(engine, "t", a1, "A1-GEN", "delta_min", "0.42", "c1")
    configuration.set_value(engine, "t", a1, "A1-GEN", "template", "aggressive", "c2")
    shown = configuration.show(engine, a1, "A1-GEN")
    assert shown["rules"]["delta_min"] == "0.42"  # the override survives a template change
    assert shown["rules"]["delta_max"] == "0.60" and shown["overridden"] == ["delta_min"]


def test_buffer_override_changes_the_enforced_buffer(engine: sa.Engine, a1: str) -> None:
    configuration.set_value(engine, "t", a1, "A1-GEN", "buffer_pct", "10", "c1")
    # $20,000 of the $40,000 into shares; taking $18,000 would leave $2,000 cash against 10 % of
    # $22,000 = $2,200 (at 5 % it would be allowed: $1,100).
    buy = Fill("A1-GEN", FillAction.BTO, "ABC", 200, "100", 0, date(2026, 1, 5))
    record_fill(engine, "t", a1, "buy", buy)
    with pytest.raises(Exception, match=r"cash buffer of \$2,200.00"):
        cash.move_cash(engine, "t", a1, [("w", cash.withdrawal("A1-GEN", 1_800_000))])
    assert verify(engine).ok


def test_group_and_portfolio_allocation(engine: sa.Engine, a1: str) -> None:
    configuration.set_value(engine, "t", a1, "A1", "allocation", "50/25/25", "c1")
    (r,) = cash.move_cash(engine, "t", a1, [("d", cash.deposit("A1", 1_000_000))])
    assert sorted(leg["amount_cents"] for leg in r["legs"])[1:] == [250_000, 250_000, 500_000]
    configuration.set_value(engine, "t", a1, "portfolio", "template", "conservative", "c2")
    assert configuration.show(engine, a1, "portfolio")["allocation"] == "30/35/35"


@pytest.mark.parametrize(
    ("target", "key", "value", "error"),
    [
        ("A1-GEN", "delta_max", "1.5", InvalidInput),
        ("A1-GEN", "template", "yolo", InvalidInput),
        ("A1", "allocation", "50/50/1", InvalidInput),
        ("A1", "allocation", "100/0/0", InvalidInput),
        ("portfolio", "colour", "red", InvalidInput),
        ("B7", "allocation", "40/30/30", NotFound),
    ],
)
def test_bad_settings_change_nothing(engine: sa.Engine, a1: str, target, key, value, error) -> None:
    before = db_state(engine)
    with pytest.raises(error):
        configuration.set_value(engine, "t", a1, target, key, value, "bad")
    assert db_state(engine) == before
