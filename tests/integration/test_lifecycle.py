"""The lifecycle engine end to end on SQLite and PostgreSQL: §5's worked examples through the real
units of work, exactly once, with verify agreeing with the journal after every run."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

import pytest
import sqlalchemy as sa

from alluse.domain.lifecycle import LifecycleConfig, Rule
from alluse.services import brokers, groups, lifecycle
from alluse.services import earmarks as earmarks_service
from alluse.services.alerts import open_alerts
from alluse.services.trades import Fill, FillAction, record_fill, record_fills
from alluse.services.verify import verify
from alluse.sim.trading import realize
from alluse.store.schema import accounts, audit_log, earmarks, events, lifecycle_actions, lots, postings
from alluse.views import lifecycle as lifecycle_view
from alluse.views.accounts import account_tree
from alluse.views.brokers import list_brokerage

ON = date(2026, 11, 13)  # the day simulated gains are realized (Q4 2026)
DAY = date(2026, 11, 20)
QUARTER_END = date(2026, 12, 31)


_ALERTS = events.c.kind.like("alert.%")


def _accounts(engine: sa.Engine, portfolio: str) -> dict[str, dict]:
    return {a["name"]: a for g in account_tree(engine, portfolio)["groups"] for a in g["accounts"]}


def _count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def _earmarked(engine: sa.Engine, name: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(accounts.c.earmarked_cents).where(accounts.c.name == name)).scalar_one()


def _zero_sum(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.coalesce(sa.func.sum(postings.c.amount_cents), 0))).scalar_one() == 0
    report = verify(engine)
    assert report.ok, report.problems


def _open_a1(engine: sa.Engine, portfolio: str, brokerage: list[str] | None = None) -> None:
    groups.open_group(engine, "t", portfolio, "open-a1", groups.group_opening(25_000_000, brokerage))


def test_gen_fork_worked_example_end_to_end(engine: sa.Engine, portfolio: str) -> None:
    _open_a1(engine, portfolio)
    realize(engine, "t", portfolio, [("gain", "A1-GEN", 7_500_000, ON)])
    preview = lifecycle.plan(engine, portfolio, DAY)
    assert [(p["rule"], p["outcome"], p["amount_cents"]) for p in preview] == [("GEN_FORK", "APPLY", 5_250_000)]
    assert _count(engine, lifecycle_actions) == 0  # the plan changed nothing

    report = lifecycle.run(engine, "t", portfolio, DAY)
    assert report.count(Rule.GEN_FORK) == 1 and len(report.applied) == 1
    acc = _accounts(engine, portfolio)
    assert acc["A1-GEN"]["cash_cents"] == 12_250_000 and acc["A1-GEN"]["base_capital_cents"] == 10_000_000
    assert (acc["A1F1-GEN"]["cash_cents"], acc["A1F1-COM"]["cash_cents"]) == (2_625_000, 2_625_000)
    assert (acc["A1F1-GEN"]["cash_buffer_cents"], acc["A1F1-COM"]["cash_buffer_cents"]) == (131_250, 131_250)
    assert acc["A1F1-GEN"]["base_capital_cents"] == 2_625_000
    assert all(acc[n]["brokerage_account"].startswith("PAPER:") for n in ("A1F1-GEN", "A1F1-COM"))
    tree = lifecycle_view.family_tree(engine, portfolio)
    assert tree[0]["name"] == "A1" and tree[0]["children"][0]["name"] == "A1F1"
    assert tree[0]["children"][0]["kind"] == "FORK" and tree[0]["children"][0]["forked_from"] == "A1-GEN"
    _zero_sum(engine)

    # The parent kept its tax reserve: its surplus is now zero, so nothing forks again, on any day.
    audit_before = _count(engine, audit_log)
    assert lifecycle.run(engine, "t", portfolio, DAY).applied == []
    assert lifecycle.run(engine, "t", portfolio, date(2026, 11, 21)).applied == []
    assert _count(engine, audit_log) == audit_before
    with engine.connect() as conn:
        kinds = conn.execute(sa.select(events.c.kind).where(events.c.kind.like("lifecycle.%"))).scalars().all()
        alerts = conn.execute(sa.select(events.c.kind).where(events.c.kind.like("alert.%"))).scalars().all()
    assert kinds == ["lifecycle.gen_fork"] and alerts == ["alert.fork_ready"]


def test_rev_fork_and_quarterly_reinvestment(engine: sa.Engine, portfolio: str) -> None:
    _open_a1(engine, portfolio)
    realize(engine, "t", portfolio, [("rev", "A1-REV", 4_000_000, ON), ("com", "A1-COM", 100_000, ON)])
    report = lifecycle.run(engine, "t", portfolio, DAY)
    assert report.applied == []  # not a quarter end
    planned = [p["subject"] for p in lifecycle.plan(engine, portfolio, QUARTER_END) if p["rule"] == "REINVEST"]
    assert sorted(planned) == ["Com-Acc A1-COM", "Rev-Acc A1-REV"]
    report = lifecycle.run(engine, "t", portfolio, QUARTER_END)
    assert sorted(a["account"] for a in report.applied) == ["Com-Acc A1-COM", "Rev-Acc A1-REV"]
    # The plan shows what a run would do: nothing more for this quarter.
    assert [p for p in lifecycle.plan(engine, portfolio, QUARTER_END) if p["rule"] == "REINVEST"] == []
    rev = next(a for a in report.applied if a["account"] == "Rev-Acc A1-REV")
    assert rev["earmarks"] == {"TAX_RESERVE": 1_200_000, "CONTRACTS": 2_100_000, "LEAPS": 700_000}
    acc = _accounts(engine, portfolio)
    assert acc["A1-REV"]["cash_cents"] == 11_500_000  # earmarks hold cash, they do not move it
    assert acc["A1-REV"]["deployable_cents"] == 11_500_000 - 575_000 - 4_000_000
    # Replaying the quarter changes nothing; the next quarter without new gains does nothing.
    assert lifecycle.run(engine, "t", portfolio, QUARTER_END).applied == []
    assert lifecycle.run(engine, "t", portfolio, date(2027, 3, 31)).applied == []
    # The next quarter's gain is reinvested on its own. Its simulated sale of a put is a new contract:
    # it executes $100 (its collateral) of the CONTRACTS earmark.
    (sim,) = [r for r in realize(engine, "t", portfolio, [("rev2", "A1-REV", 1_000_000, date(2027, 2, 12))])
              if r["action"] == "STO"]  # fmt: skip
    assert sim["earmark_drawn_cents"] == 10_000
    (again,) = lifecycle.run(engine, "t", portfolio, date(2027, 3, 31)).applied
    assert again["earmarks"] == {"TAX_RESERVE": 300_000, "CONTRACTS": 525_000, "LEAPS": 175_000}

    # Planned versus executed: buying a LEAPS call (21 months to run) draws the LEAPS earmark down by
    # its cost, inside the fill's own unit of work.
    leaps_call = Fill("A1-REV", FillAction.BTO, "XYZ   281215C00050000", 1, "50.00", trade_date=date(2027, 4, 1))
    assert record_fill(engine, "t", portfolio, "buy-leaps", leaps_call)["earmark_drawn_cents"] == 500_000
    rows = {(r["account"], r["purpose"]): r for r in earmarks_service.earmark_report(engine, portfolio)}
    leaps = rows[("Rev-Acc A1-REV", "LEAPS")]
    assert (leaps["planned_cents"], leaps["executed_cents"], leaps["open_cents"]) == (875_000, 500_000, 375_000)
    contracts = rows[("Rev-Acc A1-REV", "CONTRACTS")]
    assert (contracts["planned_cents"], contracts["executed_cents"]) == (2_625_000, 10_000)
    assert _earmarked(engine, "A1-REV") == 5_000_000 - 500_000 - 10_000
    _zero_sum(engine)
    # Two more LEAPS bought in one import: the first draws $3,000 of the $3,750 still open, the
    # second only what the first left.
    more = [(f"leaps-{i}", replace(leaps_call, price="30.00")) for i in (1, 2)]
    assert [r.get("earmark_drawn_cents") for r in record_fills(engine, "t", portfolio, more)] == [300_000, 75_000]
    assert _earmarked(engine, "A1-REV") == 5_000_000 - 500_000 - 10_000 - 375_000

    # Rev-Acc fork: lower the thresholds (configuration) so the $1,000,000 account can show it.
    cfg = LifecycleConfig(rev_fork_threshold=300_000, rev_fork_amount=300_000)
    report = lifecycle.run(engine, "t", portfolio, date(2027, 4, 1), cfg)
    (fork,) = report.applied
    assert fork["rule"] == "REV_FORK" and fork["group"] == "A1R1" and fork["amount_cents"] == 300_000
    acc = _accounts(engine, portfolio)
    assert [acc[f"A1R1-{k}"]["cash_cents"] for k in ("GEN", "REV", "COM")] == [120_000, 90_000, 90_000]
    assert acc["A1-REV"]["base_capital_cents"] == 7_500_000
    _zero_sum(engine)


def test_merge_moves_cash_and_earmarks_and_returns_brokerage(engine: sa.Engine, portfolio: str) -> None:
    _open_a1(engine, portfolio)
    realize(engine, "t", portfolio, [("g", "A1-GEN", 7_500_000, ON)])
    lifecycle.run(engine, "t", portfolio, DAY)
    realize(engine, "t", portfolio, [("c", "A1F1-COM", 1_000_000, date(2026, 12, 4))])
    lifecycle.run(engine, "t", portfolio, QUARTER_END)  # earmarks on A1F1-COM
    assert _earmarked(engine, "A1F1-COM") == 1_000_000
    # Group NAV: Gen $26,250 + $437,500 and Com $26,250 + $10,000 = $500,000.00, the threshold.
    realize(engine, "t", portfolio, [("big", "A1F1-GEN", 43_750_000, date(2027, 1, 4))])
    # As of the day before that gain the group is far below the threshold: a later fact never merges it.
    assert [p["rule"] for p in lifecycle.plan(engine, portfolio, date(2027, 1, 3))] == []
    assert lifecycle.run(engine, "t", portfolio, date(2027, 1, 3)).applied == []
    preview = lifecycle.plan(engine, portfolio, date(2027, 1, 5))
    # The fork's Gen-Acc could fork its growth, but the group merges first (and its sleeves with it).
    assert [(p["rule"], p["outcome"], p["amount_cents"]) for p in preview] == [("MERGE", "APPLY", 50_000_000)]
    report = lifecycle.run(engine, "t", portfolio, date(2027, 1, 5))
    assert [a["rule"] for a in report.applied] == ["MERGE"]
    acc = _accounts(engine, portfolio)
    merged = [n for n in ("A1F1-GEN", "A1F1-COM") if acc[n]["status"] == "MERGED"]
    assert merged == ["A1F1-GEN", "A1F1-COM"]
    assert acc["A1F1-GEN"]["cash_cents"] == acc["A1F1-COM"]["cash_cents"] == 0
    assert acc["A1F1-GEN"]["brokerage_account"] is None
    com = acc["A1-COM"]
    assert _earmarked(engine, "A1-COM") == 1_000_000  # the fork's open earmarks followed its money
    merge = next(a for a in report.applied if a["rule"] == "MERGE")
    assert merge["amount_cents"] == 50_000_000 and com["cash_cents"] == 7_500_000 + 50_000_000
    assert com["base_capital_cents"] == 7_500_000 + 50_000_000  # a merge is capital arriving
    pool = [b for b in list_brokerage(engine, portfolio) if b["status"] == "POOL"]
    assert len(pool) == 2  # both paper accounts are back in the pool
    tree = lifecycle_view.family_tree(engine, portfolio)
    assert tree[0]["children"][0]["status"] == "MERGED" and tree[0]["children"][0]["merged_into"] == "Com-Acc A1-COM"
    _zero_sum(engine)
    assert lifecycle.run(engine, "t", portfolio, date(2027, 1, 5)).applied == []


def test_fork_waits_for_the_pool_then_uses_it(engine: sa.Engine, portfolio: str) -> None:
    _open_a1(engine, portfolio, ["IBKR:U1", "IBKR:U2", "IBKR:U3"])
    brokers.register(engine, "t", portfolio, ["IBKR:U4"], "pool-1")
    realize(engine, "t", portfolio, [("g", "A1-GEN", 7_500_000, ON)])
    report = lifecycle.run(engine, "t", portfolio, DAY)
    assert report.applied == [] and len(report.waiting) == 1
    assert "pool is short" in report.waiting[0]["reason"]
    with engine.connect() as conn:
        (alert,) = conn.execute(sa.select(events.c.kind, events.c.payload).where(_ALERTS)).all()
    assert alert.kind == "alert.fork_waiting" and "has 1" in json.loads(alert.payload)["message"]
    lifecycle.run(engine, "t", portfolio, DAY)
    with engine.connect() as conn:  # one alert while it stays open
        assert conn.execute(sa.select(sa.func.count()).select_from(events).where(_ALERTS)).scalar_one() == 1
    (open_alert,) = open_alerts(engine, portfolio)
    assert open_alert["kind"] == "FORK_WAITING" and "pool is short" in open_alert["message"]

    brokers.register(engine, "t", portfolio, ["IBKR:U5"], "pool-2")
    (fork,) = lifecycle.run(engine, "t", portfolio, DAY).applied
    acc = _accounts(engine, portfolio)
    assert (acc["A1F1-GEN"]["brokerage_account"], acc["A1F1-COM"]["brokerage_account"]) == ("IBKR:U4", "IBKR:U5")
    assert fork["amount_cents"] == 5_250_000
    _zero_sum(engine)


def test_forks_of_one_run_share_the_pool_in_registration_order(engine: sa.Engine, portfolio: str) -> None:
    # Two families fork in one unit of work from the same broker's pool: each takes the oldest
    # registrations not yet promised to the one before it, and each names its group after its parent.
    groups.open_group(
        engine, "t", portfolio, "open-a1", groups.group_opening(25_000_000, ["IBKR:U1", "IBKR:U2", "IBKR:U3"])
    )
    groups.open_group(
        engine, "t", portfolio, "open-a2", groups.group_opening(25_000_000, ["IBKR:U4", "IBKR:U5", "IBKR:U6"])
    )
    brokers.register(engine, "t", portfolio, ["IBKR:P4", "IBKR:P3", "IBKR:P2", "IBKR:P1", "IBKR:P0"], "pool")
    realize(engine, "t", portfolio, [("g1", "A1-GEN", 7_500_000, ON), ("g2", "A2-GEN", 7_500_000, ON)])
    report = lifecycle.run(engine, "t", portfolio, DAY)
    assert [(a["account"], a["group"]) for a in report.applied] == [
        ("Gen-Acc A1-GEN", "A1F1"),
        ("Gen-Acc A2-GEN", "A2F1"),
    ]
    acc = _accounts(engine, portfolio)
    taken = [acc[n]["brokerage_account"] for n in ("A1F1-GEN", "A1F1-COM", "A2F1-GEN", "A2F1-COM")]
    assert taken == ["IBKR:P4", "IBKR:P3", "IBKR:P2", "IBKR:P1"]
    assert [b["brokerage_account"] for b in list_brokerage(engine, portfolio) if b["status"] == "POOL"] == ["IBKR:P0"]
    _zero_sum(engine)


def test_a_fork_takes_the_first_free_child_name(engine: sa.Engine, portfolio: str) -> None:
    # Names a person gave that look like A1's children count as taken: A1's next fork is the first
    # free one, A1F6, not A1F1 nor A1F8.
    _open_a1(engine, portfolio)
    for name in ("A1F1", "A1F2", "A1F3", "A1F4", "A1F5", "A1F7"):
        groups.open_group(engine, "t", portfolio, f"open-{name}", groups.group_opening(3_000_000, name=name))
    realize(engine, "t", portfolio, [("g", "A1-GEN", 7_500_000, ON)])
    (fork,) = lifecycle.run(engine, "t", portfolio, DAY).applied
    assert fork["group"] == "A1F6"
    _zero_sum(engine)


def test_fork_waits_while_surplus_sits_in_positions(engine: sa.Engine, portfolio: str) -> None:
    _open_a1(engine, portfolio)
    realize(engine, "t", portfolio, [("g", "A1-GEN", 7_500_000, ON)])
    with engine.begin() as conn:  # the surplus is in positions: marked value, little cash
        conn.execute(sa.text("UPDATE accounts SET cash_cents = cash_cents - 14500000, "
                             "positions_value_cents = 14500000 WHERE name = 'A1-GEN'"))  # fmt: skip
    (row,) = lifecycle.plan(engine, portfolio, DAY)
    assert row["outcome"] == "WAIT" and "sits in open positions" in row["reason"]
    report = lifecycle.run(engine, "t", portfolio, DAY)
    assert report.applied == [] and report.waiting[0]["kind"] == "alert.fork_waiting"


def test_buffer_breach_raises_an_alert(engine: sa.Engine, portfolio: str) -> None:
    _open_a1(engine, portfolio)
    with engine.begin() as conn:  # most of the cash went into positions: $3,000 cash against a $5,000 buffer
        conn.execute(sa.text("UPDATE accounts SET cash_cents = 300000, positions_value_cents = 9700000 "
                             "WHERE name = 'A1-GEN'"))  # fmt: skip
    rows = lifecycle.plan(engine, portfolio, DAY)
    assert [(r["rule"], r["subject"]) for r in rows] == [("BUFFER", "Gen-Acc A1-GEN")]
    lifecycle.run(engine, "t", portfolio, DAY)
    with engine.connect() as conn:
        kinds = conn.execute(sa.select(events.c.kind).where(_ALERTS)).scalars().all()
    assert kinds == ["alert.buffer_breach"]
    assert [a["kind"] for a in open_alerts(engine, portfolio)] == ["BUFFER_BREACH"]


def test_history_lists_every_applied_action(engine: sa.Engine, portfolio: str) -> None:
    _open_a1(engine, portfolio)
    realize(engine, "t", portfolio, [("g", "A1-GEN", 7_500_000, ON), ("r", "A1-REV", 4_000_000, ON)])
    lifecycle.run(engine, "t", portfolio, QUARTER_END)
    hist = lifecycle_view.history(engine, portfolio)
    assert [(h["rule"], h["account"], h["amount_cents"]) for h in hist] == [
        ("REINVEST", "Rev-Acc A1-REV", 2_800_000),
        ("GEN_FORK", "Gen-Acc A1-GEN", 5_250_000),
    ]
    assert hist[0]["period"] == "2026Q4" and hist[1]["group"] == "A1F1"
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.sum(earmarks.c.amount_cents))).scalar_one() == 4_000_000


@pytest.mark.parametrize("as_of", [DAY])
def test_refused_run_leaves_nothing(engine: sa.Engine, portfolio: str, as_of: date) -> None:
    from alluse.domain.errors import NotFound

    with pytest.raises(NotFound):
        lifecycle.run(engine, "t", "nope", as_of)
    assert _count(engine, lifecycle_actions) == 0


def test_merge_moves_lots_and_positions_in_kind(engine: sa.Engine, portfolio: str) -> None:
    _open_a1(engine, portfolio)
    realize(engine, "t", portfolio, [("g", "A1-GEN", 7_500_000, ON)])
    lifecycle.run(engine, "t", portfolio, DAY)
    put, shares = "XYZ   270115P00050000", "XYZ"
    record_fill(
        engine, "t", portfolio, "sto", Fill("A1F1-GEN", FillAction.STO, put, 1, "1.25", trade_date=date(2026, 12, 1))
    )
    record_fill(
        engine,
        "t",
        portfolio,
        "bto",
        Fill("A1F1-COM", FillAction.BTO, shares, 10, "40.00", trade_date=date(2026, 12, 2)),
    )
    with engine.connect() as conn:
        before = {r.id: r for r in conn.execute(sa.select(lots))}
    # Gen $26,250 + $125 premium − $125 (the put marked at its sale price) + $447,500; Com $26,250: $500,000.
    realize(engine, "t", portfolio, [("big", "A1F1-GEN", 44_750_000, date(2027, 1, 4))])
    report = lifecycle.run(engine, "t", portfolio, date(2027, 1, 5))
    assert [a["rule"] for a in report.applied] == ["MERGE"]
    com = _accounts(engine, portfolio)["A1-COM"]
    with engine.connect() as conn:
        after = {r.id: r for r in conn.execute(sa.select(lots))}
        coll, pv = conn.execute(
            sa.select(accounts.c.collateral_cents, accounts.c.positions_value_cents).where(accounts.c.name == "A1-COM")
        ).one()
        gone = conn.execute(
            sa.select(accounts.c.positions_value_cents, accounts.c.collateral_cents).where(
                accounts.c.status == "MERGED"
            )
        ).all()
    open_before = {k: v for k, v in before.items() if v.remaining > 0 and v.instrument_id is not None}
    for lot_id, lot in open_before.items():
        moved = after[lot_id]
        assert moved.account_id == com["account_id"]
        assert (moved.opened_on, moved.quantity, moved.open_cash_cents, moved.remaining) == (
            lot.opened_on, lot.quantity, lot.open_cash_cents, lot.remaining)  # fmt: skip
    assert len(open_before) == 2
    assert coll == 500_000  # the short put's $5,000 collateral came along
    assert pv == 40_000 - 12_500  # 10 shares at $40, less the short put at $1.25
    assert gone == [(0, 0), (0, 0)]
    _zero_sum(engine)
