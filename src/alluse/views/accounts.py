"""Accounts as a reader sees them: the tree of groups and sleeves with their cash figures, one sleeve,
and the portfolio or account a name refers to.

One query (`SLEEVES`) reads a sleeve with its group and brokerage account; the tree, one account and
the web overview all build their rows from it with `sleeve`, so the figures agree everywhere.

`store/repo.py` (its journal and cash statements, and the tables they name) is imported where an
account is resolved, not by the tree, which `alluse accounts` reads at every start.
"""

from __future__ import annotations

from typing import Any, TypedDict

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.domain.accounts import SLEEVE_LABEL, AccountKind, CashSnapshot
from alluse.domain.errors import NotFound
from alluse.domain.money import Cents
from alluse.store.prepared import Prepared
from alluse.store.schema import account_groups, accounts, brokerage_accounts, portfolios
from alluse.store.scope import PortfolioRef, is_id, resolve_portfolio

_a, _g, _b = accounts.c, account_groups.c, brokerage_accounts.c
_SLEEVE_COLUMNS = (
    _g.id,
    _g.name,
    _g.kind,
    _g.status,
    _g.parent_group_id,
    _a.id,
    _a.kind,
    _a.name,
    _a.status,
    _a.cash_cents,
    _a.positions_value_cents,
    _a.collateral_cents,
    _a.earmarked_cents,
    _a.buffer_bps,
    _a.base_capital_cents,
    _b.broker,
    _b.number,
)
_SLEEVE_FROM = accounts.join(
    account_groups, sa.and_(_g.portfolio_id == _a.portfolio_id, _g.id == _a.group_id)
).outerjoin(brokerage_accounts, sa.and_(_b.portfolio_id == _a.portfolio_id, _b.account_id == _a.id))
# Every sleeve of a portfolio, group by group (forks after the groups they came from by id).
SLEEVES = Prepared(
    sa.select(*_SLEEVE_COLUMNS)
    .select_from(_SLEEVE_FROM)
    .where(_a.portfolio_id == sa.bindparam("pid"))
    .order_by(_g.id, _a.id)
)
_ONE_SLEEVE = Prepared(
    sa.select(*_SLEEVE_COLUMNS)
    .select_from(_SLEEVE_FROM)
    .where(_a.portfolio_id == sa.bindparam("pid"), _a.id == sa.bindparam("aid"))
)
# The usual way an account is asked for (A1-GEN): found and read in one round trip.
_SLEEVE_BY_NAME = Prepared(
    sa.select(*_SLEEVE_COLUMNS)
    .select_from(_SLEEVE_FROM)
    .where(_a.portfolio_id == sa.bindparam("pid"), _a.name == sa.bindparam("name"))
)


class SleeveFigures(TypedDict):
    """A sleeve as every screen shows it: its cash figures (the `CashSnapshot`'s) and its brokerage account."""

    account_id: int
    name: str
    kind: str
    label: str  # Gen-Acc, Rev-Acc, Com-Acc
    status: str
    cash_cents: Cents
    nav_cents: Cents
    buffer_bps: int
    cash_buffer_cents: Cents
    deployable_cents: Cents
    base_capital_cents: Cents
    buffer_breach: bool
    brokerage_account: str | None  # BROKER:NUMBER


class AccountDetail(SleeveFigures):
    group: str  # the group's name


class GroupNode(TypedDict):
    """A group of the account tree with its sleeves."""

    group_id: int
    name: str
    kind: str
    status: str
    parent_group_id: int | None
    accounts: list[SleeveFigures]
    parent_group: str | None  # the parent group's name


class AccountTree(TypedDict):
    portfolio_id: int
    portfolio: str
    template: str
    groups: list[GroupNode]


def sleeve(r: tuple[Any, ...]) -> SleeveFigures:
    """A row of `SLEEVES` (a plain tuple, in `_SLEEVE_COLUMNS` order) as the figures every screen shows."""
    aid, kind, name, status, cash, positions, collateral, earmarked, buffer_bps, base, broker, number = r[5:]
    k = AccountKind(kind)
    snap = CashSnapshot(name, k, cash, positions, collateral, earmarked, buffer_bps)
    return {
        "account_id": aid,
        "name": name,
        "kind": k.value,
        "label": SLEEVE_LABEL[k],
        "status": status,
        "cash_cents": Cents(snap.cash),
        "nav_cents": Cents(snap.nav),
        "buffer_bps": buffer_bps,
        "cash_buffer_cents": Cents(snap.cash_buffer),
        "deployable_cents": Cents(snap.deployable_cash),
        "base_capital_cents": Cents(base),
        "buffer_breach": snap.buffer_breached,
        "brokerage_account": f"{broker}:{number}" if broker else None,
    }


def portfolio_id(engine: Engine, portfolio: PortfolioRef) -> int:
    """The portfolio a name or id refers to (with none given, the only one there is)."""
    with engine.connect() as conn:
        return resolve_portfolio(conn, portfolio)


def account_id(engine: Engine, portfolio: PortfolioRef, ref: str | int) -> int:
    """The account a name (e.g. A1-GEN) or id refers to in the portfolio."""
    from alluse.store.repo import resolve_account

    with engine.connect() as conn:
        return resolve_account(conn, resolve_portfolio(conn, portfolio), ref)


def account_tree(engine: Engine, portfolio: PortfolioRef) -> AccountTree:
    """Every group of the portfolio with its sleeves: cash, buffer, deployable cash, status, broker."""
    with engine.connect() as conn:
        pid = resolve_portfolio(conn, portfolio)
        p = conn.execute(sa.select(portfolios.c.name, portfolios.c.template).where(portfolios.c.id == pid)).one()
        rows = SLEEVES.rows(conn, pid=pid)
    groups: dict[int, GroupNode] = {}
    for r in rows:
        gid, group, group_kind, group_status, parent_group_id = r[:5]
        grp = groups.setdefault(
            gid,
            {
                "group_id": gid,
                "name": group,
                "kind": group_kind,
                "status": group_status,
                "parent_group_id": parent_group_id,
                "accounts": [],
                "parent_group": None,  # named below, once every group is read
            },
        )
        grp["accounts"].append(sleeve(r))
    for grp in groups.values():
        parent = groups.get(grp["parent_group_id"]) if grp["parent_group_id"] else None
        grp["parent_group"] = parent["name"] if parent else None
    return {"portfolio_id": pid, "portfolio": p.name, "template": p.template, "groups": list(groups.values())}


def account_detail(engine: Engine, portfolio: PortfolioRef, ref: str | int) -> AccountDetail:
    """One sleeve with the same figures as a row of the tree, and its group's name."""
    with engine.connect() as conn:
        return account_detail_in(conn, resolve_portfolio(conn, portfolio), ref)


def account_detail_in(conn: sa.Connection, pid: int, ref: str | int) -> AccountDetail:
    """`account_detail` on a connection already scoped to portfolio `pid`."""
    text = str(ref).strip()
    row = None if is_id(text) else _SLEEVE_BY_NAME.first(conn, pid=pid, name=text.upper())
    if row is None:  # an id, or no such name: resolve_account answers (with its suggestions)
        from alluse.store.repo import resolve_account

        row = _ONE_SLEEVE.first(conn, pid=pid, aid=resolve_account(conn, pid, ref))
    if row is None:
        raise NotFound(f"no account {ref!r} in this portfolio")
    found = sleeve(row)
    # The names first, then the group, then the figures, as the tree lists them.
    return {
        "account_id": found["account_id"],
        "name": found["name"],
        "kind": found["kind"],
        "label": found["label"],
        "group": row[1],
        **found,
    }
