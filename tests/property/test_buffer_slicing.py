"""The buffer rule does not depend on how an intent is sliced, through the real services on SQLite and
PostgreSQL: whatever a random sequence of withdrawals, transfers out and orders takes out of a Gen-Acc,
one withdrawal after the same orders may take too, and leaves the same account."""

from __future__ import annotations

import itertools
from datetime import date

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alluse.domain.errors import BufferShortfall, RuleViolation
from alluse.services import cash, groups
from alluse.services.portfolios import create_portfolio
from alluse.services.trades import Fill, FillAction, record_fill
from alluse.views.accounts import account_tree

_n = itertools.count()
GEN = "A1-GEN"

intent = st.tuples(st.sampled_from(["withdraw", "transfer", "order"]), st.integers(1, 6_000_000))


def _gen(engine: sa.Engine, name: str) -> dict:
    return next(a for g in account_tree(engine, name)["groups"] for a in g["accounts"] if a["name"] == GEN)


def _portfolio(engine: sa.Engine) -> str:
    name = f"slice{next(_n)}"
    create_portfolio(engine, "t", name, f"{name}:create")
    groups.open_group(engine, "t", name, "open", groups.group_opening(10_000_000))  # Gen-Acc $40,000
    return name


def _order(engine: sa.Engine, name: str, key: str, cents: int) -> None:
    record_fill(engine, "t", name, key, Fill(GEN, FillAction.BTO, "ABC", cents // 100, "1", 0, date(2026, 1, 5)))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(intent, min_size=1, max_size=12))
def test_slices_never_take_more_than_one_intent(engine: sa.Engine, intents: list[tuple[str, int]]) -> None:
    sliced, single = _portfolio(engine), _portfolio(engine)
    taken, orders = 0, []
    for i, (kind, cents) in enumerate(intents):
        if kind == "order":
            cents -= cents % 100  # whole shares at $1
            if 0 < cents <= _gen(engine, sliced)["deployable_cents"]:  # an order draws on deployable cash
                _order(engine, sliced, f"o{i}", cents)
                orders.append(cents)
            continue
        move = cash.withdrawal(GEN, cents) if kind == "withdraw" else cash.transfer(GEN, "A1-REV", cents)
        try:
            cash.move_cash(engine, "t", sliced, [(f"m{i}", move)])
        except (BufferShortfall, RuleViolation):
            continue
        taken += cents
        assert _gen(engine, sliced)["deployable_cents"] >= 0  # a cash-out leaves the buffer whole
    for i, cents in enumerate(orders):
        _order(engine, single, f"o{i}", cents)
    if taken:
        cash.move_cash(engine, "t", single, [("one", cash.withdrawal(GEN, taken))])  # never refused
    a, b = _gen(engine, sliced), _gen(engine, single)
    assert (a["cash_cents"], a["nav_cents"]) == (b["cash_cents"], b["nav_cents"])
