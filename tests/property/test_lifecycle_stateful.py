"""Many simulated years of random trading results, quarter ends and lifecycle runs. After every step
the journal sums to zero, `verify` agrees with every cached figure (cash, base capital, earmarks, the
one-to-one brokerage mapping); after every run no FORK group at or above the merge threshold is left
unmerged, no Gen-Acc that should fork is left unforked, and running again the same day does nothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from alluse.domain.lifecycle import LifecycleConfig, is_quarter_end
from alluse.services import groups, lifecycle
from alluse.services.portfolios import create_portfolio
from alluse.services.verify import verify
from alluse.sim.trading import realize
from alluse.store.schema import account_groups, accounts, brokerage_accounts, postings
from alluse.views import tax as tax_read
from tests.conftest import _truncate_pg

CFG = LifecycleConfig()
SEEN: Counter[str] = Counter()  # rules applied across all examples: the test must exercise each
results = st.one_of(st.integers(-2_000_000, -1), st.integers(1, 60_000_000))


def machine(engine: sa.Engine, reset: Callable[[], None]) -> type[RuleBasedStateMachine]:
    class Years(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            reset()
            create_portfolio(engine, "prop", "main", "prop:portfolio")
            self.today = date(2026, 1, 5)
            self.n = 0
            self.runs = 0

        def key(self) -> str:
            self.n += 1
            return f"k{self.n}"

        def sleeves(self) -> list[str]:
            with engine.connect() as conn:
                q = sa.select(accounts.c.name).where(accounts.c.status == "ACTIVE", accounts.c.kind != "EXT")
                return sorted(conn.execute(q.order_by(accounts.c.id)).scalars())

        @initialize(n=st.integers(1, 3))
        def open_groups(self, n: int) -> None:
            groups.open_groups(engine, "prop", "main", [(f"g{i}", groups.group_opening(25_000_000)) for i in range(n)])

        @rule(pick=st.integers(0, 10_000), cents=results)
        def trade(self, pick: int, cents: int) -> None:
            names = self.sleeves()
            realize(engine, "prop", "main", [(self.key(), names[pick % len(names)], cents, self.today)])

        @rule(pick=st.integers(0, 10_000), cents=st.integers(7_000_000, 60_000_000))
        def gen_wins_big(self, pick: int, cents: int) -> None:
            """A Gen-Acc (of any group, forks included) books a large gain: forks and merges follow."""
            names = [n for n in self.sleeves() if n.endswith("-GEN")]
            realize(engine, "prop", "main", [(self.key(), names[pick % len(names)], cents, self.today)])

        @rule(pick=st.integers(0, 10_000), extra=st.integers(0, 5_000_000))
        def fork_reaches_merge_size(self, pick: int, extra: int) -> None:
            """A FORK group's Com-Acc books what lifts the group to the merge threshold (or past it), so
            the next run merges it. Without this rule, whether any example merged hung on what the
            generator happened to draw."""
            g, a = account_groups.c, accounts.c
            nav = sa.func.sum(a.cash_cents + a.positions_value_cents)
            with engine.connect() as conn:
                forks = conn.execute(
                    sa.select(g.id, nav)
                    .join(accounts, (a.portfolio_id == g.portfolio_id) & (a.group_id == g.id))
                    .where(g.kind == "FORK", g.status == "ACTIVE")
                    .group_by(g.id)
                    .order_by(g.id)
                ).all()
                if not forks:
                    return
                gid, group_nav = forks[pick % len(forks)]
                com = conn.execute(sa.select(a.name).where(a.group_id == gid, a.kind == "COM")).scalar_one()
            gain = max(CFG.merge_threshold - int(group_nav), 0) + extra + 1
            realize(engine, "prop", "main", [(self.key(), com, gain, self.today)])

        @rule(days=st.integers(1, 100))
        def time_passes(self, days: int) -> None:
            self.today += timedelta(days=days)

        @rule()
        def quarter_end(self) -> None:
            """Jump to the next quarter end and run the lifecycle there (reinvestment day)."""
            d = self.today + timedelta(days=1)
            while not is_quarter_end(d):
                d += timedelta(days=1)
            self.today = d
            self.lifecycle_run()

        @rule()
        def lifecycle_run(self) -> None:
            report = lifecycle.run(engine, "prop", "main", self.today)
            SEEN.update(a["rule"] for a in report.applied)
            self.runs += 1
            self.after_run()
            assert lifecycle.run(engine, "prop", "main", self.today).applied == []
            self.today += timedelta(days=1)  # the next facts belong to a later day

        def after_run(self) -> None:
            g, a = account_groups.c, accounts.c
            with engine.connect() as conn:
                big = conn.execute(
                    sa.select(g.name, sa.func.sum(a.cash_cents + a.positions_value_cents))
                    .join(accounts, (a.portfolio_id == g.portfolio_id) & (a.group_id == g.id))
                    .where(g.kind == "FORK", g.status == "ACTIVE")
                    .group_by(g.name)
                    .having(sa.func.sum(a.cash_cents + a.positions_value_cents) >= CFG.merge_threshold)
                ).all()
                assert big == [], f"FORK groups at the merge threshold left unmerged: {big}"
                gens = conn.execute(sa.select(a.id, a.name).where(a.kind == "GEN", a.status == "ACTIVE")).all()
                for aid, name in gens:
                    s = tax_read.post_tax_surplus(conn, 1, aid, self.today)
                    acc = lifecycle._load_sleeves(conn, 1, [aid], self.today)[aid].state.cash
                    assert not (
                        s.surplus >= CFG.gen_fork_threshold and acc.deployable_cash >= CFG.gen_fork_threshold
                    ), f"{name} should have forked: surplus {s.surplus}, deployable {acc.deployable_cash}"

        @invariant()
        def zero_sum_and_verified(self) -> None:
            with engine.connect() as conn:
                total = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(postings.c.amount_cents), 0))).scalar_one()
                assert total == 0
                mapped = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(brokerage_accounts)
                    .join(
                        accounts,
                        (accounts.c.portfolio_id == brokerage_accounts.c.portfolio_id)
                        & (accounts.c.id == brokerage_accounts.c.account_id),
                    )
                    .where(accounts.c.status == "ACTIVE")
                ).scalar_one()
                active = conn.execute(
                    sa.select(sa.func.count()).where(accounts.c.status == "ACTIVE", accounts.c.kind != "EXT")
                ).scalar_one()
            assert mapped == active  # every active sleeve has exactly one brokerage account
            report = verify(engine)
            assert report.ok, report.problems

    return Years


@pytest.mark.slow
def test_simulated_years_keep_the_lifecycle_invariants(engine: sa.Engine, sqlite_template) -> None:  # type: ignore[no-untyped-def]
    if engine.dialect.name == "sqlite":
        import shutil

        path = engine.url.database

        def reset() -> None:
            engine.dispose()
            shutil.copy(sqlite_template, path)

        examples = 12
    else:

        def reset() -> None:
            _truncate_pg(engine)

        examples = 4
    run_state_machine_as_test(
        machine(engine, reset),
        settings=settings(
            max_examples=examples,
            stateful_step_count=30,
            deadline=None,
            derandomize=True,  # the same simulated years in every CI run
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    if engine.dialect.name == "sqlite":
        assert all(SEEN[r] for r in ("GEN_FORK", "MERGE", "REINVEST")), f"rules exercised: {dict(SEEN)}"
