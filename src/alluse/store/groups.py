"""Reading and writing account groups: the portfolio's defaults for a new group, the names in use,
and the rows a group opening plan (`domain.groups`) becomes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

import sqlalchemy as sa

from alluse.domain.accounts import AccountKind, Allocation, GroupKind
from alluse.domain.groups import GroupPlan
from alluse.store import prepared
from alluse.store.db import IN_CHUNK
from alluse.store.ids import pool_head
from alluse.store.schema import account_config, account_groups, accounts, brokerage_accounts, portfolios

# Rows as tuples in these orders (insert_groups).
_GROUP_INSERT = prepared.insert(
    account_groups,
    ["id", "portfolio_id", "name", "kind", "status", "parent_group_id", "forked_from_account_id", "alloc_gen_bps",
     "alloc_rev_bps", "alloc_com_bps", "opened_at"],
)  # fmt: skip
_ACCOUNT_INSERT = prepared.insert(
    accounts,
    ["id", "portfolio_id", "group_id", "kind", "name", "status", "forked_from_account_id", "buffer_bps", "cash_cents",
     "positions_value_cents", "collateral_cents", "earmarked_cents", "base_capital_cents", "opened_at"],
)  # fmt: skip
_CONFIG_INSERT = prepared.insert(account_config, ["account_id", "portfolio_id", "template", "overrides"])


class PortfolioDefaults(NamedTuple):
    template: str
    allocation: Allocation
    bank_id: int | None  # the bank counter-account's, None before its first use
    primary_groups: int | None  # how many PRIMARY groups there are, unless every opening is named
    # One opening: whether its name, or unnamed the next number's (A<primary_groups + 1>), is taken.
    name_taken: bool | None
    # SQLite: the first free ids of groups, accounts and brokerage accounts (`ids.allocate_blocks`).
    first_ids: list[int] | None


# One group per unit of work is the common case: its reads are prepared statements, and what it needs
# to know before it plans (defaults, whether its name is free, the ids to count on) is one of them.
_p, _g = portfolios.c, account_groups.c
_ID_BLOCKS = (account_groups, accounts, brokerage_accounts)


def _defaults(count: bool, one: bool, ids: bool) -> prepared.Prepared:
    bank = sa.select(accounts.c.id).where(
        accounts.c.portfolio_id == sa.bindparam("pid"), accounts.c.name == sa.bindparam("bank")
    )
    # A table of one row, so that naming the next group counts the groups once.
    primary = (
        sa.select(sa.func.count().label("n"))
        .where(_g.portfolio_id == sa.bindparam("pid"), _g.kind == "PRIMARY")
        .subquery()
    )
    name: sa.ColumnElement[str] = (
        sa.literal_column("'A'") + sa.cast(primary.c.n + 1, sa.String) if count else sa.bindparam("name")
    )
    taken = sa.exists().where(_g.portfolio_id == sa.bindparam("pid"), _g.name == name)
    return prepared.Prepared(
        sa.select(
            _p.template, _p.alloc_gen_bps, _p.alloc_rev_bps, _p.alloc_com_bps, bank.scalar_subquery(),
            primary.c.n if count else sa.null(),
            taken if one else sa.null(),
            *(pool_head(t, "sqlite", sa.null()) for t in _ID_BLOCKS if ids),
        ).where(_p.id == sa.bindparam("pid"))
    )  # fmt: skip


_DEFAULTS = {(c, o, i): _defaults(c, o, i) for c in (False, True) for o in (False, True) for i in (False, True)}
_NAME_TAKEN = prepared.Prepared(
    sa.select(_g.name).where(_g.portfolio_id == sa.bindparam("pid"), _g.name == sa.bindparam("name"))
)
_DEBIT = prepared.Prepared(
    accounts.update()
    .where(accounts.c.portfolio_id == sa.bindparam("pid"), accounts.c.id == sa.bindparam("aid"))
    .values(cash_cents=accounts.c.cash_cents - sa.bindparam("amount", type_=sa.BigInteger))
)


def portfolio_defaults(
    conn: sa.Connection, portfolio_id: int, bank: str, names: Sequence[str | None]
) -> PortfolioDefaults:
    """The portfolio's template and allocation and the id of its counter-account `bank`, for
    openings named `names` (None: numbered), with what `PortfolioDefaults` says besides."""
    count, one, ids = not all(names), len(names) == 1, conn.dialect.name == "sqlite"
    params = {"pid": portfolio_id, "bank": bank}
    if one and not count:
        params["name"] = names[0]
    template, gen, rev, com, bank_id, primary, taken, *tops = _DEFAULTS[count, one, ids].rows(conn, **params)[0]
    return PortfolioDefaults(
        template, _allocation(gen, rev, com), bank_id, primary, None if taken is None else bool(taken),
        [int(top) + 1 for top in tops] if ids else None,
    )  # fmt: skip


# An allocation is immutable and checks its shares when made (a Python call per field): one per
# portfolio's split is made once.
_allocation = lru_cache(maxsize=256)(Allocation)


def group_names_taken(conn: sa.Connection, portfolio_id: int, names: Sequence[str]) -> set[str]:
    if len(names) == 1:
        return {r[0] for r in _NAME_TAKEN.rows(conn, pid=portfolio_id, name=names[0])}
    found: set[str] = set()
    for i in range(0, len(names), IN_CHUNK):
        q = sa.select(_g.name).where(_g.portfolio_id == portfolio_id, _g.name.in_(names[i : i + IN_CHUNK]))
        found.update(conn.execute(q).scalars())
    return found


# A kind's text, as its row stores it and a result names it: an enum's `.value` is two Python calls.
KIND_TEXT: dict[str, str] = {k: k.value for kinds in (AccountKind, GroupKind) for k in kinds}


def insert_groups(
    conn: sa.Connection, portfolio_id: int, template: str, plans: Sequence[GroupPlan], now: datetime
) -> None:
    """The groups, their sleeves (cash as funded, base capital the same) and their configuration rows."""
    group_rows: list[tuple[Any, ...]] = []
    account_rows: list[tuple[Any, ...]] = []
    config_rows: list[tuple[Any, ...]] = []
    for g in plans:
        a = g.allocation
        group_rows.append((g.group_id, portfolio_id, g.name, KIND_TEXT[g.kind], "ACTIVE", g.parent_group_id,
                           g.forked_from_account_id, a.gen_bps, a.rev_bps, a.com_bps, now))  # fmt: skip
        for s in g.sleeves:
            account_rows.append((s.account_id, portfolio_id, g.group_id, KIND_TEXT[s.kind], s.name, "ACTIVE",
                                 g.forked_from_account_id, s.buffer_bps, s.cash_cents, 0, 0, 0, s.cash_cents, now))  # fmt: skip
            config_rows.append((s.account_id, portfolio_id, template, "{}"))
    _GROUP_INSERT.tuples(conn, group_rows)
    _ACCOUNT_INSERT.tuples(conn, account_rows)
    _CONFIG_INSERT.tuples(conn, config_rows)


def debit_cash(conn: sa.Connection, portfolio_id: int, account_id: int, amount_cents: int) -> None:
    """Take cash out of an account's cached balance (its journal leg is written with it)."""
    _DEBIT.run(conn, pid=portfolio_id, aid=account_id, amount=amount_cents)
