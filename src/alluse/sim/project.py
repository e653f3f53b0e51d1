"""Projections as a use case: pick a scenario, a start (a set-up or the portfolio as it stands), run
the fast paths or the exact engine path, and summarise per year. Reads only: a projection never
writes to the user's database (the exact path runs on its own throw-away database)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.domain.accounts import AccountKind
from alluse.domain.errors import InvalidInput
from alluse.domain.lifecycle import LifecycleConfig
from alluse.domain.rules import DEFAULT_TEMPLATE
from alluse.services.configuration import portfolio_lifecycle
from alluse.sim import scenario as scenarios
from alluse.sim.projection import FastPaths, StartAccount, StartState, summary
from alluse.sim.scenario import Scenario
from alluse.store.schema import account_groups, accounts, portfolios
from alluse.store.scope import resolve_portfolio
from alluse.views import tax

MAX_EXACT_YEARS = 10  # the exact path does a few thousand real units of work a year


def load_scenario(ref: str | None = None, text: str | None = None, **run: Any) -> Scenario:
    """A shipped scenario by name, a TOML file by path, or TOML text; then --paths/--seed/--years."""
    if text is not None:
        sc = scenarios.loads(text)
    else:
        sc = scenarios.load(ref or "moderate")
    return sc.with_run(**run)


def start_from_portfolio(
    engine: Engine, portfolio: str | int | None, as_of: date
) -> tuple[StartState, LifecycleConfig, str]:
    """The portfolio's active groups and sleeves as a projection start (oldest first). Each sleeve's
    NAV is taken as cash (a projection books results on NAV; open positions are not modelled), its
    open earmarks as a tax reserve, and its realized gain of the tax year so far is kept for the tax.
    Also the portfolio's lifecycle configuration and template (the buffers of the sleeves forks open)."""
    a, g = accounts.c, account_groups.c
    with engine.connect() as conn:
        pid = resolve_portfolio(conn, portfolio)
        cfg = portfolio_lifecycle(conn, pid)
        template = conn.execute(sa.select(portfolios.c.template).where(portfolios.c.id == pid)).scalar_one()
        grows = conn.execute(
            sa.select(g.id, g.parent_group_id, g.kind, g.status).where(g.portfolio_id == pid).order_by(g.id)
        ).all()
        index = {r.id: i for i, r in enumerate(grows)}
        rows = conn.execute(
            sa.select(a.id, a.group_id, a.kind, a.cash_cents, a.positions_value_cents, a.base_capital_cents,
                      a.earmarked_cents, a.buffer_bps)
            .where(a.portfolio_id == pid, a.status == "ACTIVE", a.kind != AccountKind.EXT.value)
            .order_by(a.id)
        ).all()  # fmt: skip
        if not rows:
            raise InvalidInput("the portfolio has no active accounts to project (open a group first)")
        accs = tuple(
            StartAccount(
                index[r.group_id], AccountKind(r.kind), r.cash_cents + r.positions_value_cents, r.base_capital_cents,
                r.buffer_bps, r.earmarked_cents, tax.realized_gain(conn, pid, r.id, date(as_of.year, 1, 1), as_of).total,
            )
            for r in rows
        )  # fmt: skip
    groups = tuple(
        (None if r.parent_group_id is None else index[r.parent_group_id], r.kind == "FORK", r.status == "ACTIVE")
        for r in grows
    )
    return StartState(groups, accs), cfg, template


def next_monday(day: date) -> date:
    return day + timedelta(days=7 - day.weekday())


def project(
    sc: Scenario,
    *,
    engine: Engine | None = None,
    portfolio: str | int | None = None,
    today: date | None = None,
    exact: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run the scenario and summarise it. With `engine`, start from that portfolio as it stands
    (read only); otherwise from the scenario's start (capital and allocation)."""
    start, cfg, template = None, None, DEFAULT_TEMPLATE
    if engine is not None:
        if exact:
            raise InvalidInput(
                "--exact from the portfolio is not built: the exact path starts from a set-up "
                "(the scenario's capital and allocation)"
            )
        day = today or date.today()
        start, cfg, template = start_from_portfolio(engine, portfolio, day)
        # The portfolio's own lifecycle settings; the scenario's tax rate (a what-if).
        cfg = replace(cfg, short_term_tax_bps=sc.short_term_tax_bps)
        sc = replace(sc, start_date=next_monday(day))
    if exact:
        if sc.paths != 1:
            raise InvalidInput("--exact runs one path: use --paths 1")
        if sc.horizon_years > MAX_EXACT_YEARS:
            raise InvalidInput(f"--exact runs at most {MAX_EXACT_YEARS} years (horizon_years between 1 and 10)")
        from alluse.sim.exact import exact_path

        result = exact_path(sc, progress=progress)
    else:
        result = FastPaths(sc, start, cfg=cfg, template=template, record=sc.paths == 1).run(progress)
    out = summary(result)
    out["exact"] = exact
    out["start"] = "portfolio" if engine is not None else "set-up"
    if exact or sc.paths == 1:
        out["events"] = [
            {"rule": e.rule, "day": e.day.isoformat(), "account": e.account, "amount_cents": e.amount}
            for e in result.events[0]
        ] if result.events else []  # fmt: skip
    return out
