"""A portfolio where one lifecycle run has plenty to do, and a snapshot of everything it may change.

Groups A1..An (n groups): every Gen-Acc has a $75,000 realized gain (a $52,500 fork each), every
Rev-Acc $40,000 and every third Com-Acc $10,000 for the quarter (reinvestment), and the first few
groups already have a FORK group grown to the merge threshold. The run day is a quarter end.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa

from alluse.services import groups, lifecycle
from alluse.services.portfolios import create_portfolio
from alluse.services.verify import verify
from alluse.sim.trading import realize
from alluse.store.schema import (
    account_groups,
    accounts,
    audit_log,
    brokerage_accounts,
    earmarks,
    events,
    lifecycle_actions,
)

RUN_DAY = date(2026, 12, 31)


def build(engine: sa.Engine, n_groups: int = 24, n_merging: int = 6) -> None:
    create_portfolio(engine, "setup", "main", "setup:portfolio")
    groups.open_groups(
        engine, "setup", "main", [(f"open-{i}", groups.group_opening(25_000_000)) for i in range(n_groups)]
    )
    # Earlier: the first groups fork, and their forks grow to the merge threshold.
    realize(
        engine,
        "setup",
        "main",
        [(f"early-{i}", f"A{i + 1}-GEN", 7_500_000, date(2026, 7, 10)) for i in range(n_merging)],
    )
    lifecycle.run(engine, "setup", "main", date(2026, 7, 17))
    realize(
        engine,
        "setup",
        "main",
        [(f"grow-{i}", f"A{i + 1}F1-GEN", 44_750_000, date(2026, 8, 14)) for i in range(n_merging)],
    )
    results = []
    for i in range(n_merging, n_groups):
        results.append((f"gen-{i}", f"A{i + 1}-GEN", 7_500_000, date(2026, 11, 13)))
    for i in range(n_groups):
        results.append((f"rev-{i}", f"A{i + 1}-REV", 4_000_000, date(2026, 12, 4)))
        if i % 3 == 0:
            results.append((f"com-{i}", f"A{i + 1}-COM", 1_000_000, date(2026, 12, 11)))
    realize(engine, "setup", "main", results)


def snapshot(engine: sa.Engine) -> dict[str, Any]:
    """Everything a run changes, named by what it is (never by database ids, which a PostgreSQL
    sequence may skip after a rolled-back transaction)."""
    a, g, la, e = accounts.c, account_groups.c, lifecycle_actions.c, earmarks.c
    parent = account_groups.alias("parent")
    with engine.connect() as conn:
        accs = sorted(
            tuple(r)
            for r in conn.execute(
                sa.select(
                    a.name,
                    a.kind,
                    a.status,
                    a.cash_cents,
                    a.base_capital_cents,
                    a.earmarked_cents,
                    a.positions_value_cents,
                    a.collateral_cents,
                )  # fmt: skip
            )
        )
        grps = sorted(
            tuple(r)
            for r in conn.execute(
                sa.select(g.name, g.kind, g.status, parent.c.name).outerjoin(
                    parent, (parent.c.portfolio_id == g.portfolio_id) & (parent.c.id == g.parent_group_id)
                )
            )
        )
        acts = sorted(
            tuple(r)
            for r in conn.execute(
                sa.select(la.rule, la.as_of, a.name, g.name, la.amount_cents)
                .join(accounts, (a.portfolio_id == la.portfolio_id) & (a.id == la.account_id))
                .outerjoin(account_groups, (g.portfolio_id == la.portfolio_id) & (g.id == la.group_id))
            )
        )
        marks = sorted(
            tuple(r)
            for r in conn.execute(
                sa.select(a.name, e.purpose, sa.func.sum(e.amount_cents))
                .join(accounts, (a.portfolio_id == e.portfolio_id) & (a.id == e.account_id))
                .group_by(a.name, e.purpose)
            )
        )
        counts = {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (lifecycle_actions, events, audit_log)
        }
        mapped = conn.execute(
            sa.select(sa.func.count())
            .select_from(brokerage_accounts)
            .where(brokerage_accounts.c.account_id.is_not(None))
        ).scalar_one()
    report = verify(engine)
    assert report.ok, report.problems
    return {"accounts": accs, "groups": grps, "actions": acts, "earmarks": marks, "counts": counts, "mapped": mapped}
