"""Hand-worked fills: every event type, FIFO lots, holding periods, collateral, tax estimates."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from alluse.domain.errors import Conflict, RuleViolation
from alluse.services import cash, groups, tax
from alluse.services.alerts import open_alerts
from alluse.services.trades import Fill, FillAction, record_fill, record_fills
from alluse.services.verify import verify
from alluse.store.schema import accounts, lot_closes, lots, positions, postings
from alluse.views import tax as tax_read

PUT = "XYZ   270115P00050000"  # strike 50
CALL = "XYZ   270220C00055000"  # strike 55


def _open(engine: sa.Engine, portfolio: str, amount: int = 25_000_000) -> None:
    groups.open_group(engine, "t", portfolio, "g1", groups.group_opening(amount))


def _acc(engine: sa.Engine, name: str = "A1-GEN") -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(accounts).where(accounts.c.name == name)).one()._mapping)


def _closes(engine: sa.Engine) -> list[dict]:
    with engine.connect() as conn:
        q = sa.select(lot_closes).where(lot_closes.c.realized.is_(True)).order_by(lot_closes.c.id)
        return [dict(r._mapping) for r in conn.execute(q)]


def fill(action: str, symbol: str | None, qty: int = 0, price: str = "0", on: date | None = None, **kw) -> Fill:
    return Fill("A1-GEN", FillAction(action), symbol, qty, price, trade_date=on, **kw)


def test_short_put_expires_worthless(engine: sa.Engine, portfolio: str) -> None:
    _open(engine, portfolio)
    r = record_fill(engine, "t", portfolio, "f1", fill("STO", PUT, 2, "1.25", date(2027, 1, 8), commission_cents=130))
    assert r["cash_cents"] == 2 * 125 * 100 - 130
    a = _acc(engine)
    assert a["collateral_cents"] == 2 * 50 * 100 * 100  # strike × 100 × contracts, held while open
    assert a["cash_cents"] == 10_000_000 + 24_870
    assert a["positions_value_cents"] == -25_000  # the short put marked at its sale price
    record_fill(engine, "t", portfolio, "f2", fill("EXPIRE", PUT, 2))  # dated on its expiry day
    a = _acc(engine)
    assert (a["collateral_cents"], a["positions_value_cents"]) == (0, 0)
    (c,) = _closes(engine)
    assert (c["gain_cents"], c["term"], c["closed_on"]) == (24_870, "SHORT", date(2027, 1, 15))
    assert a["base_capital_cents"] == 10_000_000  # results are not capital flows
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.sum(postings.c.amount_cents))).scalar_one() == 0
    assert verify(engine).ok, verify(engine).problems


def test_put_assigned_then_called_away(engine: sa.Engine, portfolio: str) -> None:
    _open(engine, portfolio)
    record_fills(
        engine,
        "t",
        portfolio,
        [
            ("f1", fill("STO", PUT, 1, "2.00", date(2027, 1, 7))),
            ("f2", fill("ASSIGN", PUT, 1, on=date(2027, 1, 15))),
        ],
    )
    with engine.connect() as conn:
        stock_lot = conn.execute(sa.select(lots).where(lots.c.side == "LONG")).one()
    # 100 shares at 50 less the 200 premium: basis 4,800 dollars, held from the assignment day.
    assert (stock_lot.quantity, stock_lot.open_cash_cents, stock_lot.opened_on) == (100, -480_000, date(2027, 1, 15))
    assert _closes(engine) == []  # the put's premium went into the shares' basis, not into income
    a = _acc(engine)
    assert a["collateral_cents"] == 0
    assert a["cash_cents"] == 10_000_000 + 20_000 - 500_000
    record_fills(
        engine,
        "t",
        portfolio,
        [
            ("f3", fill("STO", CALL, 1, "1.50", date(2027, 1, 21))),
            ("f4", fill("ASSIGN", CALL, 1, on=date(2027, 2, 19))),
        ],
    )
    (c,) = _closes(engine)
    # Proceeds: 100 × 55 + 150 premium = 5,650; basis 4,800 → gain 850, short-term.
    assert (c["close_cash_cents"], c["open_cash_cents"], c["gain_cents"], c["term"]) == (
        565_000,
        -480_000,
        85_000,
        "SHORT",
    )
    a = _acc(engine)
    assert a["cash_cents"] == 10_000_000 + 20_000 - 500_000 + 15_000 + 550_000
    assert a["positions_value_cents"] == 0
    assert verify(engine).ok, verify(engine).problems


def test_partial_closes_across_lots_fifo(engine: sa.Engine, portfolio: str) -> None:
    _open(engine, portfolio)
    record_fills(
        engine,
        "t",
        portfolio,
        [
            ("b1", fill("BTO", "XYZ", 100, "10.00", date(2026, 3, 2), commission_cents=100)),
            ("b2", fill("BTO", "XYZ", 200, "13.00", date(2026, 4, 1))),
            ("s1", fill("STC", "XYZ", 150, "12.00", date(2026, 5, 4), commission_cents=150)),
        ],
    )
    c1, c2 = _closes(engine)
    # 100 from lot 1 (basis 1,001) and 50 of lot 2 (50/200 of 2,600 = 650); proceeds 1,800 − 1.50 split 100:50.
    assert (c1["quantity"], c1["open_cash_cents"], c1["close_cash_cents"], c1["gain_cents"]) == (
        100,
        -100_100,
        119_900,
        19_800,
    )
    assert (c2["quantity"], c2["open_cash_cents"], c2["close_cash_cents"], c2["gain_cents"]) == (
        50,
        -65_000,
        59_950,
        -5_050,
    )
    with engine.connect() as conn:
        rem = conn.execute(sa.select(lots.c.remaining, lots.c.remaining_cash_cents).order_by(lots.c.id)).all()
    assert [tuple(r) for r in rem] == [(0, 0), (150, -195_000)]
    with pytest.raises(RuleViolation, match="only 150 open"):
        record_fill(engine, "t", portfolio, "s2", fill("STC", "XYZ", 151, "12.00", date(2026, 5, 5)))
    assert verify(engine).ok, verify(engine).problems


def test_a_closed_position_reopens_on_its_own_row(engine: sa.Engine, portfolio: str) -> None:
    """A closed position keeps its row at quantity 0; a later unit of work that trades the instrument
    again picks that row up (its mark date too) instead of adding a second one."""
    _open(engine, portfolio)
    record_fill(engine, "t", portfolio, "b1", fill("BTO", "XYZ", 100, "10.00", date(2026, 3, 2)))
    record_fill(engine, "t", portfolio, "s1", fill("STC", "XYZ", 100, "12.00", date(2026, 5, 4)))
    record_fill(engine, "t", portfolio, "b2", fill("BTO", "XYZ", 50, "11.00", date(2026, 4, 1)))
    with engine.connect() as conn:
        rows = conn.execute(sa.select(positions.c.quantity, positions.c.mark_e4, positions.c.marked_on)).all()
    # The older fill does not move the mark: the position is still valued at the 4 May sale price.
    assert [tuple(r) for r in rows] == [(50, 120_000, date(2026, 5, 4))]
    assert _acc(engine)["positions_value_cents"] == 50 * 12 * 100
    assert verify(engine).ok, verify(engine).problems


def test_long_term_lot_and_loss_offsets_gain(engine: sa.Engine, portfolio: str) -> None:
    _open(engine, portfolio)
    record_fills(
        engine,
        "t",
        portfolio,
        [
            ("b1", fill("BTO", "AAA", 100, "100", date(2025, 3, 3))),
            ("b2", fill("BTO", "BBB", 100, "50", date(2026, 2, 2))),
            ("s1", fill("STC", "AAA", 100, "150", date(2026, 3, 4))),  # more than a year: long-term +5,000
            ("s2", fill("STC", "BBB", 100, "30", date(2026, 6, 1))),  # short-term −2,000
        ],
    )
    c1, c2 = _closes(engine)
    assert (c1["term"], c1["gain_cents"]) == ("LONG", 500_000)
    assert (c2["term"], c2["gain_cents"]) == ("SHORT", -200_000)
    with engine.connect() as conn:
        aid = _acc(engine)["id"]
        g = tax_read.realized_gain(conn, _acc(engine)["portfolio_id"], aid, date(2026, 1, 1), date(2026, 12, 31))
        assert (g.short_term, g.long_term, g.total) == (-200_000, 500_000, 300_000)
        s = tax_read.post_tax_surplus(conn, _acc(engine)["portfolio_id"], aid, date(2026, 12, 31))
    # The short-term loss offsets the long-term gain: 3,000 taxed at 15 % = 450.
    assert s.unpaid_tax_on_realized == 45_000
    assert s.surplus == 300_000 - 45_000
    tax.pay_tax(engine, "t", portfolio, "p1", "A1-GEN", 2026, 45_000, date(2027, 4, 15))
    with engine.connect() as conn:
        s2 = tax_read.post_tax_surplus(conn, _acc(engine)["portfolio_id"], aid, date(2026, 12, 31))
        s3 = tax_read.post_tax_surplus(conn, _acc(engine)["portfolio_id"], aid, date(2027, 4, 15))
    # As of the year end the tax was still unpaid (the payment is dated 2027-04-15); once paid, the
    # cash and the liability fall together, so the surplus stays.
    assert (s2.unpaid_tax_on_realized, s2.surplus) == (45_000, 300_000 - 45_000)
    assert (s3.unpaid_tax_on_realized, s3.surplus) == (0, 300_000 - 45_000)
    assert verify(engine).ok, verify(engine).problems


@pytest.mark.parametrize(("sold", "term"), [(date(2025, 2, 28), "SHORT"), (date(2025, 3, 1), "LONG")])
def test_assigned_shares_are_held_from_the_assignment_day_by_the_irs_rule(
    engine: sa.Engine, portfolio: str, sold: date, term: str
) -> None:
    # Assigned 2024-02-28: the period starts 2024-02-29 and a year later is the missing 2025-02-29,
    # so Mar 1 — one day more than "the anniversary" would give.
    _open(engine, portfolio)
    put = "XYZ   240228P00050000"
    record_fills(
        engine,
        "t",
        portfolio,
        [
            ("f1", fill("STO", put, 1, "2.00", date(2024, 2, 22))),
            ("f2", fill("ASSIGN", put, 1, on=date(2024, 2, 28))),
            ("f3", fill("STC", "XYZ", 100, "60", sold)),
        ],
    )
    (c,) = _closes(engine)
    assert (c["term"], c["closed_on"], c["gain_cents"]) == (term, sold, 600_000 - 480_000)


def test_fork_worked_example_post_tax_surplus(engine: sa.Engine, portfolio: str) -> None:
    """§5.1: base 100,000, NAV 175,000, realized short-term 75,000 at 30 % → surplus 52,500."""
    _open(engine, portfolio)
    record_fills(
        engine,
        "t",
        portfolio,
        [
            ("f1", fill("STO", PUT, 10, "75", date(2027, 1, 8))),
            ("f2", fill("EXPIRE", PUT, 10)),
        ],
    )
    with engine.connect() as conn:
        s = tax_read.post_tax_surplus(conn, _acc(engine)["portfolio_id"], _acc(engine)["id"], date(2027, 3, 31))
    assert s == tax_read.PostTaxSurplus(17_500_000, 10_000_000, 2_250_000, 0, 5_250_000)


def test_unrealized_gain_is_taxed_in_the_surplus(engine: sa.Engine, portfolio: str) -> None:
    _open(engine, portfolio)
    record_fill(engine, "t", portfolio, "b1", fill("BTO", "XYZ", 1000, "10", date(2027, 1, 4)))
    from alluse.services.marks import record_marks

    record_marks(engine, "t", portfolio, "m1", {"XYZ": "12.5"}, date(2027, 1, 8))
    with engine.connect() as conn:
        s = tax_read.post_tax_surplus(conn, _acc(engine)["portfolio_id"], _acc(engine)["id"], date(2027, 1, 8))
    assert s.nav == 10_000_000 + 250_000 and s.tax_on_unrealized == 75_000 and s.surplus == 175_000
    assert verify(engine).ok, verify(engine).problems


def test_calls_must_be_covered_and_stay_covered(engine: sa.Engine, portfolio: str) -> None:
    _open(engine, portfolio)
    with pytest.raises(RuleViolation, match="calls must be covered"):
        record_fill(engine, "t", portfolio, "c1", fill("STO", CALL, 1, "1", date(2027, 1, 4)))
    record_fills(
        engine,
        "t",
        portfolio,
        [("b1", fill("BTO", "XYZ", 100, "50", date(2027, 1, 4))), ("c1", fill("STO", CALL, 1, "1", date(2027, 1, 4)))],
    )
    with pytest.raises(RuleViolation, match="uncover"):
        record_fill(engine, "t", portfolio, "s1", fill("STC", "XYZ", 1, "50", date(2027, 1, 5)))
    with pytest.raises(RuleViolation, match="short"):
        record_fill(engine, "t", portfolio, "s2", fill("STO", "XYZ", 1, "50", date(2027, 1, 5)))


def test_refused_batch_leaves_nothing_and_keys_replay(engine: sa.Engine, portfolio: str) -> None:
    _open(engine, portfolio)
    before = _acc(engine)
    with pytest.raises(RuleViolation):
        record_fills(
            engine,
            "t",
            portfolio,
            [
                ("b1", fill("BTO", "XYZ", 10, "5", date(2027, 1, 4))),
                ("s1", fill("STC", "XYZ", 11, "5", date(2027, 1, 4))),
            ],
        )
    assert _acc(engine) == before
    r1 = record_fill(engine, "t", portfolio, "b1", fill("BTO", "XYZ", 10, "5", date(2027, 1, 4)))
    r2 = record_fill(engine, "t", portfolio, "b1", fill("BTO", "XYZ", 10, "5", date(2027, 1, 4)))
    assert r2["replayed"] and r2["fill_id"] == r1["fill_id"]
    with pytest.raises(Conflict):
        record_fill(engine, "t", portfolio, "b1", fill("BTO", "XYZ", 11, "5", date(2027, 1, 4)))


def test_fact_below_buffer_is_recorded_with_an_alert(engine: sa.Engine, portfolio: str) -> None:
    _open(engine, portfolio)  # Gen-Acc: 100,000 cash, buffer 5,000
    r = record_fill(engine, "t", portfolio, "b1", fill("BTO", "XYZ", 980, "100", date(2027, 1, 4)))
    assert r["buffer_breach"] is True
    (al,) = open_alerts(engine, portfolio)
    assert al["kind"] == "BUFFER_BREACH" and al["name"] == "A1-GEN"
    record_fill(engine, "t", portfolio, "s1", fill("STC", "XYZ", 500, "100", date(2027, 1, 5)))
    assert open_alerts(engine, portfolio) == []


def test_a_breach_alert_shows_the_current_figures_and_closes_when_cash_returns(
    engine: sa.Engine, portfolio: str
) -> None:
    _open(engine, portfolio)  # Gen-Acc: 100,000 cash, buffer 5,000
    record_fill(engine, "t", portfolio, "b1", fill("BTO", "XYZ", 980, "100", date(2027, 1, 4)))
    (first,) = open_alerts(engine, portfolio)
    assert "cash $2,000.00 is below its cash buffer $5,000.00" in first["message"]
    fee = Fill("A1-GEN", FillAction.FEE, None, amount_cents=50_000, trade_date=date(2027, 1, 5))
    record_fill(engine, "t", portfolio, "fee", fee)
    (now,) = open_alerts(engine, portfolio)
    assert now["id"] == first["id"]  # the same breach, restated with today's figures
    assert "cash $1,500.00 is below its cash buffer $4,975.00" in now["message"]
    cash.move_cash(engine, "t", portfolio, [("top-up", cash.deposit("A1-GEN", 300_000))])
    (now,) = open_alerts(engine, portfolio)  # still short: $4,500.00 against $5,125.00
    assert "cash $4,500.00 is below its cash buffer $5,125.00 after a cash move" in now["message"]
    cash.move_cash(engine, "t", portfolio, [("top-up-2", cash.deposit("A1-GEN", 100_000))])
    assert open_alerts(engine, portfolio) == []  # $5,500.00 against $5,175.00: the breach is over


def test_dividend_and_fee(engine: sa.Engine, portfolio: str) -> None:
    _open(engine, portfolio)
    record_fills(
        engine,
        "t",
        portfolio,
        [
            ("d1", fill("DIVIDEND", "XYZ", amount_cents=12_345, on=date(2027, 2, 1))),
            ("x1", fill("FEE", None, amount_cents=1_000, on=date(2027, 2, 1))),
        ],
    )
    assert _acc(engine)["cash_cents"] == 10_000_000 + 12_345 - 1_000
    with engine.connect() as conn:
        g = tax_read.realized_gain(
            conn, _acc(engine)["portfolio_id"], _acc(engine)["id"], date(2027, 1, 1), date(2027, 3, 31)
        )
    assert g.dividends == 12_345 and g.total == 0
    assert verify(engine).ok, verify(engine).problems


def test_lots_move_in_kind_keeping_date_and_basis(engine: sa.Engine, portfolio: str) -> None:
    """What the lifecycle's merge calls: positions move, open date and basis stay, nothing is realized."""
    from alluse.services.trades import move_lots_in_kind
    from alluse.store.repo import resolve_account
    from alluse.store.uow import Request, write

    _open(engine, portfolio)
    record_fills(
        engine,
        "t",
        portfolio,
        [
            ("b1", fill("BTO", "XYZ", 100, "40", date(2025, 6, 2))),
            ("p1", fill("STO", PUT, 1, "2", date(2027, 1, 7))),
        ],
    )
    gen, com = _acc(engine), _acc(engine, "A1-COM")

    def apply(tx, reqs):  # type: ignore[no-untyped-def]
        src = resolve_account(tx.conn, tx.portfolio_id, "A1-GEN")
        dst = resolve_account(tx.conn, tx.portfolio_id, "A1-COM")
        return [move_lots_in_kind(tx, src, dst, date(2027, 1, 8), tx.seq(0))]

    (r,) = write(engine, portfolio, "t", "test.merge", [Request("m1", {})], apply)
    assert r == {"instruments": 2, "lots": 2}
    gen2, com2 = _acc(engine), _acc(engine, "A1-COM")
    assert (gen2["positions_value_cents"], gen2["collateral_cents"]) == (0, 0)
    assert com2["positions_value_cents"] == com["positions_value_cents"] + gen["positions_value_cents"]
    assert com2["collateral_cents"] == 500_000
    assert _closes(engine) == []  # nothing realized by the move
    record_fill(
        engine, "t", portfolio, "s1", Fill("A1-COM", FillAction.STC, "XYZ", 100, "45", trade_date=date(2027, 1, 11))
    )
    (c,) = _closes(engine)
    assert (c["term"], c["open_cash_cents"], c["gain_cents"]) == ("LONG", -400_000, 50_000)
    assert verify(engine).ok, verify(engine).problems


def test_verify_catches_tampered_caches(engine: sa.Engine, portfolio: str) -> None:
    _open(engine, portfolio)
    record_fills(
        engine,
        "t",
        portfolio,
        [("b1", fill("BTO", "XYZ", 100, "10", date(2027, 1, 4))), ("p1", fill("STO", PUT, 1, "1", date(2027, 1, 7)))],
    )
    assert verify(engine).ok
    with engine.begin() as conn:
        conn.execute(accounts.update().where(accounts.c.name == "A1-GEN").values(collateral_cents=0))
        conn.execute(lots.update().where(lots.c.side == "LONG").values(remaining=99))
        conn.execute(positions.update().where(positions.c.quantity == 100).values(quantity=50))
    problems = " | ".join(verify(engine).problems)
    assert "open short puts need 500000" in problems
    assert "caches 99 open" in problems and "closings leave 100" in problems
    assert "is 50, its lots hold 100" in problems


def test_marks_from_files_and_a_market_move_breach(engine: sa.Engine, portfolio: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from alluse.domain.errors import InvalidInput
    from alluse.services.marks import parse_marks_file, record_marks

    _open(engine, portfolio)  # Gen-Acc 100,000
    record_fill(engine, "t", portfolio, "b1", fill("BTO", "XYZ", 900, "100", date(2027, 1, 4)))  # cash 10,000
    assert open_alerts(engine, portfolio) == []
    j = tmp_path / "m.json"
    j.write_text('{"XYZ": 150.25}')
    c = tmp_path / "m.csv"
    c.write_text("symbol,price\nXYZ,90.5\n")
    assert parse_marks_file(j) == {"XYZ": "150.25"} and parse_marks_file(c) == {"XYZ": "90.5"}
    # At 150.25 NAV is 145,225 and its 5 % buffer 7,261.25 is under the 10,000 cash; at 250 the buffer
    # is 11,750: a market move, not an intent, so an alert; at 90.50 the buffer is 4,572.50 again.
    r = record_marks(engine, "t", portfolio, "m1", parse_marks_file(j), date(2027, 1, 5))
    assert r["buffer_breach"] == [] and _acc(engine)["positions_value_cents"] == 13_522_500
    r = record_marks(engine, "t", portfolio, "m2", {"XYZ": "250"}, date(2027, 1, 6))
    assert r["buffer_breach"] == ["A1-GEN"] and open_alerts(engine, portfolio)[0]["kind"] == "BUFFER_BREACH"
    record_marks(engine, "t", portfolio, "m3", parse_marks_file(c), date(2027, 1, 7))
    assert open_alerts(engine, portfolio) == [] and _acc(engine)["positions_value_cents"] == 8_145_000
    bad = tmp_path / "bad.csv"
    bad.write_text("XYZ,1,2\n")
    with pytest.raises(InvalidInput, match="line 1"):
        parse_marks_file(bad)
    assert verify(engine).ok, verify(engine).problems


def test_pre_and_post_tax_pnl_by_period(engine: sa.Engine, portfolio: str) -> None:
    _open(engine, portfolio)
    record_fills(
        engine,
        "t",
        portfolio,
        [
            ("b1", fill("BTO", "AAA", 100, "100", date(2025, 3, 3))),
            ("b2", fill("BTO", "BBB", 100, "50", date(2026, 2, 2))),
            ("s1", fill("STC", "AAA", 100, "150", date(2026, 3, 4))),  # Q1: long-term +5,000
            ("s2", fill("STC", "BBB", 100, "30", date(2026, 6, 1))),  # Q2: short-term −2,000
            ("x1", fill("FEE", None, amount_cents=2_500, on=date(2026, 6, 2))),
        ],
    )
    with engine.connect() as conn:
        aid = _acc(engine)["id"]
        q1 = tax_read.period_pnl(conn, _acc(engine)["portfolio_id"], aid, date(2026, 1, 1), date(2026, 3, 31))
        q2 = tax_read.period_pnl(conn, _acc(engine)["portfolio_id"], aid, date(2026, 4, 1), date(2026, 6, 30))
        year = tax_read.period_pnl(conn, _acc(engine)["portfolio_id"], aid, date(2026, 1, 1), date(2026, 12, 31))
    assert (q1.pre_tax, q1.estimated_tax, q1.post_tax) == (500_000, 75_000, 425_000)
    # The loss lowers the year's estimate from 750 to 450: the quarter's share is −300.
    assert (q2.realized, q2.fees, q2.pre_tax, q2.estimated_tax) == (-200_000, 2_500, -202_500, -30_000)
    assert year.estimated_tax == q1.estimated_tax + q2.estimated_tax == 45_000
    assert year.post_tax == 300_000 - 2_500 - 45_000


def test_a_long_import_flushed_in_slices_books_the_same(
    engine: sa.Engine, portfolio: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alluse.services import trades

    monkeypatch.setattr(trades, "FLUSH_EVERY", 2)
    _open(engine, portfolio)
    results = record_fills(
        engine,
        "t",
        portfolio,
        [
            ("1", fill("STO", PUT, 1, "2.00", date(2027, 1, 7))),
            ("2", fill("ASSIGN", PUT, 1, on=date(2027, 1, 15))),  # slice boundary: shares opened here
            ("3", fill("STO", CALL, 1, "1.50", date(2027, 1, 21))),
            ("4", fill("BTO", "XYZ", 50, "49", date(2027, 1, 22))),
            ("5", fill("ASSIGN", CALL, 1, on=date(2027, 2, 19))),  # closes the lot opened two slices ago
            ("6", fill("STC", "XYZ", 20, "51", date(2027, 2, 22))),
            ("7", fill("FEE", None, amount_cents=1_000, on=date(2027, 2, 22))),
        ],
    )
    assert [r["realized_cents"] for r in results] == [0, 0, 0, 0, 85_000, 4_000, 0]
    with engine.connect() as conn:
        assert conn.execute(sa.select(lots.c.remaining).order_by(lots.c.id)).scalars().all() == [0, 0, 0, 30]
    assert _acc(engine)["positions_value_cents"] == 30 * 5_100
    assert verify(engine).ok, verify(engine).problems


def test_premium_equal_to_commission_still_balances(engine: sa.Engine, portfolio: str) -> None:
    """The account's own leg is zero; the market and fee legs still move the external accounts."""
    _open(engine, portfolio)
    r = record_fill(engine, "t", portfolio, "f1", fill("STO", PUT, 1, "0.01", date(2027, 1, 7), commission_cents=100))
    assert r["cash_cents"] == 0
    assert verify(engine).ok, verify(engine).problems
