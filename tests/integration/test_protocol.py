"""The §7 pre-trade protocol check against the moderate template and per-account overrides."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from alluse.domain.errors import InvalidInput
from alluse.services import groups
from alluse.services.configuration import set_value
from alluse.services.protocol import check_trade
from alluse.services.trades import Fill, FillAction, record_fill

THU, MON = date(2027, 1, 7), date(2027, 1, 4)
PUT_1D = "XYZ   270108P00050000"  # expires Friday: 1 day from Thursday


def _check(engine: sa.Engine, account: str, action: str, symbol: str, qty: int, price: str, on: date, delta=None):
    return check_trade(engine, "main", account, action, symbol, qty, price, on, delta)


@pytest.fixture
def funded(engine: sa.Engine, portfolio: str) -> sa.Engine:
    groups.open_group(engine, "t", portfolio, "g1", groups.group_opening(25_000_000))  # Gen 100,000; Com 75,000
    return engine


def test_gen_acc_cash_secured_put_passes(funded: sa.Engine) -> None:
    r = _check(funded, "A1-GEN", "STO", PUT_1D, 2, "1.00", THU, "-0.45")
    assert r["ok"] and r["violations"] == [] and r["warnings"] == []


def test_gen_acc_put_breaking_every_rule(funded: sa.Engine) -> None:
    r = _check(funded, "A1-GEN", "STO", "XYZ   270115P00050000", 6, "0.20", MON, "0.30")
    v = " | ".join(r["violations"])
    assert "entry day MON" in v and "delta 0.30 is outside" in v and "11 days to expiry" in v
    assert "XYZ exposure would be $30,000.00, over 25 % of NAV ($25,000.00)" in v
    (w,) = r["warnings"]
    assert "below the minimum weekly return 1.5 %" in w


def test_put_must_be_cash_secured_within_deployable_cash(funded: sa.Engine) -> None:
    r = _check(funded, "A1-GEN", "STO", "XYZ   270108P00500000", 2, "10", THU, "0.45")  # 100,000 of collateral
    assert any("not cash-secured" in x and "$95,000.00" in x for x in r["violations"])


def test_sleeve_instruments(funded: sa.Engine) -> None:
    r = _check(funded, "A1-GEN", "BTO", "XYZ", 10, "50", THU)
    assert "Gen-Acc opens only cash-secured puts and covered calls" in r["violations"]
    leaps = "XYZ   280121C00040000"
    assert _check(funded, "A1-COM", "BTO", leaps, 1, "15", MON)["ok"]
    r = _check(funded, "A1-COM", "BTO", "XYZ   270319C00040000", 1, "15", MON)  # not a LEAPS
    assert any("Com-Acc opens only" in x for x in r["violations"])
    r = _check(funded, "A1-COM", "STO", "XYZ   270108C00060000", 1, "0.50", MON, "0.25")
    assert any("call is not covered" in x for x in r["violations"])
    record_fill(funded, "t", "main", "b", Fill("A1-COM", FillAction.BTO, "XYZ", 100, "50", trade_date=MON))
    assert _check(funded, "A1-COM", "STO", "XYZ   270108C00060000", 1, "0.50", MON, "0.25")["ok"]


def test_overrides_change_the_band(funded: sa.Engine) -> None:
    assert not _check(funded, "A1-GEN", "STO", PUT_1D, 1, "1", THU, "0.30")["ok"]
    set_value(funded, "t", "main", "A1-GEN", "delta_min", "0.25", "cfg1")
    assert _check(funded, "A1-GEN", "STO", PUT_1D, 1, "1", THU, "0.30")["ok"]


def test_bad_intent_is_a_clear_error(funded: sa.Engine) -> None:
    with pytest.raises(InvalidInput, match="BTO, STO, BTC or STC"):
        _check(funded, "A1-GEN", "BUY", PUT_1D, 1, "1", THU)
    with pytest.raises(InvalidInput, match="delta"):
        _check(funded, "A1-GEN", "STO", PUT_1D, 1, "1", THU, "1.5")
