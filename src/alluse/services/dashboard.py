"""Read models for the web dashboard: each function returns the rows one page shows, in cents.

They reuse the views the API serves (`views.accounts.account_tree`, `reports.holdings`, `lifecycle.plan` …)
and add what only a screen needs: an account's journal with its running balance, realized gains by
year, the fork tree's dates and amounts, weekly income per sleeve and premium by underlying.
Every tax figure is an estimate, not tax advice (`NOTE`).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.domain.instruments import price_text
from alluse.domain.tax import NOTE, YearFigures, estimate
from alluse.services.alerts import open_alerts
from alluse.services.earmarks import earmark_report
from alluse.services.lifecycle import family_tree, history
from alluse.services.reports import _year_figures_household, holdings
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
from alluse.views.accounts import SLEEVES, account_detail, account_id, sleeve
from alluse.views.tax import post_tax_surplus, rates, year_figures

JOURNAL_PAGE = 50
_a, _g, _t, _p = accounts.c, account_groups.c, transfers.c, postings.c


def portfolio_name(engine: Engine, pid: int) -> str:
    with engine.connect() as conn:
        return str(conn.execute(sa.select(portfolios.c.name).where(portfolios.c.id == pid)).scalar_one())


# --- overview ------------------------------------------------------------------------------------


OVERVIEW_GROUPS = 25


def overview(
    engine: Engine, pid: int, today: date | None = None, page: int = 1, per_page: int = OVERVIEW_GROUPS
) -> dict[str, Any]:
    """Portfolio totals and every open alert; and one page of groups (forks after the group they came
    from) with their sleeves and the sleeves' alerts. The figures are `views.accounts.sleeve`'s; the
    rows of a sleeve are built only for the groups on the page (a portfolio may hold thousands)."""
    today = today or date.today()
    with engine.connect() as conn:
        template = conn.execute(sa.select(portfolios.c.template).where(portfolios.c.id == pid)).scalar_one()
        rows = SLEEVES.rows(conn, pid=pid)
    alerts = open_alerts(engine, pid)
    tax = _household_tax(engine, pid, today.year)
    by_account: dict[str, list[dict[str, Any]]] = {}
    for al in alerts:
        by_account.setdefault(al["name"], []).append(al)
    keys = ("nav_cents", "cash_cents", "deployable_cents", "cash_buffer_cents")
    nav = cash = deployable = buffer = 0
    groups: dict[int, dict[str, Any]] = {}
    for r in rows:
        g = groups.get(r[0])
        if g is None:
            g = groups[r[0]] = {"group_id": r[0], "name": r[1], "kind": r[2], "status": r[3], "parent_group_id": r[4],
                                "rows": [], "sums": [0, 0, 0, 0], "alerts": 0, "active": False}  # fmt: skip
        row = sleeve(r)
        figures = (row["nav_cents"], row["cash_cents"], row["deployable_cents"], row["cash_buffer_cents"])
        g["rows"].append(row)
        if r[7] in by_account:
            g["alerts"] += len(by_account[r[7]])
        if r[8] in ("MERGED", "CLOSED"):
            continue
        g["active"] = True
        sums = g["sums"]
        sums[0] += figures[0]
        sums[1] += figures[1]
        sums[2] += figures[2]
        sums[3] += figures[3]
    for g in groups.values():
        if g["active"]:
            nav, cash, deployable, buffer = (
                x + y for x, y in zip((nav, cash, deployable, buffer), g["sums"], strict=True)
            )
    totals = dict(zip(keys, (nav, cash, deployable, buffer), strict=True))
    parent = {gid: g["parent_group_id"] for gid, g in groups.items()}

    def lineage(gid: int) -> tuple[int, ...]:
        chain = [gid]
        while parent.get(chain[-1]) is not None and len(chain) < 64:
            chain.append(parent[chain[-1]])
        return tuple(reversed(chain))

    ordered = sorted(groups, key=lineage)
    pages = max(1, -(-len(ordered) // per_page))
    page = min(max(1, page), pages)
    shown = []
    for gid in ordered[(page - 1) * per_page : page * per_page]:
        g = groups[gid]
        g["depth"] = len(lineage(gid)) - 1
        g["totals"] = dict(zip(keys, g.pop("sums"), strict=True))
        g["accounts"] = [{**row, "alerts": by_account.get(row["name"], [])} for row in g.pop("rows")]
        shown.append(g)
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
        "estimated_tax_cents": tax[0],
        "unpaid_tax_cents": max(0, tax[0] - tax[1]),
        "note": NOTE,
    }


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
) -> dict[str, Any]:
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
        realized = _realized_by_year(conn, pid, aid)
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
    for row in realized:
        row["estimated_tax_cents"] = estimate(
            YearFigures(row["short_term_cents"], row["long_term_cents"], row["dividends_cents"]), r
        ).tax
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
            "short_term_cents": fig.short_term,
            "long_term_cents": fig.long_term,
            "dividends_cents": fig.dividends,
            "estimated_tax_cents": estimate(fig, r).tax,
            "unpaid_on_realized_cents": surplus.unpaid_tax_on_realized,
            "on_unrealized_cents": surplus.tax_on_unrealized,
            "post_tax_surplus_cents": surplus.surplus,
            "rates_bps": (r.short_term_bps, r.long_term_bps, r.dividend_bps),
        },
        "earmarks": marks,
        "alerts": alerts,
        "note": NOTE,
    }


def _journal(conn: sa.Connection, pid: int, aid: int, limit: int, offset: int) -> list[dict[str, Any]]:
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
    out = []
    for r in rows:
        out.append(
            {
                "transfer_id": r.id,
                "kind": r.kind,
                "memo": r.memo,
                "on": (trade.get(r.id) or r.created_at.date()).isoformat(),
                "counterparty": ", ".join(other.get(r.id, [])),
                "reverses": r.reverses_transfer_id,
                "amount_cents": int(r[5]),
                "balance_cents": int(balance),
            }
        )
        balance -= int(r[5])
    return out


def _realized_by_year(conn: sa.Connection, pid: int, aid: int) -> list[dict[str, Any]]:
    c, f = lot_closes.c, fills.c
    years: dict[int, dict[str, Any]] = {}

    def row(y: int) -> dict[str, Any]:
        return years.setdefault(y, {"year": y, "short_term_cents": 0, "long_term_cents": 0, "dividends_cents": 0})

    year = sa.extract("year", c.closed_on)
    for y, term, gain in conn.execute(
        sa.select(year, c.term, sa.func.sum(c.gain_cents))
        .where(c.portfolio_id == pid, c.account_id == aid, c.realized.is_(True))
        .group_by(year, c.term)
    ):
        row(int(y))["long_term_cents" if term == "LONG" else "short_term_cents"] += int(gain)
    dyear = sa.extract("year", f.trade_date)
    for y, div in conn.execute(
        sa.select(dyear, sa.func.sum(f.cash_cents + f.commission_cents))
        .where(f.portfolio_id == pid, f.account_id == aid, f.action == "DIVIDEND")
        .group_by(dyear)
    ):
        row(int(y))["dividends_cents"] += int(div)
    return [years[y] for y in sorted(years, reverse=True)]


# --- the fork tree -------------------------------------------------------------------------------


def fork_tree(engine: Engine, pid: int) -> list[dict[str, Any]]:
    """`lifecycle.family_tree` with each group's opening (or fork) date and amount, its merge, and
    its sleeves (for links)."""
    roots = family_tree(engine, pid)
    events = history(engine, pid)
    forks = {e["group"]: e for e in events if e["rule"] in ("GEN_FORK", "REV_FORK")}
    merges = {e["group"]: e for e in events if e["rule"] == "MERGE"}
    with engine.connect() as conn:
        opened = dict(conn.execute(sa.select(_g.id, _g.opened_at).where(_g.portfolio_id == pid)).all())
        sleeves: dict[int, list[dict[str, Any]]] = {}
        for gid, name, kind, status in conn.execute(
            sa.select(_a.group_id, _a.name, _a.kind, _a.status)
            .where(_a.portfolio_id == pid, _a.group_id.is_not(None))
            .order_by(_a.id)
        ):
            sleeves.setdefault(gid, []).append({"name": name, "kind": kind, "status": status})

    def walk(node: dict[str, Any]) -> None:
        fork, merge = forks.get(node["name"]), merges.get(node["name"])
        node["opened_on"] = opened[node["group_id"]].date().isoformat()
        node["fork_on"] = fork["as_of"] if fork else None
        node["fork_rule"] = fork["rule"] if fork else None
        node["fork_amount_cents"] = fork["amount_cents"] if fork else None
        node["merged_on"] = merge["as_of"] if merge else None
        node["merge_amount_cents"] = merge["amount_cents"] if merge else None
        node["sleeves"] = sleeves.get(node["group_id"], [])
        for child in node["children"]:
            walk(child)

    for root in roots:
        walk(root)
    return roots


# --- report figures only a screen needs ----------------------------------------------------------


def weekly_income_by_account(engine: Engine, pid: int, start: date, end: date) -> dict[str, Any]:
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
            .where(f.portfolio_id == pid, f.action == "DIVIDEND", f.trade_date >= start, f.trade_date <= end)
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


def premium_by_underlying(engine: Engine, pid: int, start: date, end: date) -> list[dict[str, Any]]:
    """Option premium received (sell-to-open cash, after commission) per underlying, largest first."""
    f, i = fills.c, instruments.c
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(i.underlying, sa.func.sum(f.cash_cents), sa.func.count())
            .join(instruments, sa.and_(i.portfolio_id == f.portfolio_id, i.id == f.instrument_id))
            .where(
                f.portfolio_id == pid,
                f.action == "STO",
                i.kind == "OPTION",
                f.trade_date >= start,
                f.trade_date <= end,
            )
            .group_by(i.underlying)
        ).all()
    return sorted(
        ({"underlying": u, "premium_cents": int(p), "fills": int(n)} for u, p, n in rows),
        key=lambda r: -r["premium_cents"],
    )


def first_day(engine: Engine, pid: int) -> date | None:
    with engine.connect() as conn:
        opened = conn.execute(sa.select(sa.func.min(_g.opened_at)).where(_g.portfolio_id == pid)).scalar_one()
    return opened.date() if opened else None


def account_ref(engine: Engine, pid: int, ref: str) -> int:
    return account_id(engine, pid, ref)


def lot_history(engine: Engine, pid: int, aid: int, lot_id: int) -> dict[str, Any]:
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
            "cash_cents": opened.open_cash_cents,
            "action": opened.action,
            "price": price_text(opened.price_e4),
            "commission_cents": opened.commission_cents,
            "fill_id": opened.id,
        },
        "closes": [
            {
                "on": r.closed_on.isoformat(),
                "quantity": r.quantity,
                "basis_cents": -r.open_cash_cents,
                "proceeds_cents": r.close_cash_cents,
                "gain_cents": r.gain_cents,
                "term": r.term,
                "realized": r.realized,
                "action": r.action,
            }
            for r in closes
        ],  # fmt: skip
    }
