"""Reading and writing settings: the portfolio's template, allocation and lifecycle settings, a
group's allocation, an account's template and rule overrides."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import sqlalchemy as sa

from alluse.domain.accounts import Allocation
from alluse.store.schema import account_config, account_groups, accounts, portfolios

_p, _g = portfolios.c, account_groups.c


class AccountConfig(NamedTuple):
    name: str
    kind: str
    template: str
    overrides: dict[str, Any]


def portfolio_row(conn: sa.Connection, pid: int) -> Any:
    return conn.execute(sa.select(portfolios).where(_p.id == pid)).one()


def group_row(conn: sa.Connection, pid: int, gid: int) -> Any:
    return conn.execute(sa.select(account_groups).where(_g.portfolio_id == pid, _g.id == gid)).one()


def account_config_of(conn: sa.Connection, pid: int, aid: int) -> AccountConfig:
    row = conn.execute(
        sa.select(accounts.c.name, accounts.c.kind, account_config.c.template, account_config.c.overrides)
        .join(
            account_config,
            sa.and_(
                account_config.c.portfolio_id == accounts.c.portfolio_id, account_config.c.account_id == accounts.c.id
            ),
        )
        .where(accounts.c.portfolio_id == pid, accounts.c.id == aid)
    ).one()
    return AccountConfig(row.name, row.kind, row.template, json.loads(row.overrides))


def stored_lifecycle(conn: sa.Connection, pid: int) -> dict[str, Any]:
    """The portfolio's own lifecycle settings (what it changed from the method's defaults)."""
    stored: dict[str, Any] = json.loads(conn.execute(sa.select(_p.lifecycle).where(_p.id == pid)).scalar_one())
    return stored


def save_lifecycle(conn: sa.Connection, pid: int, stored: dict[str, Any]) -> None:
    conn.execute(portfolios.update().where(_p.id == pid).values(lifecycle=json.dumps(stored, sort_keys=True)))


def save_portfolio_template(conn: sa.Connection, pid: int, template: str) -> None:
    conn.execute(portfolios.update().where(_p.id == pid).values(template=template))


def save_portfolio_allocation(conn: sa.Connection, pid: int, alloc: Allocation) -> None:
    conn.execute(
        portfolios.update()
        .where(_p.id == pid)
        .values(alloc_gen_bps=alloc.gen_bps, alloc_rev_bps=alloc.rev_bps, alloc_com_bps=alloc.com_bps)
    )


def group_kind(conn: sa.Connection, pid: int, gid: int) -> str:
    return str(conn.execute(sa.select(_g.kind).where(_g.portfolio_id == pid, _g.id == gid)).scalar_one())


def save_group_allocation(conn: sa.Connection, pid: int, gid: int, alloc: Allocation) -> None:
    conn.execute(
        account_groups.update()
        .where(_g.portfolio_id == pid, _g.id == gid)
        .values(alloc_gen_bps=alloc.gen_bps, alloc_rev_bps=alloc.rev_bps, alloc_com_bps=alloc.com_bps)
    )


def save_account_config(
    conn: sa.Connection, pid: int, aid: int, template: str, overrides: dict[str, Any], buffer_bps: int
) -> None:
    """An account's template and overrides; the account row carries the buffer rate they give, as
    every cash movement enforces it."""
    conn.execute(
        account_config.update()
        .where(account_config.c.portfolio_id == pid, account_config.c.account_id == aid)
        .values(template=template, overrides=json.dumps(overrides, sort_keys=True))
    )
    conn.execute(
        accounts.update().where(accounts.c.portfolio_id == pid, accounts.c.id == aid).values(buffer_bps=buffer_bps)
    )
