"""Projection scenarios and the fast simulator, without a database: validation with field names and
ranges, the shipped parameters, the array rounding against the engine's, the plain-Python week
against the array week, the reinvestment arrays against `plan_reinvestment`, and money conserved."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from alluse.domain.accounts import AccountKind, CashSnapshot
from alluse.domain.errors import InvalidInput
from alluse.domain.lifecycle import AccountState, plan_reinvestment
from alluse.domain.money import round_half_even
from alluse.sim import projection, scenario
from tests.projection_scenarios import BUSY, shipped_text, stress


def test_shipped_scenarios_carry_the_published_parameters() -> None:
    want = {  # monthly Gen %, Rev %, spread %, drawdowns {year: bps}, decay drop %
        "conservative": ("1.5", "1.0", "0.75", {3: 2500, 7: 1500}),
        "moderate": ("2.0", "1.5", "0.5", {4: 1500}),
        "optimistic": ("2.5", "2.0", "0.3", {5: 1000}),
    }
    for name, (gen, rev, spread, drawdowns) in want.items():
        sc = scenario.load(name)
        assert (sc.capital_cents, sc.horizon_years, sc.paths) == (20_000_000, 10, 10_000)
        assert sc.allocation.split(sc.capital_cents)[AccountKind.GEN] == 10_000_000
        assert sc.gen.mean_ppm[0] == scenario._monthly_to_weekly_ppm(scenario.Decimal(gen))
        assert sc.rev.mean_ppm[0] == scenario._monthly_to_weekly_ppm(scenario.Decimal(rev))
        assert sc.gen.spread_ppm == scenario._monthly_to_weekly_ppm(scenario.Decimal(spread))
        assert sc.drawdowns == drawdowns
    m = scenario.load("moderate")
    # 2 % a month is 2 × 12 / 52 = 0.4615 % a week; decay: 1.9 % a month from year 4 on.
    assert m.gen.mean_ppm[:4] == (4615, 4615, 4615, 4385)
    assert m.short_term_tax_bps == 3000 and m.rev_withdrawal_bps == 5000


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("monthly_yield_pct = 2.0\n", "\n", "gen.monthly_yield_pct is missing (a number between -10 and 20)"),
        ("horizon_years = 10", "horizon_years = 0", "horizon_years must be between 1 and 30, got 0"),
        ("share = 0.6", "share = 1.6", "weeks.green.share must be between 0 and 1, got 1.6"),
        ("share = 0.6", "share = 0.5", "must sum to 1"),
        ("short_term_pct = 30", "short_term_pct = 80", "tax.short_term_pct must be between 0 and 60, got 80"),
        ("start_date = 2027-01-04", "start_date = 2027-01-05", "start_date must be a Monday"),
        (
            "allocation = [50, 49.99, 0.01]",
            "allocation = [50, 50, 0]",
            "start.allocation[2] must be between 0.01 and 100",
        ),
        ('distribution = "uniform"', 'distribution = "gaussian"', "gen.distribution must be one of uniform, normal"),
        ("loss_pct = 15", "loss_pct = 95", "drawdowns[0].loss_pct must be between 0 and 90, got 95"),
        ("paths = 10000", 'paths = "many"', "paths must be a whole number between 1 and 100000"),
        (
            "[income]\nrev_withdrawal_pct = 50",
            "[income]",
            "income.rev_withdrawal_pct is missing (a number between 0 and 100)",
        ),
        ('distribution = "uniform"\n', "\n", "gen.distribution is missing (one of uniform, normal, empirical)"),
        ("[tax]\nshort_term_pct = 30", "[taxes]\nshort_term_pct = 30", "tax is missing (a [tax] table)"),
        ("start_date = 2027-01-04", "start_date = 2027-01-05", "a Monday (a TOML date like 2027-01-04), got Tuesday"),
        ("share = 0.6", "share = 0.5", "must sum to 1, got 0.9"),
        # A misspelt optional field would otherwise be ignored without a word: refused, with the names that fit.
        ("[[drawdowns]]", "[[drawdown]]", "field drawdown is not a scenario field (here: name, description,"),
        (
            "loss_pct = 15",
            "loss_pct = 15\nmonth = 3",
            "drawdowns[0].month is not a scenario field (here: year, loss_pct)",
        ),
        ("yearly_spread_pct = 0", "yearly_spread_pct = 0\nyearly_spred_pct = 1", "com.yearly_spred_pct is not a"),
    ],
)
def test_a_bad_field_is_refused_with_its_name_and_range(old: str, new: str, message: str) -> None:
    text = shipped_text()
    assert old in text
    with pytest.raises(InvalidInput, match=re.escape(message)):
        scenario.loads(text.replace(old, new, 1), "mine.toml")


def test_not_toml_and_unknown_names_are_refused() -> None:
    with pytest.raises(InvalidInput, match="not valid TOML"):
        scenario.loads("name = ", "x.toml")
    with pytest.raises(InvalidInput, match="name one of conservative, moderate, optimistic"):
        scenario.load("reckless")


def test_array_rounding_is_the_engines() -> None:
    rng = random.Random(3)
    nums = [rng.randrange(-(10**15), 10**15) for _ in range(4000)]
    for den in (1_000_000, 10_000, 12):
        ties = [k * den + den // 2 for k in range(-50, 50)]
        got = projection._rhe(np.array(nums + ties, dtype=np.int64), den).tolist()
        assert got == [round_half_even(n, den) for n in nums + ties]


def test_the_plain_python_week_gives_the_same_paths() -> None:
    sc = stress(years=2)
    cfg = projection.lifecycle_config(sc, BUSY)
    fast = projection.simulate(sc, paths=40, seed=5, cfg=cfg)
    slow = projection.simulate(sc, paths=40, seed=5, cfg=cfg, python_results=True)
    for m in projection.YEAR_METRICS:
        assert fast.years[m].tolist() == slow.years[m].tolist(), m
    assert fast.years["merges"][-1].sum() > 0 and fast.years["rev_forks"][-1].sum() > 0


def test_reinvestment_arrays_match_plan_reinvestment() -> None:
    sc = stress()
    sim = projection.FastPaths(sc, paths=500, seed=1, cfg=projection.lifecycle_config(sc))
    rng = np.random.default_rng(9)
    sim.kind[:, :3] = [projection.GEN, projection.REV, projection.COM]
    sim.cash[:, :3] = rng.integers(0, 10**8, size=(500, 3))
    sim.reserve[:, :3] = rng.integers(0, 10**6, size=(500, 3))
    sim.qgain[:, :3] = rng.integers(-(10**6), 10**7, size=(500, 3))
    before = (sim.cash.copy(), sim.reserve.copy(), sim.qgain.copy())
    sim._reinvest()
    for p in range(500):
        for a, kind in ((1, AccountKind.REV), (2, AccountKind.COM)):
            cash, reserve, gain = (int(x[p, a]) for x in before)
            snap = CashSnapshot("x", kind, cash, 0, 0, reserve, int(sim.bbps[p, a]))
            plan = plan_reinvestment(AccountState(a, snap, None), gain, "2027Q1", sim.cfg)
            tax = plan.tax_reserve if plan else 0
            invest = sum(plan.earmarks.values()) if plan else 0
            assert (int(sim.reserve[p, a]) - reserve, int(sim.pending[p, a])) == (tax, invest)


def test_money_is_conserved_on_every_path() -> None:
    """Forks and merges move money inside the portfolio: each year's value is last year's plus what
    the sleeves booked, less income withdrawn and tax paid, to the cent."""
    sc = stress(years=2)
    r = projection.simulate(sc, paths=200, seed=11, cfg=projection.lifecycle_config(sc, BUSY))
    y = r.years
    prev = np.full(200, sc.capital_cents)
    for k in range(2):
        assert (
            y["total_cents"][k] == prev + y["booked_cents"][k] - y["withdrawn_cents"][k] - y["tax_paid_cents"][k]
        ).all()
        assert (y["total_cents"][k] == y["gen_cents"][k] + y["rev_cents"][k] + y["com_cents"][k]).all()
        prev = y["total_cents"][k]
    assert y["merges"][-1].sum() > 0 and y["tax_paid_cents"].sum() > 0 and y["withdrawn_cents"].sum() > 0


def test_summary_percentiles_are_amounts_some_path_reached() -> None:
    sc = scenario.load("moderate").with_run(paths=300, years=3)
    r = projection.simulate(sc)
    s = projection.summary(r)
    totals = set(r.years["total_cents"][2].tolist())
    p = s["years"][2]["total_cents"]
    assert all(v in totals for v in p.values()) and p["p5"] <= p["p25"] <= p["p50"] <= p["p75"] <= p["p95"]
    assert s["first_fork_month"]["paths_with_a_fork"] == int((r.first_fork_month > 0).sum())
