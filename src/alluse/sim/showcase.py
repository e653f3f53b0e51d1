"""The demo portfolio after sixteen weeks of trading, for the dashboard's screenshots and browser tests.

It starts with `services.demo.build_demo` sixteen weeks ago and plays the weeks forward through the
real use cases: Rev-Accs sell puts on Mondays and Gen-Accs on Thursdays, most expire worthless on
Friday and a few are bought back at a loss; Com-Accs buy shares and LEAPS and are marked weekly; each
week's type is predicted and confirmed; windfall gains (`sim.trading.realize`) make A1-GEN and A3-GEN
fork, the A1 fork grows until it merges back, the A3 fork forks again; the quarter-end run plans
reinvestment; the last purchase leaves A2-COM below its cash buffer (an alert).

The record's clock is set to each simulated moment (`_clock`), because a write is stamped with the
time it is recorded: a trade dated before its account was funded would draw a history that never
happened. Everything else is the product's own code.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from unittest import mock

from sqlalchemy.engine import Engine

from alluse.services import brokers, lifecycle, weeks
from alluse.services.demo import P, build_demo
from alluse.services.marks import record_marks
from alluse.services.trades import Fill, FillAction, record_fills
from alluse.sim.trading import realize
from alluse.store import uow

WEEKS = 16
# (account, underlying, strike, contracts, premium per share) sold each week; the Rev-Accs on Monday
# for Friday, the Gen-Accs on Thursday for Friday.
REV_PUTS = [("A1-REV", "XLF", 46, 10, "0.52"), ("A2-REV", "IWM", 205, 1, "2.35"), ("A3-REV", "SPY", 560, 1, "4.60")]
GEN_PUTS = [("A1-GEN", "SPY", 565, 1, "8.90"), ("A2-GEN", "IWM", 210, 1, "3.30"), ("A3-GEN", "QQQ", 480, 2, "7.40")]
LOSS_WEEKS = {5: "A1-GEN", 11: "A3-GEN"}  # the put is bought back at three times its premium
WEEK_TYPES = ["GREEN", "GREEN", "CHOP", "RED", "GREEN", "RED", "GREEN", "CHOP", "GREEN", "GREEN", "RED", "RED",
              "GREEN", "CHOP", "GREEN"]  # fmt: skip
PREDICTED = ["GREEN", "GREEN", "GREEN", "RED", "GREEN", "CHOP", "GREEN", "CHOP", "GREEN", "RED", "RED", "GREEN",
             "GREEN", "GREEN", "GREEN"]  # fmt: skip
# Weekly closing marks of the Com-Accs' holdings: a slow climb with a dip in weeks 10-12.
VTI = ["281.50", "283.20", "282.10", "285.90", "288.40", "287.00", "290.30", "292.80", "291.10", "286.40", "279.90",
       "283.70", "289.20", "293.60", "295.10", "296.80"]  # fmt: skip
SCHD = ["27.80", "27.95", "27.90", "28.10", "28.30", "28.25", "28.40", "28.55", "28.50", "28.20", "27.85",
        "28.05", "28.35", "28.60", "28.70", "28.85"]  # fmt: skip


def _occ(root: str, expiry: date, pc: str, strike: int) -> str:
    return f"{root:<6}{expiry:%y%m%d}{pc}{strike * 1000:08d}"


@contextmanager
def _clock(day: date, hour: int = 16) -> Iterator[None]:
    at = datetime.combine(day, time(hour), UTC)

    class Simulated(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
            return at if tz is not None else at.replace(tzinfo=None)

    with mock.patch.object(uow, "datetime", Simulated):
        yield


def build_showcase(engine: Engine, actor: str, today: date | None = None) -> Iterator[str]:
    today = today or datetime.now(UTC).date()
    start = today - timedelta(days=today.weekday()) - timedelta(weeks=WEEKS - 1)
    with _clock(start, 9):
        yield from build_demo(engine, actor)
        brokers.register(engine, actor, P, [f"IBKR:U10000{n:02d}" for n in range(10, 16)], "show:pool")
    yield "registered six more IBKR accounts: each fork takes two from the pool"
    leaps = date(start.year + 2, 1, 21)
    leaps_call = _occ("SPY", leaps, "C", 550)
    for w in range(WEEKS):
        monday = start + timedelta(weeks=w)
        thursday, friday = monday + timedelta(days=3), monday + timedelta(days=4)
        last = friday > today
        facts: list[tuple[str, Fill]] = []
        for acc, root, strike, n, px in REV_PUTS + GEN_PUTS:
            if last:
                break
            sold = monday if acc.endswith("REV") else thursday
            put = _occ(root, friday, "P", strike)
            facts.append((f"show:{w}:{acc}:sto", Fill(acc, FillAction.STO, put, n, px, 65 * n, sold)))
            if LOSS_WEEKS.get(w) == acc:
                back = str(Decimal(px) * 3)
                facts.append((f"show:{w}:{acc}:btc", Fill(acc, FillAction.BTC, put, n, back, 65 * n, friday)))
            else:
                facts.append((f"show:{w}:{acc}:exp", Fill(acc, FillAction.EXPIRE, put, n, trade_date=friday)))
        if w == 1:
            facts += [
                ("show:vti", Fill("A1-COM", FillAction.BTO, "VTI", 120, "283.20", 100, monday)),
                ("show:schd", Fill("A3-COM", FillAction.BTO, "SCHD", 400, "27.95", 100, monday)),
                ("show:leaps", Fill("A3-COM", FillAction.BTO, leaps_call, 2, "95.20", 130, monday)),
            ]
        if w == 4:
            vti_call = _occ("VTI", friday, "C", 295)
            facts += [
                ("show:cc:sto", Fill("A1-COM", FillAction.STO, vti_call, 1, "1.85", 65, monday)),
                ("show:cc:exp", Fill("A1-COM", FillAction.EXPIRE, vti_call, 1, trade_date=friday)),
            ]
        if w in (6, 12):
            facts.append(
                (f"show:div:{w}", Fill("A1-COM", FillAction.DIVIDEND, "VTI", amount_cents=11_832, trade_date=friday))
            )
        day = min(friday, today)
        with _clock(day) if day < today else nullcontext():  # today's writes keep the real time
            if facts:
                record_fills(engine, actor, P, facts)
            marks = {"VTI": VTI[w], "SCHD": SCHD[w]} if w >= 1 else {}
            if w >= 1:
                marks[leaps_call] = str(
                    (Decimal("95.20") + (Decimal(VTI[w]) - Decimal("283.20")) * Decimal("0.9")).quantize(
                        Decimal("0.01")
                    )
                )
            if marks:
                record_marks(engine, actor, P, f"show:marks:{w}", marks, day)
            if w < len(PREDICTED):
                weeks.set_week(engine, actor, P, f"show:week:{w}:p", "predict", PREDICTED[w], monday)
                if not last:
                    weeks.set_week(engine, actor, P, f"show:week:{w}:c", "confirm", WEEK_TYPES[w], monday)
            for quarter_end in _quarter_ends(monday, friday):
                lifecycle.run(engine, actor, P, quarter_end)
            if w == 4:
                realize(engine, actor, P, [("show:g1", "A1-GEN", 7_500_000, friday), ("show:g3", "A3-GEN", 9_000_000, friday)])  # fmt: skip
                lifecycle.run(engine, actor, P, friday)
            if w == 8:
                realize(engine, actor, P, [("show:g4", "A1F1-GEN", 45_000_000, friday)])
                lifecycle.run(engine, actor, P, friday)
            if w == 11:
                realize(engine, actor, P, [("show:g5", "A3F1-GEN", 8_000_000, friday)])
                lifecycle.run(engine, actor, P, friday)
            if last:
                # Shares bought with nearly all of A2-COM's cash: a fact, so it is recorded below the buffer.
                record_fills(
                    engine, actor, P, [("show:iwm", Fill("A2-COM", FillAction.BTO, "IWM", 150, "224.00", 100, day))]
                )
    yield f"played {WEEKS} weeks of trading: weekly puts, share and LEAPS purchases, marks and week types"
    yield "A1-GEN and A3-GEN forked A1F1 and A3F1; A1F1 merged back into A1-COM; A3F1-GEN forked A3F1F1"
    yield "the last purchase left A2-COM below its cash buffer: an open alert"


def _quarter_ends(first: date, last: date) -> list[date]:
    return [d for d in (date(first.year, m, 30 if m in (6, 9) else 31) for m in (3, 6, 9, 12)) if first <= d <= last]
