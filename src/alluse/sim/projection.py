"""Projections: the method simulated forward in weekly steps, many paths at once.

One model, two ways to run it. This module runs thousands of paths at once: numpy arrays of integer
cents, one row per path and one column per account, every rate applied with the engine's one
rounding rule (half-even to the cent), so a single path comes out to the cent as the engine's
(`sim/exact.py` drives the real engine on a throw-away database through the same weeks; a test holds
them equal). The lifecycle decisions (forks, merges) call the engine's own pure planners
(`domain/lifecycle.py`) with the engine's configuration; the quarterly reinvestment, which acts on
every Rev-Acc and Com-Acc every quarter, is `plan_reinvestment` written over arrays.

The model, week by week (Monday to Friday; results are booked on Friday):
- each active sleeve books one result: premium = NAV × the week's drawn yield (Gen-Acc, Rev-Acc) or
  share growth (Com-Acc); an assigned Gen-Acc or Rev-Acc loses `assignment.loss_pct` of its NAV; in
  the first week of a drawdown year every sleeve loses the drawdown's share of its NAV;
- on the last Friday of a month every Rev-Acc pays out `income.rev_withdrawal_pct` of its month's net
  income as a withdrawal, within its deployable cash (the buffer rule);
- every Friday and every quarter end the lifecycle runs (reinvestment at quarter ends, then merges,
  Rev-Acc forks, Gen-Acc forks, as `services/lifecycle.run` orders them);
- after a quarter-end run the reinvestment is executed (its contracts / shares / LEAPS earmarks are
  drawn down; the money keeps working in the sleeve); the tax reserve stays earmarked until Dec 31,
  when every active sleeve pays its year's estimated tax and its tax reserve is released.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

import numpy as np

from alluse.domain.accounts import SLEEVES, AccountKind, Allocation, CashSnapshot
from alluse.domain.lifecycle import (
    AccountState,
    LifecycleConfig,
    Outcome,
    Rule,
    SurplusFigures,
    is_quarter_end,
    plan_gen_fork,
    plan_merge,
    plan_rev_fork,
)
from alluse.domain.money import BPS_PER_UNIT, round_half_even
from alluse.domain.protocol import WeekType
from alluse.domain.rules import DEFAULT_TEMPLATE, template_rules
from alluse.sim.scenario import PPM, WEEK_TYPES, Scenario

KINDS = (AccountKind.GEN, AccountKind.REV, AccountKind.COM)  # column k of the draws; code k + 1 in `kind`
GEN, REV, COM = 1, 2, 3
PERCENTILES = (5, 25, 50, 75, 95)


def lifecycle_config(scenario: Scenario, base: LifecycleConfig | None = None) -> LifecycleConfig:
    """The engine's configuration with the scenario's tax rate, as `services/lifecycle.run` builds it
    from the portfolio's tax settings."""
    return replace(base or LifecycleConfig(), short_term_tax_bps=scenario.short_term_tax_bps)


def buffer_bps(kind: AccountKind, template: str = DEFAULT_TEMPLATE) -> int:
    return template_rules(template, kind).buffer_bps


# --- the starting structure ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartAccount:
    group: int  # index into StartState.groups
    kind: AccountKind
    cash: int
    base_capital: int
    buffer_bps: int
    earmarked: int = 0  # open earmarks (kept as a tax reserve until the year's tax is paid)
    year_realized: int = 0  # this tax year's net realized gain so far


@dataclass(frozen=True, slots=True)
class StartState:
    groups: tuple[tuple[int | None, bool, bool], ...]  # (parent group index, FORK group?, active?), oldest first
    accounts: tuple[StartAccount, ...]  # oldest first (the engine's id order)


def start_from_setup(capital_cents: int, allocation: Allocation, template: str = DEFAULT_TEMPLATE) -> StartState:
    """One PRIMARY group opened with the capital, split as `groups.open_group` splits it."""
    split = allocation.split(capital_cents)
    accs = tuple(
        StartAccount(0, k, split[k], split[k], buffer_bps(k, template)) for k in allocation.kinds()
    )  # fmt: skip
    return StartState(((None, False, True),), accs)


# --- market draws: shared by the fast paths and the exact path ----------------------------------


def _rhe(num: np.ndarray, den: int) -> np.ndarray:
    """`round_half_even` over an array (numpy's // floors like Python's divmod). Round half up, then
    step an exact tie that landed on an odd number back to the even one."""
    q = (num + den // 2) // den
    if den % 2:
        return q  # an odd denominator has no ties
    tie = (num + den // 2 - q * den) == 0
    return q - (tie & ((q & 1) == 1))


@dataclass(frozen=True, slots=True)
class Week:
    """One week's market for every path: yield (ppm of NAV) and assignment per sleeve kind."""

    ppm: np.ndarray  # (paths, 3) int64: Gen, Rev, Com
    assigned: np.ndarray  # (paths, 3) bool
    drawdown_bps: int  # this week's drawdown, same for every path


class Market:
    """The scenario's random weeks. Draws are consumed in the same order whatever runs the path, so
    the fast simulator and the exact path with the same seed and number of paths see the same weeks.
    The random draws are floats; they become integer ppm (a rate) here, before they meet any money."""

    def __init__(self, scenario: Scenario, paths: int, seed: int) -> None:
        self.sc = scenario
        self.paths = paths
        self.rng = np.random.default_rng(seed)
        w = scenario.weeks
        self.cut_green = w[WeekType.GREEN].share_ppm / PPM
        self.cut_red = (w[WeekType.GREEN].share_ppm + w[WeekType.RED].share_ppm) / PPM
        self.factor = np.array([w[t].yield_factor_bps for t in WEEK_TYPES], dtype=np.int64)
        self.odds = np.array([w[t].assignment_ppm / PPM for t in WEEK_TYPES])
        self.sleeves = (scenario.gen, scenario.rev, scenario.com)
        self.normal = any(s.distribution == "normal" for s in self.sleeves)
        self.years_of = scenario.week_years()
        self.empirical = [np.array(s.empirical_ppm, dtype=np.int64) for s in self.sleeves]

    def week(self, w: int) -> Week:
        n = self.paths
        u = self.rng.random((n, 6))
        z = self.rng.standard_normal((n, 3)) if self.normal else None
        year = self.years_of[w]
        wtype = np.where(u[:, 0] < self.cut_green, 0, np.where(u[:, 0] < self.cut_red, 1, 2))
        ppm = np.empty((n, 3), dtype=np.int64)
        for k, s in enumerate(self.sleeves):
            if s.distribution == "empirical":
                e = self.empirical[k]
                idx = np.minimum((u[:, 1 + k] * len(e)).astype(np.int64), len(e) - 1)
                col = e[idx] + (s.mean_ppm[year] - s.mean_ppm[0])  # decay shifts the whole distribution
            elif s.distribution == "normal":
                assert z is not None
                col = s.mean_ppm[year] + np.rint(s.spread_ppm * np.clip(z[:, k], -4, 4)).astype(np.int64)
            else:
                col = s.mean_ppm[year] + np.rint(s.spread_ppm * (2 * u[:, 1 + k] - 1)).astype(np.int64)
            if k < 2:  # the week type acts on option premium, not on share growth
                col = _rhe(col * self.factor[wtype], BPS_PER_UNIT)
            ppm[:, k] = col
        assigned = np.zeros((n, 3), dtype=bool)
        assigned[:, 0] = u[:, 4] < self.odds[wtype]
        assigned[:, 1] = u[:, 5] < self.odds[wtype]
        first_week = w == 0 or self.years_of[w - 1] != year
        dd = self.sc.drawdowns.get(year + 1, 0) if first_week else 0
        return Week(ppm, assigned, dd)


def weekly_result(nav: int, k: int, ppm: int, assigned: bool, drawdown_bps: int, loss_bps: int) -> int:
    """One sleeve's booked result for the week, in cents (k: 0 Gen, 1 Rev, 2 Com). Never more than
    the sleeve holds."""
    r = round_half_even(nav * ppm, PPM)
    if assigned:
        r -= round_half_even(nav * loss_bps, BPS_PER_UNIT)
    if drawdown_bps:
        r -= round_half_even(nav * drawdown_bps, BPS_PER_UNIT)
    return max(r, -nav)


# --- the calendar -------------------------------------------------------------------------------


def quarter_end_in(monday: date) -> date | None:
    for i in range(7):
        d = monday + timedelta(days=i)
        if is_quarter_end(d):
            return d
    return None


@dataclass(frozen=True, slots=True)
class Step:
    """What happens on one day of a week, in order."""

    day: date
    results: bool = False  # Friday: every sleeve books its result
    withdraw: bool = False  # last Friday of the month: Rev-Acc income
    run: bool = False  # the lifecycle runs (reinvestment too when `day` is a quarter end)


def week_steps(start: date, w: int) -> list[Step]:
    monday = start + timedelta(weeks=w)
    friday = monday + timedelta(days=4)
    qe = quarter_end_in(monday)
    steps = []
    if qe is not None and qe < friday:
        steps.append(Step(qe, run=True))
    steps.append(Step(friday, results=True, withdraw=(friday + timedelta(days=7)).month != friday.month, run=True))
    if qe is not None and qe > friday:
        steps.append(Step(qe, run=True))
    return steps


def month_index(start: date, day: date) -> int:
    """1 for the month the projection starts in."""
    return (day.year - start.year) * 12 + day.month - start.month + 1


# --- the fast simulator -------------------------------------------------------------------------


@dataclass(slots=True)
class Event:
    rule: str
    day: date
    account: int  # slot: the n-th sleeve opened (the engine's id order)
    amount: int


@dataclass(slots=True)
class QuarterNavs:
    day: date
    navs: list[list[int]]  # per path, per slot: NAV (0 once merged)
    active: list[list[bool]]


@dataclass(slots=True)
class Result:
    scenario: Scenario
    paths: int
    seed: int
    years: dict[str, np.ndarray]  # metric -> (years, paths) int64
    first_fork_month: np.ndarray  # (paths,) 0: no fork within the horizon
    events: list[list[Event]] = field(default_factory=list)  # per path, when recorded
    quarters: list[QuarterNavs] = field(default_factory=list)
    seconds: float = 0.0


YEAR_METRICS = (
    "total_cents",
    "booked_cents",  # every sleeve's weekly results (premium, growth, losses): what the year earned
    "gen_cents",
    "rev_cents",
    "com_cents",
    "monthly_income_cents",
    "withdrawn_cents",
    "tax_paid_cents",
    "groups",
    "accounts",
    "gen_forks",
    "rev_forks",
    "merges",
)


class FastPaths:
    """`paths` projections of one scenario, stepped together."""

    def __init__(
        self,
        scenario: Scenario,
        start: StartState | None = None,
        *,
        paths: int | None = None,
        seed: int | None = None,
        cfg: LifecycleConfig | None = None,
        record: bool = False,
        python_results: bool = False,
        template: str = DEFAULT_TEMPLATE,
    ) -> None:
        self.sc = scenario
        self.template = template  # the cash buffers of the sleeves forks open
        self.P = paths if paths is not None else scenario.paths
        self.seed = scenario.seed if seed is None else seed
        self.cfg = cfg or lifecycle_config(scenario)
        self.record = record
        self.python_results = python_results
        start = start or start_from_setup(scenario.capital_cents, scenario.allocation)
        P, A, G = self.P, max(8, len(start.accounts) * 2), max(4, len(start.groups) * 2)
        i64 = np.int64
        self.cash = np.zeros((P, A), i64)
        self.base = np.zeros((P, A), i64)
        self.reserve = np.zeros((P, A), i64)  # tax-reserve earmarks (and any open earmark at the start)
        self.pending = np.zeros((P, A), i64)  # this quarter's investment earmarks, until executed
        self.ytd = np.zeros((P, A), i64)  # tax year's net realized gain
        self.qgain = np.zeros((P, A), i64)
        self.mgain = np.zeros((P, A), i64)
        self.kind = np.zeros((P, A), np.int8)
        self.bbps = np.zeros((P, A), i64)
        self.active = np.zeros((P, A), bool)
        self.group = np.zeros((P, A), np.int32)
        self.infork = np.zeros((P, A), bool)  # the sleeve belongs to a FORK group
        self._kflat: np.ndarray | None = None  # index of each slot's kind in a week's (paths, 3) draws
        self.gparent = np.full((P, G), -1, np.int32)
        self.gfork = np.zeros((P, G), bool)
        self.gactive = np.zeros((P, G), bool)
        self.gdepth = np.zeros((P, G), np.int32)
        self.gslot = np.full((P, G, 3), -1, np.int32)
        for g, (parent, fork, active) in enumerate(start.groups):
            self.gparent[:, g] = -1 if parent is None else parent
            self.gfork[:, g] = fork
            self.gactive[:, g] = active
            self.gdepth[:, g] = 0 if parent is None else self.gdepth[0, parent] + 1
        for a, acc in enumerate(start.accounts):
            k = KINDS.index(acc.kind)
            self.cash[:, a], self.base[:, a], self.reserve[:, a] = acc.cash, acc.base_capital, acc.earmarked
            self.ytd[:, a], self.kind[:, a], self.bbps[:, a] = acc.year_realized, k + 1, acc.buffer_bps
            self.active[:, a], self.group[:, a] = True, acc.group
            self.infork[:, a] = start.groups[acc.group][1]
            self.gslot[:, acc.group, k] = a
        self.n_acc = np.full(P, len(start.accounts), np.int64)
        self.n_grp = np.full(P, len(start.groups), np.int64)
        Y = scenario.horizon_years
        self.years = {m: np.zeros((Y, P), i64) for m in YEAR_METRICS}
        self.forks = np.zeros((3, P), i64)  # gen forks, rev forks, merges so far
        self.first_fork = np.zeros(P, i64)
        self.events: list[list[Event]] = [[] for _ in range(P)] if record else []
        self.quarters: list[QuarterNavs] = []
        self.loss_bps = scenario.assignment_loss_bps
        self.years_of = scenario.week_years()

    # capacity -------------------------------------------------------------------------------------
    def _grow(self, accounts: int, groups: int) -> None:
        A, G = self.cash.shape[1], self.gparent.shape[1]
        if accounts > A:
            self._kflat = None
            extra = accounts - A + 4
            for name in (
                "cash",
                "base",
                "reserve",
                "pending",
                "ytd",
                "qgain",
                "mgain",
                "kind",
                "bbps",
                "active",
                "group",
                "infork",
            ):
                arr = getattr(self, name)
                setattr(self, name, np.pad(arr, ((0, 0), (0, extra))))
        if groups > G:
            extra = groups - G + 2
            self.gparent = np.pad(self.gparent, ((0, 0), (0, extra)), constant_values=-1)
            self.gfork = np.pad(self.gfork, ((0, 0), (0, extra)))
            self.gactive = np.pad(self.gactive, ((0, 0), (0, extra)))
            self.gdepth = np.pad(self.gdepth, ((0, 0), (0, extra)))
            self.gslot = np.pad(self.gslot, ((0, 0), (0, extra), (0, 0)), constant_values=-1)

    # the run --------------------------------------------------------------------------------------
    def run(self, progress: Callable[[int, int], None] | None = None) -> Result:
        t0 = time.perf_counter()
        market = Market(self.sc, self.P, self.seed)
        years_of = market.years_of
        W = len(years_of)
        for w in range(W):
            wk = market.week(w)
            for step in week_steps(self.sc.start_date, w):
                if step.results:
                    self._results(wk, w)
                if step.withdraw:
                    self._withdraw(w)
                if step.run:
                    self._lifecycle(step.day, w)
            if w + 1 == W or years_of[w + 1] != years_of[w]:
                self._year_end_snapshot(years_of[w])
                if progress:
                    progress(years_of[w] + 1, self.sc.horizon_years)
        return Result(
            self.sc, self.P, self.seed, self.years, self.first_fork, self.events, self.quarters,
            time.perf_counter() - t0,
        )  # fmt: skip

    def _results(self, wk: Week, w: int) -> None:
        if self.python_results:
            r = self._results_python(wk)
        else:
            if self._kflat is None:
                k = np.maximum(self.kind.astype(np.int64) - 1, 0)
                self._kflat = np.arange(self.P, dtype=np.int64)[:, None] * 3 + k
            nav = self.cash
            r = _rhe(nav * wk.ppm.ravel()[self._kflat], PPM)
            hit = np.nonzero(wk.assigned.ravel()[self._kflat] & self.active)
            if hit[0].size:
                r[hit] -= _rhe(nav[hit] * self.loss_bps, BPS_PER_UNIT)
            if wk.drawdown_bps:
                r -= _rhe(nav * wk.drawdown_bps, BPS_PER_UNIT)
            r = np.where(self.active, np.maximum(r, -nav), 0)
        self.cash += r
        self.ytd += r
        self.qgain += r
        self.mgain += r
        self.years["monthly_income_cents"][self.years_of[w]] += np.where(self.kind != COM, r, 0).sum(axis=1)
        self.years["booked_cents"][self.years_of[w]] += r.sum(axis=1)

    def _results_python(self, wk: Week) -> np.ndarray:
        """The baseline: the same week as a plain-Python loop over paths and accounts."""
        cash, kind, active = self.cash.tolist(), self.kind.tolist(), self.active.tolist()
        ppm, hit = wk.ppm.tolist(), wk.assigned.tolist()
        out = []
        for p in range(self.P):
            row = [0] * len(cash[p])
            for a in range(int(self.n_acc[p])):
                if active[p][a]:
                    k = kind[p][a] - 1
                    row[a] = weekly_result(cash[p][a], k, ppm[p][k], hit[p][k], wk.drawdown_bps, self.loss_bps)
            out.append(row)
        return np.array(out, dtype=np.int64)

    def _buffer(self) -> np.ndarray:
        return np.maximum(0, _rhe(self.cash * self.bbps, BPS_PER_UNIT))

    def _withdraw(self, w: int) -> None:
        """Rev-Acc income: the month's share, within deployable cash (an intent may not eat the buffer)."""
        rev = self.active & (self.kind == REV)
        planned = _rhe(np.maximum(0, self.mgain) * self.sc.rev_withdrawal_bps, BPS_PER_UNIT)
        deployable = self.cash - self._buffer() - self.reserve - self.pending
        amount = np.where(rev, np.minimum(planned, np.maximum(0, deployable)), 0)
        self.cash -= amount
        self.base -= amount  # base capital follows money taken out (ALLUSE_RULES §5)
        self.years["withdrawn_cents"][self.years_of[w]] += amount.sum(axis=1)
        self.mgain[:] = 0

    def _reinvest(self) -> None:
        """`plan_reinvestment` over arrays: the tax reserve and the investment earmarks."""
        cfg = self.cfg
        q = self.qgain
        acts = self.active & ((self.kind == REV) | (self.kind == COM)) & (q > 0)
        tax = _rhe(q * cfg.short_term_tax_bps, BPS_PER_UNIT)
        reinvestable = q if cfg.reinvest_pre_tax else q - tax
        room = self.cash - self._buffer() - self.reserve - self.pending - tax
        restore = np.minimum(reinvestable, np.maximum(0, -room))
        investable = np.minimum(reinvestable - restore, np.maximum(0, room))
        self.reserve += np.where(acts, tax, 0)
        self.pending += np.where(acts, investable, 0)

    def _lifecycle(self, day: date, w: int) -> None:
        quarter_end = is_quarter_end(day)
        if quarter_end:
            self._reinvest()
        cfg = self.cfg
        # Merges first (they act before forks), path by path: rare. A FORK group at the threshold has
        # a sleeve holding at least half of it.
        near_merge = (self.infork & self.active & (2 * self.cash >= cfg.merge_threshold)).any(axis=1)
        for p in np.flatnonzero(near_merge).tolist():
            n_g = int(self.n_grp[p])
            self._merges(
                p, day, {g: int(self.gdepth[p, g]) for g in range(n_g) if self.gfork[p, g] and self.gactive[p, g]}
            )
        # Forks: necessary conditions over every path (a post-tax surplus never exceeds NAV − base
        # capital), the exact surplus for the few that pass, then the planners, as `find_candidates`
        # and `apply_forks` do: Rev-Acc forks first, then Gen-Acc forks, oldest sleeve first.
        grown = np.where(self.active, self.cash - self.base, -1)
        near = ((self.kind == GEN) & (grown >= cfg.gen_fork_threshold)) | (
            (self.kind == REV) & (grown >= cfg.rev_fork_threshold)
        )
        ps, accs = np.nonzero(near)
        if ps.size:
            unpaid = _rhe(np.maximum(0, self.ytd[ps, accs]) * cfg.short_term_tax_bps, BPS_PER_UNIT)
            kinds = self.kind[ps, accs]
            threshold = np.where(kinds == GEN, cfg.gen_fork_threshold, cfg.rev_fork_threshold)
            keep = grown[ps, accs] - unpaid >= threshold
            ps, accs, kinds, unpaid = ps[keep], accs[keep], kinds[keep], unpaid[keep]
            order = np.lexsort((accs, kinds == GEN, ps))
            self._forks(day, ps[order], accs[order], unpaid[order])
        if quarter_end:
            # The simulated trader executes the plan: the investment earmarks are drawn down.
            self.pending[:] = 0
            self.qgain[:] = 0
        if day.month == 12 and day.day == 31:
            self._pay_tax(w)
        if quarter_end and self.record:
            navs = np.where(self.active, self.cash, 0)
            self.quarters.append(
                QuarterNavs(day, [navs[p, : self.n_acc[p]].tolist() for p in range(self.P)],
                            [self.active[p, : self.n_acc[p]].tolist() for p in range(self.P)])
            )  # fmt: skip

    def _pay_tax(self, w: int) -> None:
        est = np.where(self.active, _rhe(np.maximum(0, self.ytd) * self.cfg.short_term_tax_bps, BPS_PER_UNIT), 0)
        self.cash -= est
        self.years["tax_paid_cents"][self.years_of[w]] += est.sum(axis=1)
        self.reserve = np.where(self.active, 0, self.reserve)
        self.ytd[:] = 0

    # one path's forks and merges, with the engine's planners ------------------------------------
    def _forks(self, day: date, ps: np.ndarray, accs: np.ndarray, unpaid: np.ndarray) -> None:
        """Plan each candidate with the engine's planner, then open every new group in one pass."""
        if not ps.size:
            return
        cfg = self.cfg
        cols = [
            x[ps, accs].tolist()
            for x in (self.kind, self.cash, self.base, self.reserve + self.pending, self.bbps, self.group)
        ]
        plans = []
        for p, a, kind, cash, base, marked, bbps, g, tax in zip(
            ps.tolist(), accs.tolist(), *cols, unpaid.tolist(), strict=True
        ):
            state = AccountState(a, CashSnapshot(f"#{a}", KINDS[kind - 1], cash, 0, 0, marked, bbps),
                                 SurplusFigures(cash, base, tax, 0), g)  # fmt: skip
            plan = (plan_gen_fork if kind == GEN else plan_rev_fork)(state, cfg)
            if plan is not None and plan.outcome is Outcome.APPLY:
                plans.append((p, a, g, kind == GEN, plan.amount))
        if not plans:
            return
        n_acc, n_grp = self.n_acc.tolist(), self.n_grp.tolist()
        need_a, need_g = dict(zip(range(self.P), n_acc, strict=True)), dict(zip(range(self.P), n_grp, strict=True))
        for p, _a, _g, gen, _amount in plans:
            need_a[p] += 2 if gen else 3
            need_g[p] += 1
        self._grow(max(need_a.values()), max(need_g.values()))
        self._kflat = None
        slots: dict[str, list[Any]] = {k: [] for k in ("p", "a", "cash", "kind", "bbps", "group", "fork")}
        groups: dict[str, list[Any]] = {k: [] for k in ("p", "g", "parent", "fork", "depth")}
        gslot: list[tuple[int, int, int, int]] = []
        born: dict[int, dict[int, int]] = {}
        depth = self.gdepth
        sleeves = {True: cfg.gen_fork_split.kinds(), False: cfg.rev_fork_allocation.kinds()}
        for p, a, parent, gen, amount in plans:
            alloc = cfg.gen_fork_split if gen else cfg.rev_fork_allocation
            g = n_grp[p]
            n_grp[p] += 1
            d = int(depth[p, parent]) + 1
            for key, v in zip(groups, (p, g, parent, gen, d), strict=True):
                groups[key].append(v)
            split = alloc.split(amount)
            for kind in sleeves[gen]:
                cents = split[kind]
                k = KINDS.index(kind)
                new = n_acc[p]
                n_acc[p] += 1
                for key, v in zip(slots, (p, new, cents, k + 1, buffer_bps(kind, self.template), g, gen), strict=True):
                    slots[key].append(v)
                gslot.append((p, g, k, new))
            self.cash[p, a] -= amount  # the forking sleeve keeps its base capital
            self.forks[0 if gen else 1, p] += 1
            if not self.first_fork[p]:
                self.first_fork[p] = month_index(self.sc.start_date, day)
            if self.record:
                self.events[p].append(Event((Rule.GEN_FORK if gen else Rule.REV_FORK).value, day, a, amount))
            if gen and amount >= cfg.merge_threshold:
                born.setdefault(p, {})[g] = d
            # A later fork of the same path in this batch reads its parent group's depth: keep it current.
            depth[p, g] = d
        gp, gg = np.array(groups["p"]), np.array(groups["g"])
        self.gparent[gp, gg], self.gfork[gp, gg], self.gactive[gp, gg] = groups["parent"], groups["fork"], True
        self.gdepth[gp, gg] = groups["depth"]
        sp, sa = np.array(slots["p"]), np.array(slots["a"])
        self.cash[sp, sa] = self.base[sp, sa] = slots["cash"]
        self.kind[sp, sa], self.bbps[sp, sa], self.group[sp, sa] = slots["kind"], slots["bbps"], slots["group"]
        self.active[sp, sa], self.infork[sp, sa] = True, slots["fork"]
        for arr in (self.reserve, self.pending, self.ytd, self.qgain, self.mgain):
            arr[sp, sa] = 0
        q = np.array(gslot)
        self.gslot[q[:, 0], q[:, 1], q[:, 2]] = q[:, 3]
        self.n_acc[:], self.n_grp[:] = n_acc, n_grp
        for p, depths in born.items():
            self._merges(p, day, depths)

    def _merge_target(self, p: int, g: int) -> int | None:
        parent = int(self.gparent[p, g])
        while parent >= 0:
            com = int(self.gslot[p, parent, 2])
            if com >= 0 and self.gactive[p, parent]:
                return com
            parent = int(self.gparent[p, parent])
        return None

    def _plan_merge(self, p: int, g: int) -> Any:
        members = [
            AccountState(a, CashSnapshot(f"#{a}", SLEEVES[k], int(self.cash[p, a])), None, g)
            for k, a in enumerate(int(s) for s in self.gslot[p, g])
            if a >= 0 and self.active[p, a]
        ]
        target = self._merge_target(p, g)
        return plan_merge(g, f"G{g}", members, None if target is None else (target, f"#{target}"), self.cfg)

    def _merges(self, p: int, day: date, depths: dict[int, int]) -> None:
        """Deepest first; a FORK group that grows by taking in a merge is checked again."""
        while depths:
            order = sorted(depths, key=lambda g: (-depths[g], g))
            todo = [g for g in order if (mp := self._plan_merge(p, g)) is not None and mp.outcome is Outcome.APPLY]
            grown = {}
            for g in todo:
                mp = self._plan_merge(p, g)
                target, total = mp.target_account_id, sum(mp.moves.values())
                members = [int(a) for a in self.gslot[p, g] if a >= 0 and self.active[p, a]]
                for a in members:
                    self.reserve[p, target] += self.reserve[p, a]  # open earmarks follow the money
                    self.pending[p, target] += self.pending[p, a]
                    self.cash[p, a] = self.reserve[p, a] = self.pending[p, a] = 0
                    self.active[p, a] = False
                self.cash[p, target] += total
                self.base[p, target] += total
                self.gactive[p, g] = False
                self.forks[2, p] += 1
                if self.record:
                    self.events[p].append(Event(Rule.MERGE.value, day, target, total))
                tg = int(self.group[p, target])
                if self.gfork[p, tg]:
                    grown[tg] = int(self.gdepth[p, tg])
            depths = grown

    def _year_end_snapshot(self, y: int) -> None:
        act = self.active
        nav = np.where(act, self.cash, 0)
        ys = self.years
        ys["total_cents"][y] = nav.sum(axis=1)
        ys["gen_cents"][y] = np.where(self.kind == GEN, nav, 0).sum(axis=1)
        ys["rev_cents"][y] = np.where(self.kind == REV, nav, 0).sum(axis=1)
        ys["com_cents"][y] = np.where(self.kind == COM, nav, 0).sum(axis=1)
        ys["accounts"][y] = act.sum(axis=1)
        ys["groups"][y] = self.gactive.sum(axis=1)
        ys["gen_forks"][y], ys["rev_forks"][y], ys["merges"][y] = self.forks


def simulate(scenario: Scenario, start: StartState | None = None, **kw: Any) -> Result:
    return FastPaths(scenario, start, **kw).run()


# --- summaries ----------------------------------------------------------------------------------


def _pct(values: np.ndarray) -> dict[str, int]:
    """Percentiles as values some path actually reached (inverted CDF: no interpolation, exact cents)."""
    if values.size == 0:
        return {}
    q = np.percentile(values, PERCENTILES, method="inverted_cdf")
    return {f"p{p}": int(v) for p, v in zip(PERCENTILES, q, strict=True)}


def summary(result: Result) -> dict[str, Any]:
    """Per year: percentiles of every metric over the paths. Monthly income is the year's net option
    income of the Gen-Accs and Rev-Accs divided by 12, rounded half-even to the cent."""
    ys = result.years
    rows = []
    for y in range(result.scenario.horizon_years):
        row: dict[str, Any] = {"year": y + 1}
        for m in YEAR_METRICS:
            vals = ys[m][y]
            if m == "monthly_income_cents":
                vals = _rhe(vals, 12)
            row[m] = _pct(vals)
        rows.append(row)
    forked = result.first_fork_month[result.first_fork_month > 0]
    return {
        "scenario": result.scenario.name,
        "paths": result.paths,
        "seed": result.seed,
        "horizon_years": result.scenario.horizon_years,
        "start_date": result.scenario.start_date.isoformat(),
        "years": rows,
        "first_fork_month": {"paths_with_a_fork": int(forked.size), **_pct(forked)},
        "seconds": round(result.seconds, 3),
        "note": "estimate, not tax advice; a projection, not a forecast",
    }
