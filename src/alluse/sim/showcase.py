"""The demo portfolio after some trading, for the dashboard's screenshots and browser tests.

On top of `services.demo.build_demo` it records real broker facts and runs the real lifecycle, so
every page has something to show: option and share lots with marks, a dividend, week types, two
Gen-Acc forks (one of which grows and merges back), a fork of a fork, and a buffer-breach alert.
Every fact is dated `day` (default today): the demo's deposits are recorded today too, and a trade
dated before its account was funded would draw a history that never happened.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

from sqlalchemy.engine import Engine

from alluse.services import brokers, lifecycle, weeks
from alluse.services.demo import P, build_demo
from alluse.services.marks import record_marks
from alluse.services.trades import Fill, FillAction, record_fills
from alluse.sim.trading import realize


def _occ(root: str, expiry: date, pc: str, strike: int) -> str:
    return f"{root:<6}{expiry:%y%m%d}{pc}{strike * 1000:08d}"


def build_showcase(engine: Engine, actor: str, day: date | None = None) -> Iterator[str]:
    day = day or date.today()
    yield from build_demo(engine, actor)
    friday = day + timedelta(days=(4 - day.weekday()) % 7)
    leaps = date(day.year + 2, 1, 15)
    spy_put, qqq_put = _occ("SPY", friday, "P", 560), _occ("QQQ", friday, "P", 480)
    vti_call, leaps_call = _occ("VTI", friday, "C", 290), _occ("SPY", leaps, "C", 550)
    facts = [
        ("show:f1", Fill("A1-GEN", FillAction.STO, spy_put, 2, "6.40", 130, day)),
        ("show:f2", Fill("A2-REV", FillAction.STO, qqq_put, 1, "4.15", 65, day)),
        ("show:f3", Fill("A1-COM", FillAction.BTO, "VTI", 120, "281.50", 100, day)),
        ("show:f4", Fill("A1-COM", FillAction.STO, vti_call, 1, "2.10", 65, day)),
        ("show:f5", Fill("A3-COM", FillAction.BTO, leaps_call, 2, "95.20", 130, day)),
        ("show:f6", Fill("A3-COM", FillAction.BTO, "SCHD", 400, "27.80", 100, day)),
        ("show:f7", Fill("A1-COM", FillAction.DIVIDEND, "VTI", amount_cents=11_832, trade_date=day)),
        # Shares bought with nearly all of A2-COM's cash: a fact, so it is recorded, below the buffer.
        ("show:f8", Fill("A2-COM", FillAction.BTO, "IWM", 150, "224.00", 100, day)),
    ]
    record_fills(engine, actor, P, facts)
    yield "sold puts on SPY and QQQ, a covered VTI call, bought VTI, SCHD, IWM and SPY LEAPS; a VTI dividend"
    record_marks(
        engine,
        actor,
        P,
        "show:marks",
        {"VTI": "284.10", "SCHD": "27.55", "IWM": "226.30", spy_put: "4.90", qqq_put: "4.60", vti_call: "1.35",
         leaps_call: "99.80"},  # fmt: skip
        day,
    )
    yield "marked the positions"
    monday = day - timedelta(days=day.weekday())
    for n, (pred, conf) in enumerate([("GREEN", "GREEN"), ("CHOP", "RED"), ("GREEN", "GREEN"), ("RED", "RED")]):
        week = monday - timedelta(weeks=4 - n)
        weeks.set_week(engine, actor, P, f"show:w{n}p", "predict", pred, week)
        weeks.set_week(engine, actor, P, f"show:w{n}c", "confirm", conf, week)
    weeks.set_week(engine, actor, P, "show:w4p", "predict", "GREEN", monday)
    yield "predicted and confirmed four weeks' types; predicted this week's"

    brokers.register(engine, actor, P, [f"IBKR:U10000{n:02d}" for n in range(10, 16)], "show:pool")
    yield "registered six more IBKR accounts: each fork takes two from the pool"
    realize(engine, actor, P, [("show:g1", "A1-GEN", 7_500_000, day), ("show:g3", "A3-GEN", 9_000_000, day)])
    lifecycle.run(engine, actor, P, day)
    yield "A1-GEN and A3-GEN each realized enough to fork: the lifecycle forked A1F1 and A3F1"
    realize(engine, actor, P, [("show:g4", "A1F1-GEN", 45_000_000, day), ("show:g5", "A3F1-GEN", 8_000_000, day)])
    lifecycle.run(engine, actor, P, day)
    yield "A1F1 grew past the merge threshold and merged into A1-COM; A3F1-GEN forked A3F1F1"
