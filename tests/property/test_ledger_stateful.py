"""Random sequences of group openings, deposits, withdrawals, transfers and replays — including ones
that must be refused — checked after every step against the journal and a plain model."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from alluse.domain.errors import AlluseError
from alluse.services import cash, groups
from alluse.services.configuration import parse_allocation
from alluse.services.portfolios import create_portfolio
from alluse.services.verify import verify
from alluse.store.schema import postings
from alluse.views.accounts import account_tree
from tests.conftest import _truncate_pg, db_state

amounts = st.integers(min_value=1, max_value=50_000_000)
allocations = st.sampled_from([None, "40/30/30", "50/25/25", "33.33/33.33/33.34", "10/10/80"])


def machine(engine: sa.Engine, reset: Callable[[], None]) -> type[RuleBasedStateMachine]:
    class Ledger(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            reset()
            create_portfolio(engine, "prop", "main", "prop:portfolio")
            self.cash: dict[str, int] = {}
            self.groups: list[str] = []
            self.done: list[tuple[str, cash.CashMove]] = []
            self.n = 0

        def key(self) -> str:
            self.n += 1
            return f"k{self.n}"

        def accounts(self) -> list[str]:
            return sorted(self.cash)

        def attempt(self, move: cash.CashMove) -> None:
            """Apply a move; if refused, the database must be exactly as before."""
            before = db_state(engine)
            key = self.key()
            try:
                (r,) = cash.move_cash(engine, "prop", "main", [(key, move)])
            except AlluseError:
                assert db_state(engine) == before
                return
            for leg in r["legs"]:
                if leg["account"] in self.cash:
                    self.cash[leg["account"]] += leg["amount_cents"]
            self.done.append((key, move))

        @initialize(amount=st.integers(min_value=10_000, max_value=50_000_000), alloc=allocations)
        def first_group(self, amount: int, alloc: str | None) -> None:
            self.open_group(amount, alloc)
            assert self.groups

        @rule(amount=amounts, alloc=allocations)
        def open_group(self, amount: int, alloc: str | None) -> None:
            before = db_state(engine)
            opening = groups.group_opening(amount, None, parse_allocation(alloc) if alloc else None)
            try:
                r = groups.open_group(engine, "prop", "main", self.key(), opening)
            except AlluseError:  # too small to fund every sleeve
                assert db_state(engine) == before
                return
            self.groups.append(r["name"])
            for a in r["accounts"].values():
                self.cash[a["name"]] = a["cash_cents"]

        @rule(data=st.data(), amount=amounts)
        def deposit(self, data: st.DataObject, amount: int) -> None:
            target = data.draw(st.sampled_from(self.groups + self.accounts()))
            self.attempt(cash.deposit(target, amount))

        @rule(data=st.data(), amount=amounts)
        def withdraw(self, data: st.DataObject, amount: int) -> None:
            self.attempt(cash.withdrawal(data.draw(st.sampled_from(self.accounts())), amount))

        @rule(data=st.data(), amount=amounts)
        def transfer(self, data: st.DataObject, amount: int) -> None:
            src, dst = data.draw(st.lists(st.sampled_from(self.accounts()), min_size=2, max_size=2, unique=True))
            self.attempt(cash.transfer(src, dst, amount))

        @rule(data=st.data())
        def replay(self, data: st.DataObject) -> None:
            if not self.done:
                return
            key, move = data.draw(st.sampled_from(self.done))
            before = db_state(engine)
            (r,) = cash.move_cash(engine, "prop", "main", [(key, move)])
            assert r["replayed"] is True
            assert db_state(engine) == before

        @invariant()
        def journal_is_the_truth(self) -> None:
            with engine.connect() as conn:
                assert (
                    conn.execute(sa.select(sa.func.coalesce(sa.func.sum(postings.c.amount_cents), 0))).scalar_one() == 0
                )
            report = verify(engine)
            assert report.ok, report.problems
            tree = account_tree(engine, "main")
            listed = {a["name"]: a for g in tree["groups"] for a in g["accounts"]}
            assert {n: a["cash_cents"] for n, a in listed.items()} == self.cash
            assert all(a["deployable_cents"] >= 0 for a in listed.values())

    return Ledger


@pytest.mark.slow
def test_random_cash_sequences_keep_every_invariant(engine: sa.Engine, sqlite_template, tmp_path) -> None:  # type: ignore[no-untyped-def]
    if engine.dialect.name == "sqlite":
        import shutil

        path = engine.url.database

        def reset() -> None:
            engine.dispose()
            shutil.copy(sqlite_template, path)

        examples = 40
    else:

        def reset() -> None:
            _truncate_pg(engine)

        examples = 15
    run_state_machine_as_test(
        machine(engine, reset),
        settings=settings(
            max_examples=examples,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
