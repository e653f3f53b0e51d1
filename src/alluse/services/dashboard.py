"""Read models for the web dashboard: each function returns the rows one page shows, in cents.

They reuse the views the API serves (`views.accounts.account_tree`, `reports.holdings`, `lifecycle.plan` …)
and add what only a screen needs: an account's journal with its running balance, realized gains by
year, the fork tree's dates and amounts, weekly income per sleeve and premium by underlying.
Every tax figure is an estimate, not tax advice (`NOTE`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, TypedDict

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.domain.accounts import AccountStatus
from alluse.domain.booking import FillAction
from alluse.domain.instruments import InstrumentKind, price_text
from alluse.domain.lots import Term
from alluse.domain.money import Cents
from alluse.domain.tax import NOTE, YearFigures, estimate
from alluse.services.alerts import OpenAlert, open_alerts
from alluse.services.earmarks import EarmarkLine, earmark_report
from alluse.services.reports import AccountHoldings, _year_figures_household, holdings
from alluse.services.trades import week_start
from alluse.store.schema import (
    account_groups,
    accounts,
    fills,
    instruments,
    lot_closes,
    lots,
    portfolios,
    postings,
    tax_payments,
    transfers,
)
from alluse.views.accounts import SLEEVES, AccountDetail, SleeveFigures, account_detail, account_id, sleeve
from alluse.views.lifecycle import FamilyNode, family_tree, history
from alluse.views.tax import post_tax_surplus, rates, year_figures

JOURNAL_PAGE = 50
_a, _g, _t, _p = accounts.c, account_groups.c, transfers.c, postings.c


class Totals(TypedDict):
    nav_cents: Cents
    cash_cents: Cents
    deployable_cents: Cents
    cash_buffer_cents: Cents


class OverviewSleeve(SleeveFigures):
    alerts: list[OpenAlert]  # its open ones


class OverviewGroup(TypedDict):
    group_id: int
    name: str
    kind: str
    status: str
    parent_group_id: int | None
    alerts: int  # open alerts on its sleeves
    active: bool  # a sleeve neither merged nor closed
    depth: int  # forks below the group they came from
    totals: Totals  # of its active sleeves
    accounts: list[OverviewSleeve]


class Overview(TypedDict):
    page: int
    pages: int
    group_count: int
    first_group: int
    portfolio: str
    template: str
    groups: list[OverviewGroup]
    totals: Totals  # of the active groups
    accounts: int
    alerts: list[OpenAlert]
    tax_year: int
    estimated_tax_cents: Cents
    unpaid_tax_cents: Cents
    note: str


class JournalRow(TypedDict):
    transfer_id: int
    kind: str
    memo: str
    on: str
    counterparty: str  # the other accounts of the transfer
    reverses: int | None  # a transfer id
    amount_cents: Cents
    balance_cents: Cents  # the account's, after this transfer


class RealizedYear(TypedDict):
    year: int
    short_term_cents: Cents
    long_term_cents: Cents
    dividends_cents: Cents
    estimated_tax_cents: Cents


class TaxPanel(TypedDict):
    year: int
    short_term_cents: Cents
    long_term_cents: Cents
    dividends_cents: Cents
    estimated_tax_cents: Cents
    unpaid_on_realized_cents: Cents
    on_unrealized_cents: Cents
    post_tax_surplus_cents: Cents
    rates_bps: tuple[int, int, int]  # short-term, long-term, dividends


class AccountPage(AccountDetail):
    """`views.accounts.account_detail` (the sleeve's figures, as a row of the account tree), and what
    only the account's page shows."""

    group_kind: str
    group_status: str
    holdings: AccountHoldings
    journal: list[JournalRow]
    journal_count: int
    page: int
    pages: int
    realized: list[RealizedYear]
    tax: TaxPanel
    earmarks: list[EarmarkLine]  # this account's
    alerts: list[OpenAlert]
    note: str


class Sleeve(TypedDict):
    name: str
    kind: str
    status: str


class ForkNode(TypedDict):
    """A node of `views.lifecycle.family_tree` with its dates, amounts and sleeves."""

    group_id: int
    name: str
    kind: str
    status: str
    nav_cents: Cents
    forked_from: str | None
    merged_into: str | None
    children: list[ForkNode]
    opened_on: str
    fork_on: str | None
    fork_rule: str | None
    fork_amount_cents: Cents | None
    merged_on: str | None
    merge_amount_cents: Cents | None
    sleeves: list[Sleeve]


class WeeklyIncome(TypedDict):
    weeks: list[str]  # the Mondays
    accounts: dict[str, list[int]]  # account name -> income in cents, one figure per week


class Premium(TypedDict):
    underlying: str
    premium_cents: Cents
    fills: int


class LotOpened(TypedDict):
    on: str
    quantity: int
    cash_cents: Cents
    action: str
    price: str
    commission_cents: Cents
    fill_id: int


class LotClosed(TypedDict):
    on: str
    quantity: int
    basis_cents: Cents
    proceeds_cents: Cents
    gain_cents: Cents
    term: str
    realized: bool
    action: str


class LotHistory(TypedDict):
    opened: LotOpened | None
    closes: list[LotClosed]


@dataclass(slots=True)
class _Group:
    """A group of the overview while its sleeves are summed."""

    row: Any
    sleeves: list[SleeveFigures] = field(default_factory=list)
    sums: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    alerts: int = 0
    active: bool = False


def portfolio_name(engine: Engine, pid: int) -> str:
    with engine.connect() as conn:
        return str(conn.execute(sa.select(portfolios.c.name).where(portfolios.c.id == pid)).scalar_one())


# --- overview ------------------------------------------------------------------------------------


OVERVIEW_GROUPS = 25


def overview(
    engine: Engine, pid: int, today: date | None = None, page: int = 1, per_page: int = OVERVIEW_GROUPS
) -> Overview:
    """Portfolio totals and every open alert; and one page of groups (forks after the group they came
    from) with their sleeves and the sleeves' alerts. The figures are `views.accounts.sleeve`'s; a
    sleeve's row with its alerts is built only for the groups on the page (a portfolio may hold thousands)."""
    today = today or date.today()
    with engine.connect() as conn:
        template = conn.execute(sa.select(portfolios.c.template).where(portfolios.c.id == pid)).scalar_one()
        rows = SLEEVES.rows(conn, pid=pid)
    alerts = open_alerts(engine, pid)
    tax = _household_tax(engine, pid, today.year)
    by_account: dict[str, list[OpenAlert]] = {}
    for al in alerts:
        by_account.setdefault(al["name"], []).append(al)
    groups = _sum_groups(rows, by_account)
    totals = _totals([sum(g.sums[k] for g in groups.values() if g.active) for k in range(4)])
    lineage = _lineages(groups)
    ordered = sorted(groups, key=lineage.__getitem__)
    pages = max(1, -(-len(ordered) // per_page))
    page = min(max(1, page), pages)
    shown: list[OverviewGroup] = []
    for gid in ordered[(page - 1) * per_page : page * per_page]:
        g = groups[gid]
        shown.append(
            {"group_id": gid, "name": g.row[1], "kind": g.row[2], "status": g.row[3], "parent_group_id": g.row[4],
             "alerts": g.alerts, "active": g.active, "depth": len(lineage[gid]) - 1, "totals": _totals(g.sums),
             "accounts": [{**row, "alerts": by_account.get(row["name"], [])} for row in g.sleeves]}
        )  # fmt: skip
    return {
        "page": page,
        "pages": pages,
        "group_count": len(groups),
        "first_group": (page - 1) * per_page,
        "portfolio": portfolio_name(engine, pid),
        "template": template,
        "groups": shown,
        "totals": totals,
        "accounts": len(rows),
        "alerts": alerts,
        "tax_year": today.year,
        "estimated_tax_cents": Cents(tax[0]),
        "unpaid_tax_cents": Cents(max(0, tax[0] - tax[1])),
        "note": NOTE,
    }


def _sum_groups(rows: Sequence[Any], by_account: dict[str, list[OpenAlert]]) -> dict[int, _Group]:
    """The groups of the `SLEEVES` rows: each with its sleeves' figures, their open alerts, and the
    sums of the figures of its sleeves neither merged nor closed."""
    groups: dict[int, _Group] = {}
    for r in rows:
        g = groups.get(r[0])
        if g is None:
            g = groups[r[0]] = _Group(r)
        row = sleeve(r)
        g.sleeves.append(row)
        if r[7] in by_account:
            g.alerts += len(by_account[r[7]])
        if r[8] in (AccountStatus.MERGED, AccountStatus.CLOSED):
            continue
        g.active = True
        sums = g.sums
        sums[0] += row["nav_cents"]
        sums[1] += row["cash_cents"]
        sums[2] += row["deployable_cents"]
        sums[3] += row["cash_buffer_cents"]
    return groups


def _lineages(groups: dict[int, _Group]) -> dict[int, tuple[int, ...]]:
    """Each group's line from its root down to it (forks sort after the group they came from)."""
    parent: dict[int, int | None] = {gid: g.row[4] for gid, g in groups.items()}

    def lineage(gid: int) -> tuple[int, ...]:
        chain = [gid]
        while (up := parent.get(chain[-1])) is not None and len(chain) < 64:
            chain.append(up)
        return tuple(reversed(chain))

    return {gid: lineage(gid) for gid in groups}


def _totals(sums: list[int]) -> Totals:
    nav, cash, deployable, buffer = sums
    return {"nav_cents": Cents(nav), "cash_cents": Cents(cash), "deployable_cents": Cents(deployable),
            "cash_buffer_cents": Cents(buffer)}  # fmt: skip


def _household_tax(engine: Engine, pid: int, year: int) -> tuple[int, int]:
    """(estimated tax, paid) for the year, netted across the household as `reports.tax_year` does,
    without its per-lot wash-sale pass (which the overview does not show)."""
    with engine.connect() as conn:
        figures = _year_figures_household(conn, pid, date(year, 1, 1), date(year, 12, 31))
        paid = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(tax_payments.c.amount_cents), 0)).where(
                tax_payments.c.portfolio_id == pid, tax_payments.c.tax_year == year
            )
        ).scalar_one()
        return estimate(figures, rates(conn, pid)).tax, int(paid)


# --- one account ---------------------------------------------------------------------------------


def account_page(
    engine: Engine, pid: int, ref: str, page: int = 1, today: date | None = None, per_page: int = JOURNAL_PAGE
) -> AccountPage:
    today = today or date.today()
    detail = account_detail(engine, pid, ref)
    aid = detail["account_id"]
    held = holdings(engine, pid, str(aid), today)["accounts"][0]
    with engine.connect() as conn:
        count = conn.execute(
            sa.select(sa.func.count(sa.distinct(_p.transfer_id))).where(_p.portfolio_id == pid, _p.account_id == aid)
        ).scalar_one()
        pages = max(1, -(-count // per_page))
        page = min(max(1, page), pages)
        journal = _journal(conn, pid, aid, per_page, (page - 1) * per_page)
        by_year = _realized_by_year(conn, pid, aid)
        r = rates(conn, pid)
        fig = year_figures(conn, pid, aid, today.year)
        surplus = post_tax_surplus(conn, pid, aid, today)
        group = conn.execute(
            sa.select(_g.name, _g.kind, _g.status)
            .join(accounts, sa.and_(_a.portfolio_id == _g.portfolio_id, _a.group_id == _g.id))
            .where(_a.portfolio_id == pid, _a.id == aid)
        ).one()
    label = f"{detail['label']} {detail['name']}"
    marks = [e for e in earmark_report(engine, pid) if e["account"] == label]
    alerts = [al for al in open_alerts(engine, pid) if al["name"] == detail["name"]]
    realized: list[RealizedYear] = [
        {"year": y, "short_term_cents": Cents(f.short_term), "long_term_cents": Cents(f.long_term),
         "dividends_cents": Cents(f.dividends), "estimated_tax_cents": Cents(estimate(f, r).tax)}
        for y, f in by_year
    ]  # fmt: skip
    return {
        **detail,
        "group_kind": group.kind,
        "group_status": group.status,
        "holdings": held,
        "journal": journal,
        "journal_count": count,
        "page": page,
        "pages": pages,
        "realized": realized,
        "tax": {
            "year": today.year,
            "short_term_cents": Cents(fig.short_term),
            "long_term_cents": Cents(fig.long_term),
            "dividends_cents": Cents(fig.dividends),
            "estimated_tax_cents": Cents(estimate(fig, r).tax),
            "unpaid_on_realized_cents": Cents(surplus.unpaid_tax_on_realized),
            "on_unrealized_cents": Cents(surplus.tax_on_unrealized),
            "post_tax_surplus_cents": Cents(surplus.surplus),
            "rates_bps": (r.short_term_bps, r.long_term_bps, r.dividend_bps),
        },
        "earmarks": marks,
        "alerts": alerts,
        "note": NOTE,
    }


def _journal(conn: sa.Connection, pid: int, aid: int, limit: int, offset: int) -> list[JournalRow]:
    """Newest first; each row with the account's balance after it (the sum of every posting up to it)."""
    amount = sa.func.sum(_p.amount_cents)
    rows = conn.execute(
        sa.select(_t.id, _t.kind, _t.memo, _t.created_at, _t.reverses_transfer_id, amount)
        .join(transfers, sa.and_(_t.portfolio_id == _p.portfolio_id, _t.id == _p.transfer_id))
        .where(_p.portfolio_id == pid, _p.account_id == aid)
        .group_by(_t.id, _t.kind, _t.memo, _t.created_at, _t.reverses_transfer_id)
        .order_by(_t.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    if not rows:
        return []
    balance = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(_p.amount_cents), 0)).where(
            _p.portfolio_id == pid, _p.account_id == aid, _p.transfer_id <= rows[0].id
        )
    ).scalar_one()
    ids = [r.id for r in rows]
    other: dict[int, list[str]] = {}
    for tid, name in conn.execute(
        sa.select(_p.transfer_id, _a.name)
        .join(accounts, sa.and_(_a.portfolio_id == _p.portfolio_id, _a.id == _p.account_id))
        .where(_p.portfolio_id == pid, _p.transfer_id.in_(ids), _p.account_id != aid)
        .order_by(_p.transfer_id, _a.name)
    ):
        if name not in other.setdefault(tid, []):
            other[tid].append(name)
    trade = dict(
        conn.execute(
            sa.select(fills.c.transfer_id, fills.c.trade_date).where(
                fills.c.portfolio_id == pid, fills.c.transfer_id.in_(ids)
            )
        ).all()
    )
    out: list[JournalRow] = []
    for r in rows:
        out.append(
            {
                "transfer_id": r.id,
                "kind": r.kind,
                "memo": r.memo,
                "on": (trade.get(r.id) or r.created_at.date()).isoformat(),
                "counterparty": ", ".join(other.get(r.id, [])),
                "reverses": r.reverses_transfer_id,
                "amount_cents": Cents(int(r[5])),
                "balance_cents": Cents(int(balance)),
            }
        )
        balance -= int(r[5])
    return out


def _realized_by_year(conn: sa.Connection, pid: int, aid: int) -> list[tuple[int, YearFigures]]:
    """Realized gains by term and dividends per calendar year, newest first."""
    c, f = lot_closes.c, fills.c
    years: dict[int, YearFigures] = {}

    year = sa.extract("year", c.closed_on)
    for y, term, gain in conn.execute(
        sa.select(year, c.term, sa.func.sum(c.gain_cents))
        .where(c.portfolio_id == pid, c.account_id == aid, c.realized.is_(True))
        .group_by(year, c.term)
    ):
        part = YearFigures(0, int(gain), 0) if term == Term.LONG else YearFigures(int(gain), 0, 0)
        years[int(y)] = years.get(int(y), YearFigures()) + part
    dyear = sa.extract("year", f.trade_date)
    for y, div in conn.execute(
        sa.select(dyear, sa.func.sum(f.cash_cents + f.commission_cents))
        .where(f.portfolio_id == pid, f.account_id == aid, f.action == FillAction.DIVIDEND)
        .group_by(dyear)
    ):
        years[int(y)] = years.get(int(y), YearFigures()) + YearFigures(0, 0, int(div))
    return [(y, years[y]) for y in sorted(years, reverse=True)]


# --- the fork tree -------------------------------------------------------------------------------


def fork_tree(engine: Engine, pid: int) -> list[ForkNode]:
    """`views.lifecycle.family_tree` with each group's opening (or fork) date and amount, its merge, and
    its sleeves (for links)."""
    roots = family_tree(engine, pid)
    events = history(engine, pid)
    forks = {e["group"]: e for e in events if e["rule"] in ("GEN_FORK", "REV_FORK")}
    merges = {e["group"]: e for e in events if e["rule"] == "MERGE"}
    with engine.connect() as conn:
        opened = dict(conn.execute(sa.select(_g.id, _g.opened_at).where(_g.portfolio_id == pid)).all())
        sleeves: dict[int, list[Sleeve]] = {}
        for gid, name, kind, status in conn.execute(
            sa.select(_a.group_id, _a.name, _a.kind, _a.status)
            .where(_a.portfolio_id == pid, _a.group_id.is_not(None))
            .order_by(_a.id)
        ):
            sleeves.setdefault(gid, []).append({"name": name, "kind": kind, "status": status})

    def walk(node: FamilyNode) -> ForkNode:
        fork, merge = forks.get(node["name"]), merges.get(node["name"])
        return {
            **node,
            "children": [walk(child) for child in node["children"]],
            "opened_on": opened[node["group_id"]].date().isoformat(),
            "fork_on": fork["as_of"] if fork else None,
            "fork_rule": fork["rule"] if fork else None,
            "fork_amount_cents": fork["amount_cents"] if fork else None,
            "merged_on": merge["as_of"] if merge else None,
            "merge_amount_cents": merge["amount_cents"] if merge else None,
            "sleeves": sleeves.get(node["group_id"], []),
        }

    return [walk(root) for root in roots]


# --- report figures only a screen needs ----------------------------------------------------------


def weekly_income_by_account(engine: Engine, pid: int, start: date, end: date) -> WeeklyIncome:
    """Per week (Monday start) and account: realized gains and dividends, as `reports.weekly` counts
    income for the whole portfolio."""
    c, f = lot_closes.c, fills.c
    start = week_start(start)
    by: dict[str, dict[date, int]] = {}
    with engine.connect() as conn:
        for name, on, gain in conn.execute(
            sa.select(_a.name, c.closed_on, c.gain_cents)
            .join(accounts, sa.and_(_a.portfolio_id == c.portfolio_id, _a.id == c.account_id))
            .where(c.portfolio_id == pid, c.realized.is_(True), c.closed_on >= start, c.closed_on <= end)
        ):
            wk = by.setdefault(name, {})
            wk[week_start(on)] = wk.get(week_start(on), 0) + gain
        for name, on, cash in conn.execute(
            sa.select(_a.name, f.trade_date, f.cash_cents)
            .join(accounts, sa.and_(_a.portfolio_id == f.portfolio_id, _a.id == f.account_id))
            .where(f.portfolio_id == pid, f.action == FillAction.DIVIDEND, f.trade_date >= start, f.trade_date <= end)
        ):
            wk = by.setdefault(name, {})
            wk[week_start(on)] = wk.get(week_start(on), 0) + cash
    weeks, day = [], start
    while day <= end:
        weeks.append(day)
        day += timedelta(days=7)
    return {
        "weeks": [w.isoformat() for w in weeks],
        "accounts": {name: [by[name].get(w, 0) for w in weeks] for name in sorted(by)},
    }


def premium_by_underlying(engine: Engine, pid: int, start: date, end: date) -> list[Premium]:
    """Option premium received (sell-to-open cash, after commission) per underlying, largest first."""
    f, i = fills.c, instruments.c
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(i.underlying, sa.func.sum(f.cash_cents), sa.func.count())
            .join(instruments, sa.and_(i.portfolio_id == f.portfolio_id, i.id == f.instrument_id))
            .where(
                f.portfolio_id == pid,
                f.action == FillAction.STO,
                i.kind == InstrumentKind.OPTION,
                f.trade_date >= start,
                f.trade_date <= end,
            )
            .group_by(i.underlying)
        ).all()
    premiums: list[Premium] = [{"underlying": u, "premium_cents": Cents(int(p)), "fills": int(n)} for u, p, n in rows]
    return sorted(
        premiums,
        key=lambda r: -r["premium_cents"],
    )


def first_day(engine: Engine, pid: int) -> date | None:
    with engine.connect() as conn:
        opened = conn.execute(sa.select(sa.func.min(_g.opened_at)).where(_g.portfolio_id == pid)).scalar_one()
    return opened.date() if opened else None


def account_ref(engine: Engine, pid: int, ref: str) -> int:
    return account_id(engine, pid, ref)


def lot_history(engine: Engine, pid: int, aid: int, lot_id: int) -> LotHistory:
    """One lot: the fill that opened it and every closing of part of it, with its realized gain."""
    lo, c, f = lots.c, lot_closes.c, fills.c
    with engine.connect() as conn:
        opened = conn.execute(
            sa.select(lo.opened_on, lo.quantity, lo.open_cash_cents, f.action, f.price_e4, f.commission_cents, f.id)
            .join(fills, sa.and_(f.portfolio_id == lo.portfolio_id, f.id == lo.open_fill_id))
            .where(lo.portfolio_id == pid, lo.id == lot_id, lo.account_id == aid)
        ).one_or_none()
        closes = conn.execute(
            sa.select(
                c.closed_on,
                c.quantity,
                c.open_cash_cents,
                c.close_cash_cents,
                c.gain_cents,
                c.term,
                c.realized,
                f.action,
            )
            .join(fills, sa.and_(f.portfolio_id == c.portfolio_id, f.id == c.fill_id))
            .where(c.portfolio_id == pid, c.lot_id == lot_id, c.account_id == aid)
            .order_by(c.id)
        ).all()
    if opened is None:
        return {"opened": None, "closes": []}
    return {
        "opened": {
            "on": opened.opened_on.isoformat(),
            "quantity": opened.quantity,
            "cash_cents": Cents(opened.open_cash_cents),
            "action": opened.action,
            "price": price_text(opened.price_e4),
            "commission_cents": Cents(opened.commission_cents),
            "fill_id": opened.id,
        },
        "closes": [
            {
                "on": r.closed_on.isoformat(),
                "quantity": r.quantity,
                "basis_cents": Cents(-r.open_cash_cents),
                "proceeds_cents": Cents(r.close_cash_cents),
                "gain_cents": Cents(r.gain_cents),
                "term": r.term,
                "realized": r.realized,
                "action": r.action,
            }
            for r in closes
        ],  # fmt: skip
    }
