"""The exact path: one projection path through the real engine, on a throw-away database.

The same weeks as `sim/projection.py` (the same market draws, the same calendar), but every step is
a real use case: results are option fills (`sim/trading.realize`), income is a buffer-checked
withdrawal, the lifecycle is `services/lifecycle.run`, tax is `services/tax.pay_tax`. The only thing
this module decides itself is what a trader following the method would do: book the week's result,
take the month's income, execute the quarter's reinvestment plan (draw its earmarks down) and pay
the year's estimated tax. Every figure it reads comes from the engine.

It never touches the user's database: it opens its own (SQLite in memory, migrated with the real
migrations, unless an engine is passed in, as the tests do for PostgreSQL).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.domain.accounts import AccountKind, CashSnapshot
from alluse.domain.lifecycle import EarmarkPurpose, LifecycleConfig, Rule, is_quarter_end
from alluse.domain.money import apply_bps
from alluse.domain.tax import estimate
from alluse.services import cash, groups, lifecycle, tax
from alluse.services.configuration import portfolio_lifecycle
from alluse.services.earmarks import draw_down
from alluse.services.portfolios import create_portfolio
from alluse.sim.projection import (
    KINDS,
    YEAR_METRICS,
    Event,
    Market,
    QuarterNavs,
    Result,
    month_index,
    week_steps,
    weekly_result,
)
from alluse.sim.scenario import Scenario
from alluse.sim.trading import realize
from alluse.store.db import make_engine, migrate
from alluse.store.schema import account_groups, accounts, earmarks, lifecycle_actions
from alluse.store.uow import Request, Tx, write
from alluse.views import tax as tax_read

ACTOR = "projection"
PORTFOLIO = "projection"
_a, _e = accounts.c, earmarks.c
_INVESTMENT = (EarmarkPurpose.CONTRACTS, EarmarkPurpose.SHARES, EarmarkPurpose.LEAPS)


_SLEEVES = (
    sa.select(_a.id, _a.kind, _a.status, _a.cash_cents, _a.positions_value_cents, _a.collateral_cents,
              _a.earmarked_cents, _a.buffer_bps, _a.name)
    .where(_a.kind != AccountKind.EXT.value)
    .order_by(_a.id)
)  # fmt: skip


def _pct(bps: int) -> str:
    return str(Decimal(bps) / 100)


class ExactPath:
    def __init__(self, scenario: Scenario, engine: Engine, seed: int, cfg: LifecycleConfig | None = None) -> None:
        self.sc = scenario
        self.cfg = cfg
        self.pid = 0
        self.engine = engine
        self.seed = seed
        self.slot: dict[int, int] = {}  # account id -> slot (the n-th sleeve opened)
        Y = scenario.horizon_years
        self.years = {m: np.zeros((Y, 1), np.int64) for m in YEAR_METRICS}
        self.month_gain: dict[int, int] = {}
        self.first_fork = 0
        self.quarters: list[QuarterNavs] = []
        self.years_of = scenario.week_years()

    def _sleeves(self) -> list[Any]:
        """Every sleeve, oldest first: the engine's own figures."""
        with self.engine.connect() as conn:
            rows = conn.execute(_SLEEVES).all()
        for r in rows:
            self.slot.setdefault(r.id, len(self.slot))
        return list(rows)

    def run(self, progress: Callable[[int, int], None] | None = None) -> Result:
        t0 = time.perf_counter()
        sc, e = self.sc, self.engine
        # Every call below names the portfolio by id, which skips a lookup by name in each of thousands.
        pid = self.pid = int(create_portfolio(e, ACTOR, PORTFOLIO, "projection:portfolio")["portfolio_id"])
        tax.set_rates(e, ACTOR, pid, "projection:tax", _pct(sc.short_term_tax_bps), "15", "15")
        groups.open_group(e, ACTOR, pid, "projection:open", groups.group_opening(sc.capital_cents, allocation=sc.allocation))  # fmt: skip
        if self.cfg is None:  # the portfolio's own configuration, read once: nothing changes it during the run
            with e.connect() as conn:
                self.cfg = portfolio_lifecycle(conn, pid)
        market = Market(sc, 1, self.seed)
        years_of = market.years_of
        W = len(years_of)
        for w in range(W):
            wk = market.week(w)
            for step in week_steps(sc.start_date, w):
                if step.results:
                    self._results(w, step.day, wk)
                if step.withdraw:
                    self._withdraw(w, step.day)
                if step.run:
                    self._run(w, step.day)
            if w + 1 == W or years_of[w + 1] != years_of[w]:
                self._year_end_snapshot(years_of[w])
                if progress:
                    progress(years_of[w] + 1, sc.horizon_years)
        events = self._events()
        return Result(
            sc, 1, self.seed, self.years, np.array([self.first_fork], np.int64), [events], self.quarters,
            time.perf_counter() - t0,
        )  # fmt: skip

    def _results(self, w: int, day: date, wk: Any) -> None:
        results = []
        for r in self._sleeves():
            if r.status != "ACTIVE":
                continue
            k = KINDS.index(AccountKind(r.kind))
            nav = r.cash_cents + r.positions_value_cents
            cents = weekly_result(nav, k, int(wk.ppm[0, k]), bool(wk.assigned[0, k]), wk.drawdown_bps,
                                  self.sc.assignment_loss_bps)  # fmt: skip
            self.month_gain[r.id] = self.month_gain.get(r.id, 0) + cents
            self.years["booked_cents"][self.years_of[w], 0] += cents
            if k < 2:
                self.years["monthly_income_cents"][self.years_of[w], 0] += cents
            if cents:  # a zero week books nothing
                results.append((f"projection:result:{w}:{r.id}", r.id, cents, day))
        if results:
            realize(self.engine, ACTOR, self.pid, results)

    def _withdraw(self, w: int, day: date) -> None:
        """The month's income from each Rev-Acc, never more than its deployable cash (the engine would
        refuse more: an intent may not eat into the buffer)."""
        moves = []
        for r in self._sleeves():
            if r.status != "ACTIVE" or r.kind != AccountKind.REV.value:
                continue
            snap = CashSnapshot(r.name, AccountKind.REV, r.cash_cents, r.positions_value_cents, r.collateral_cents,
                                r.earmarked_cents, r.buffer_bps)  # fmt: skip
            planned = apply_bps(max(0, self.month_gain.get(r.id, 0)), self.sc.rev_withdrawal_bps)
            amount = min(planned, max(0, snap.deployable_cash))
            if amount > 0:
                moves.append(
                    (f"projection:income:{day.isoformat()}:{r.id}", cash.withdrawal(r.id, amount, memo="income"))
                )
                self.years["withdrawn_cents"][self.years_of[w], 0] += amount
        if moves:
            cash.move_cash(self.engine, ACTOR, self.pid, moves)
        self.month_gain.clear()

    def _run(self, w: int, day: date) -> None:
        report = lifecycle.run(self.engine, ACTOR, self.pid, day, self.cfg)
        if not self.first_fork and (report.count(Rule.GEN_FORK) or report.count(Rule.REV_FORK)):
            self.first_fork = month_index(self.sc.start_date, day)
        if not is_quarter_end(day):
            return
        self._draw(day, _INVESTMENT, "executed: reinvested in the sleeve")
        if day.month == 12 and day.day == 31:
            self._pay_tax(w, day)
            self._draw(day, (EarmarkPurpose.TAX_RESERVE,), f"tax {day.year} paid")
        rows = self._sleeves()
        n = len(self.slot)
        navs, active = [0] * n, [False] * n
        for r in rows:
            if r.status == "ACTIVE":
                navs[self.slot[r.id]] = r.cash_cents + r.positions_value_cents
                active[self.slot[r.id]] = True
        self.quarters.append(QuarterNavs(day, [navs], [active]))

    def _pay_tax(self, w: int, day: date) -> None:
        # The year's estimate less what was paid for it: the engine's unpaid tax on realized gains
        # (earlier years are paid on their Dec 31), without re-adding up every earlier year.
        with self.engine.connect() as conn:
            rates = tax_read.rates(conn, self.pid)
            owed = [
                (
                    aid,
                    estimate(tax_read.year_figures(conn, self.pid, aid, day.year), rates).tax
                    - tax_read.tax_paid(conn, self.pid, aid, day.year),
                )
                for aid in conn.execute(
                    sa.select(_a.id).where(_a.kind != AccountKind.EXT.value, _a.status == "ACTIVE").order_by(_a.id)
                ).scalars()
            ]
        for aid, amount in owed:
            if amount > 0:
                tax.pay_tax(
                    self.engine, ACTOR, self.pid, f"projection:tax:{day.year}:{aid}", aid, day.year, amount, day
                )
                self.years["tax_paid_cents"][self.years_of[w], 0] += amount

    def _draw(self, day: date, purposes: tuple[EarmarkPurpose, ...], reference: str) -> None:
        """Draw every open earmark of these purposes down to zero, in one unit of work."""
        with self.engine.connect() as conn:
            open_ = [
                (int(aid), EarmarkPurpose(p), int(total))
                for aid, p, total in conn.execute(
                    sa.select(_e.account_id, _e.purpose, sa.func.sum(_e.amount_cents))
                    .where(_e.purpose.in_([p.value for p in purposes]))
                    .group_by(_e.account_id, _e.purpose)
                    .order_by(_e.account_id, _e.purpose)
                )
                if total
            ]
        if not open_:
            return

        def apply(tx: Tx, _reqs: list[Request]) -> list[dict[str, Any]]:
            drawn = [draw_down(tx, aid, p, amount, reference) for aid, p, amount in open_]
            return [{"drawn_cents": sum(drawn)}]

        key = f"projection:draw:{'+'.join(p.value for p in purposes)}:{day.isoformat()}"
        write(self.engine, self.pid, ACTOR, "projection.earmarks", [Request(key, {"day": day.isoformat()})], apply)

    def _year_end_snapshot(self, y: int) -> None:
        rows = self._sleeves()
        ys = self.years
        by_kind = {k: 0 for k in KINDS}
        for r in rows:
            if r.status == "ACTIVE":
                by_kind[AccountKind(r.kind)] += r.cash_cents + r.positions_value_cents
        ys["gen_cents"][y, 0], ys["rev_cents"][y, 0], ys["com_cents"][y, 0] = (by_kind[k] for k in KINDS)
        ys["total_cents"][y, 0] = sum(by_kind.values())
        ys["accounts"][y, 0] = sum(1 for r in rows if r.status == "ACTIVE")
        with self.engine.connect() as conn:
            ys["groups"][y, 0] = conn.execute(
                sa.select(sa.func.count()).where(account_groups.c.status == "ACTIVE")
            ).scalar_one()
            counts: dict[str, int] = dict(
                conn.execute(
                    sa.select(lifecycle_actions.c.rule, sa.func.count()).group_by(lifecycle_actions.c.rule)
                ).all()
            )
        ys["gen_forks"][y, 0] = counts.get(Rule.GEN_FORK.value, 0)
        ys["rev_forks"][y, 0] = counts.get(Rule.REV_FORK.value, 0)
        ys["merges"][y, 0] = counts.get(Rule.MERGE.value, 0)

    def _events(self) -> list[Event]:
        la = lifecycle_actions.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(la.rule, la.as_of, la.account_id, la.amount_cents)
                .where(la.rule.in_([Rule.GEN_FORK.value, Rule.REV_FORK.value, Rule.MERGE.value]))
                .order_by(la.id)
            ).all()
        return [Event(r.rule, r.as_of, self.slot[r.account_id], int(r.amount_cents)) for r in rows]


_TEMPLATE: list[bytes] = []  # the migrated empty schema, made once per process


def scratch_engine() -> Engine:
    """A throw-away database: SQLite in memory, migrated with the real migrations. The first call
    in a process migrates; later ones load a copy of that migrated image (migrating takes longer
    than a year of weeks)."""
    engine = make_engine("sqlite://")
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        if _TEMPLATE:
            raw.deserialize(_TEMPLATE[0])
            raw.execute("PRAGMA foreign_keys=ON")
    if not _TEMPLATE:
        migrate(engine)
        with engine.connect() as conn:
            _TEMPLATE.append(conn.connection.dbapi_connection.serialize())  # type: ignore[union-attr]
    return engine


def exact_path(
    scenario: Scenario,
    *,
    seed: int | None = None,
    engine: Engine | None = None,
    cfg: LifecycleConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Result:
    """One path through the real engine. Without `engine`, a throw-away SQLite database in memory
    is created, migrated and dropped afterwards. `cfg`: lifecycle thresholds other than the defaults
    (the engine takes its tax rate from the portfolio, which is set to the scenario's)."""
    seed = scenario.seed if seed is None else seed
    if engine is not None:
        return ExactPath(scenario, engine, seed, cfg).run(progress)
    scratch = scratch_engine()
    try:
        return ExactPath(scenario, scratch, seed, cfg).run(progress)
    finally:
        scratch.dispose()
