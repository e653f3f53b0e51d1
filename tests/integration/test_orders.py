"""`alluse order`: the §7 check, the recorded intent, the paper broker's fill booked like any fill."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from alluse.config import Settings
from alluse.domain.errors import NotFound
from alluse.services import groups
from alluse.services.marks import record_marks
from alluse.services.orders import OrderIntent, place_order
from alluse.services.trades import Fill, FillAction, record_fill
from alluse.store.schema import accounts, fills, lots, order_intents
from tests.conftest import db_state

MONDAY = date(2026, 11, 30)
SETTINGS = Settings(paper_commission_per_contract="0.65", paper_commission_per_share="0.005")


@pytest.fixture
def paper(engine: sa.Engine, portfolio: str) -> sa.Engine:
    groups.open_group(engine, "t", portfolio, "g", groups.group_opening(25_000_000))
    record_fill(engine, "t", portfolio, "seed", Fill("A1-COM", FillAction.BTO, "ABC", 1, "20", 0, date(2026, 11, 27)))
    record_marks(engine, "t", portfolio, "m1", {"ABC": "20.50"}, date(2026, 11, 27))
    return engine


def _cash(engine: sa.Engine, name: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(accounts.c.cash_cents).where(accounts.c.name == name)).scalar_one()


def _intents(engine: sa.Engine) -> list[tuple]:
    o = order_intents.c
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(o.status, o.symbol, o.quantity, o.fill_id).order_by(o.id))]


def test_paper_order_fills_at_the_latest_mark_and_books_a_fill(paper: sa.Engine) -> None:
    before = _cash(paper, "A1-COM")
    r = place_order(paper, "t", "main", "o1", OrderIntent("A1-COM", "BTO", "ABC", 100, on=MONDAY), SETTINGS)
    assert (r["status"], r["price"], r["commission_cents"], r["cash_cents"]) == ("FILLED", "20.5", 50, -205050)
    assert _cash(paper, "A1-COM") == before - 205050
    with paper.connect() as conn:
        lot = conn.execute(
            sa.select(lots.c.quantity, lots.c.open_cash_cents).where(lots.c.open_fill_id == r["fill_id"])
        )
        assert lot.one() == (100, -205050)
        assert conn.execute(sa.select(fills.c.action).where(fills.c.id == r["fill_id"])).scalar_one() == "BTO"
    assert _intents(paper) == [("FILLED", "ABC", 100, r["fill_id"])]
    again = place_order(paper, "t", "main", "o1", OrderIntent("A1-COM", "BTO", "ABC", 100, on=MONDAY), SETTINGS)
    assert again["replayed"] and _cash(paper, "A1-COM") == before - 205050


def test_a_refused_intent_is_recorded_and_nothing_is_sent(paper: sa.Engine) -> None:
    before = _cash(paper, "A1-COM")
    tuesday = date(2026, 12, 1)
    r = place_order(paper, "t", "main", "o2", OrderIntent("A1-COM", "BTO", "ABC", 100, on=tuesday), SETTINGS)
    assert r["status"] == "REFUSED" and "entry day TUE" in r["violations"][0]
    assert _cash(paper, "A1-COM") == before
    assert _intents(paper) == [("REFUSED", "ABC", 100, None)]


def test_live_ibkr_orders_are_not_built_and_write_nothing(engine: sa.Engine, portfolio: str) -> None:
    refs = ["IBKR:U9100001", "IBKR:U9100002", "IBKR:U9100003"]
    groups.open_group(engine, "t", portfolio, "g", groups.group_opening(10_000_000, refs))
    before = db_state(engine)
    with pytest.raises(NotImplementedError, match="live IBKR orders are not built"):
        place_order(engine, "t", "main", "o3", OrderIntent("A1-COM", "BTO", "ABC", 1, on=MONDAY), SETTINGS)
    with pytest.raises(NotFound, match="no mark for 'ABC'"):
        groups.open_group(engine, "t", portfolio, "g2", groups.group_opening(10_000_000))
        place_order(engine, "t", "main", "o4", OrderIntent("A2-COM", "BTO", "ABC", 1, on=MONDAY), SETTINGS)
    assert db_state(engine)["order_intents"] == before["order_intents"] == []
