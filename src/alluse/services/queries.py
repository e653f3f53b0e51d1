"""Read-only views: the tree of groups and accounts with their cash figures."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.domain.accounts import SLEEVE_LABEL, AccountKind, CashSnapshot
from alluse.domain.errors import NotFound
from alluse.store.prepared import Prepared
from alluse.store.schema import account_groups, accounts, brokerage_accounts, portfolios
from alluse.store.scope import resolve_portfolio


def account_tree(engine: Engine, portfolio: str | int | None) -> dict[str, Any]:
    """Every group of the portfolio with its sleeves: cash, buffer, deployable cash, status, broker."""
    a, g, b = accounts.c, account_groups.c, brokerage_accounts.c
    with engine.connect() as conn:
        pid = resolve_portfolio(conn, portfolio)
        p = conn.execute(sa.select(portfolios.c.name, portfolios.c.template).where(portfolios.c.id == pid)).one()
        q = (
            sa.select(
                g.id.label("gid"),
                g.name.label("group"),
                g.kind.label("group_kind"),
                g.status.label("group_status"),
                g.parent_group_id,
                a.id,
                a.kind,
                a.name,
                a.status,
                a.cash_cents,
                a.positions_value_cents,
                a.collateral_cents,
                a.earmarked_cents,
                a.buffer_bps,
                a.base_capital_cents,
                b.broker,
                b.number,
            )
            .select_from(
                accounts.join(account_groups, sa.and_(g.portfolio_id == a.portfolio_id, g.id == a.group_id)).outerjoin(
                    brokerage_accounts, sa.and_(b.portfolio_id == a.portfolio_id, b.account_id == a.id)
                )
            )
            .where(a.portfolio_id == pid)
            .order_by(g.id, a.id)
        )
        groups: dict[int, dict[str, Any]] = {}
        for r in conn.execute(q):
            grp = groups.setdefault(
                r.gid,
                {
                    "group_id": r.gid,
                    "name": r.group,
                    "kind": r.group_kind,
                    "status": r.group_status,
                    "parent_group_id": r.parent_group_id,
                    "accounts": [],
                },
            )
            kind = AccountKind(r.kind)
            snap = CashSnapshot(
                r.name,
                kind,
                r.cash_cents,
                r.positions_value_cents,
                r.collateral_cents,
                r.earmarked_cents,
                r.buffer_bps,
            )
            grp["accounts"].append(
                {
                    "account_id": r.id,
                    "name": r.name,
                    "kind": kind.value,
                    "label": SLEEVE_LABEL[kind],
                    "status": r.status,
                    "cash_cents": snap.cash,
                    "nav_cents": snap.nav,
                    "buffer_bps": r.buffer_bps,
                    "cash_buffer_cents": snap.cash_buffer,
                    "deployable_cents": snap.deployable_cash,
                    "base_capital_cents": r.base_capital_cents,
                    "buffer_breach": snap.buffer_breached,
                    "brokerage_account": f"{r.broker}:{r.number}" if r.broker else None,
                }
            )
    for grp in groups.values():
        parent = groups.get(grp["parent_group_id"]) if grp["parent_group_id"] else None
        grp["parent_group"] = parent["name"] if parent else None
    return {"portfolio_id": pid, "portfolio": p.name, "template": p.template, "groups": list(groups.values())}


def account_detail(engine: Engine, portfolio: str | int | None, ref: str | int) -> dict[str, Any]:
    """One sleeve with the same figures as a row of the tree."""
    from alluse.store.repo import resolve_account

    with engine.connect() as conn:
        pid = resolve_portfolio(conn, portfolio)
        aid = resolve_account(conn, pid, ref)
        row = _ONE_ACCOUNT.first(conn, pid=pid, aid=aid)
    if row is None:
        raise NotFound(f"no account {ref!r} in this portfolio")
    (aid, name, kind, status, group, cash, positions, collateral, earmarked, buffer_bps, base, broker, number) = row
    k = AccountKind(kind)
    snap = CashSnapshot(name, k, cash, positions, collateral, earmarked, buffer_bps)
    return {
        "account_id": aid,
        "name": name,
        "kind": k.value,
        "label": SLEEVE_LABEL[k],
        "group": group,
        "status": status,
        "cash_cents": snap.cash,
        "nav_cents": snap.nav,
        "buffer_bps": buffer_bps,
        "cash_buffer_cents": snap.cash_buffer,
        "deployable_cents": snap.deployable_cash,
        "base_capital_cents": base,
        "buffer_breach": snap.buffer_breached,
        "brokerage_account": f"{broker}:{number}" if broker else None,
    }


_a, _g, _b = accounts.c, account_groups.c, brokerage_accounts.c
_ONE_ACCOUNT = Prepared(
    sa.select(
        _a.id,
        _a.name,
        _a.kind,
        _a.status,
        _g.name,
        _a.cash_cents,
        _a.positions_value_cents,
        _a.collateral_cents,
        _a.earmarked_cents,
        _a.buffer_bps,
        _a.base_capital_cents,
        _b.broker,
        _b.number,
    )
    .select_from(
        accounts.join(account_groups, sa.and_(_g.portfolio_id == _a.portfolio_id, _g.id == _a.group_id)).outerjoin(
            brokerage_accounts, sa.and_(_b.portfolio_id == _a.portfolio_id, _b.account_id == _a.id)
        )
    )
    .where(_a.portfolio_id == sa.bindparam("pid"), _a.id == sa.bindparam("aid"))
)
