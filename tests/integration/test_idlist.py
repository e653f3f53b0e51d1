"""`in_ids`: a list of ids bound as one parameter selects exactly what `IN (…)` selects, for any number
of ids (past SQLite's parameter limit too), and SQLite still looks the ids up by index."""

from __future__ import annotations

import sqlalchemy as sa

from alluse.services import groups
from alluse.services.portfolios import create_portfolio
from alluse.store.idlist import in_ids
from alluse.store.prepared import Prepared
from alluse.store.schema import accounts, portfolios

_a = accounts.c


def _names(conn: sa.Connection, pid: int, ids: list[int]) -> list[str]:
    q = sa.select(_a.name).where(_a.portfolio_id == pid, in_ids(_a.id)).order_by(_a.name)
    return list(conn.execute(q, {"ids": ids}).scalars())


def test_in_ids_selects_what_in_selects(engine: sa.Engine) -> None:
    create_portfolio(engine, "t", "t", "t:portfolio")
    groups.open_groups(engine, "t", "t", [(f"g{i}", groups.group_opening(3_000_000)) for i in range(4)])
    with engine.connect() as conn:
        pid = conn.execute(sa.select(portfolios.c.id)).scalar_one()
        every = sorted(conn.execute(sa.select(_a.id)).scalars())
        some = every[::3]
        expected = sorted(conn.execute(sa.select(_a.name).where(_a.id.in_(some))).scalars())
        assert _names(conn, pid, some) == expected
        assert _names(conn, pid, []) == []
        # Ids that name nothing, and far more of them than SQLite takes as separate parameters.
        assert _names(conn, pid, [*some, *range(10**6, 10**6 + 40_000)]) == expected
        prepared = Prepared(sa.select(_a.name).where(_a.portfolio_id == sa.bindparam("pid"), in_ids(_a.id)))
        assert sorted(r[0] for r in prepared.rows(conn, pid=pid, ids=some)) == expected


def test_sqlite_looks_the_ids_up_by_index(sqlite_engine: sa.Engine) -> None:
    q = sa.select(_a.name).where(_a.portfolio_id == 1, in_ids(_a.id))
    sql = str(q.compile(dialect=sqlite_engine.dialect))
    assert "= 1" not in sql.split("json_each")[-1]  # not `(… IN …) = 1`, which no index serves
    with sqlite_engine.connect() as conn:
        plan = " ".join(str(r) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", (1, "[1, 2]")))
    assert "SEARCH accounts" in plan, plan
