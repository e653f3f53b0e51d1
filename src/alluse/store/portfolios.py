"""Reading and writing portfolio rows: the directory of names and creation keys, and the portfolio itself."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa

from alluse.domain.accounts import Allocation
from alluse.store.schema import portfolio_directory, portfolios


class DirectoryEntry(NamedTuple):
    id: int
    name: str
    creation_key: str


def portfolio_by_key_or_name(conn: sa.Connection, key: str, name: str) -> DirectoryEntry | None:
    d = portfolio_directory.c
    row = conn.execute(
        sa.select(d.id, d.name, d.creation_key).where(sa.or_(d.creation_key == key, d.name == name))
    ).first()
    return None if row is None else DirectoryEntry(row.id, row.name, row.creation_key)


def insert_portfolio(
    conn: sa.Connection, pid: int, name: str, key: str, template: str, alloc: Allocation, now: datetime
) -> None:
    conn.execute(
        portfolios.insert().values(
            id=pid,
            name=name,
            creation_key=key,
            template=template,
            alloc_gen_bps=alloc.gen_bps,
            alloc_rev_bps=alloc.rev_bps,
            alloc_com_bps=alloc.com_bps,
            created_at=now,
        )
    )


def portfolio_name(conn: sa.Connection, pid: int) -> str:
    d = portfolio_directory.c
    return str(conn.execute(sa.select(d.name).where(d.id == pid)).scalar_one())
