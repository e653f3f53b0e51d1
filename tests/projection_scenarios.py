"""Scenarios for the projection tests: the shipped moderate one turned up so that one or two years
see every rule act (Gen-Acc and Rev-Acc forks, merges, forks of forks) under lowered thresholds."""

from __future__ import annotations

from importlib import resources

from alluse.domain.lifecycle import LifecycleConfig
from alluse.sim import scenario

# Thresholds are configuration (ALLUSE_RULES §5): lowered so that a short horizon exercises them all.
BUSY = LifecycleConfig(
    gen_fork_threshold=1_000_000, rev_fork_threshold=2_000_000, rev_fork_amount=1_500_000, merge_threshold=1_200_000
)


def shipped_text(name: str = "moderate") -> str:
    return resources.files("alluse.sim").joinpath(f"scenarios/{name}.toml").read_text("utf-8")


def stress_text() -> str:
    text = shipped_text()
    for old, new in [
        ("capital = 200000", "capital = 100000"),
        ("allocation = [50, 49.99, 0.01]", "allocation = [40, 30, 30]"),
        ("monthly_yield_pct = 2.0", "monthly_yield_pct = 6"),
        ("monthly_yield_pct = 1.5", "monthly_yield_pct = 8"),
        ("monthly_spread_pct = 0.5", "monthly_spread_pct = 5"),
        ("yearly_growth_pct = 6.0", "yearly_growth_pct = 80"),
        ("rev_withdrawal_pct = 50", "rev_withdrawal_pct = 10"),
        ("loss_pct = 1.0", "loss_pct = 6"),
        ("year = 4", "year = 2"),
    ]:
        assert old in text, old
        text = text.replace(old, new)
    return text


def stress(years: int = 1) -> scenario.Scenario:
    return scenario.loads(stress_text(), "stress").with_run(years=years)
