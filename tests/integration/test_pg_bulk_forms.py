"""PostgreSQL's bulk forms of a write store what the statement row by row stores: COPY in binary
format (every column type of the schema), and the cash of many accounts in one UPDATE."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import sqlalchemy as sa

from alluse.services import groups
from alluse.services.portfolios import create_portfolio
from alluse.store import repo, rowlog
from alluse.store.prepared import COPY_MIN_ROWS, _binary_types, copy_rows
from alluse.store.schema import accounts, metadata

_KINDS = sa.MetaData()
_EVERY_KIND = sa.Table(
    "bulk_forms_kinds",
    _KINDS,
    sa.Column("n", sa.Integer, primary_key=True),
    sa.Column("big", sa.BigInteger),
    sa.Column("small", sa.SmallInteger),
    sa.Column("short", sa.String(20)),
    sa.Column("long", sa.Text),
    sa.Column("at", sa.DateTime(timezone=True)),
    sa.Column("day", sa.Date),
    sa.Column("flag", sa.Boolean),
    sa.Column("blob", sa.LargeBinary),
    prefixes=["TEMPORARY"],
)


def _rows(n: int) -> list[tuple]:
    east = timezone(timedelta(hours=5, minutes=30))
    texts = ["", "plain", "tab\there", "new\nline", "back\\slash", "quote'\"", "ünïcødé €", "\\N", "end\r"]
    return [
        (
            i,
            None if i % 7 == 0 else (-1) ** i * (2**62 + i),
            None if i % 5 == 0 else (-1) ** i * (2**15 - 1 - i),
            None if i % 6 == 0 else texts[i % len(texts)][:20],
            None if i % 4 == 0 else texts[i % len(texts)] * (i % 3 + 1),
            None if i % 9 == 0 else datetime(2026, 11, 30, 12, 0, i % 60, 123456, tzinfo=UTC if i % 2 else east),
            None if i % 8 == 0 else date(2026, 1, 1) + timedelta(days=i),
            None if i % 3 == 0 else bool(i % 2),
            None if i % 10 == 0 else bytes(range(i % 256)),
        )
        for i in range(1, n + 1)
    ]


def test_copy_in_binary_stores_what_insert_stores(pg: sa.Engine) -> None:
    rows = _rows(3 * COPY_MIN_ROWS)
    columns = [c.name for c in _EVERY_KIND.columns]
    assert _binary_types(_EVERY_KIND, tuple(columns))
    with pg.connect() as conn, conn.begin():
        _EVERY_KIND.create(conn)
        copy_rows(conn, _EVERY_KIND, rows, columns)
        copied = conn.execute(sa.select(_EVERY_KIND).order_by(_EVERY_KIND.c.n)).all()
        conn.execute(sa.delete(_EVERY_KIND))
        conn.execute(sa.insert(_EVERY_KIND), [dict(zip(columns, r, strict=True)) for r in rows])
        inserted = conn.execute(sa.select(_EVERY_KIND).order_by(_EVERY_KIND.c.n)).all()
        conn.rollback()
    assert copied == inserted
    assert [tuple(r) for r in copied] == rows


def test_every_table_is_copied_in_binary() -> None:
    """A column type the binary form does not know would send its table back to COPY in text."""
    for table in metadata.sorted_tables:
        assert _binary_types(table, tuple(c.name for c in table.columns)), table.name


def test_cash_of_many_accounts_in_one_update(pg: sa.Engine) -> None:
    create_portfolio(pg, "t", "bulk-cash", "t:bulk-cash")
    groups.open_groups(pg, "t", "bulk-cash", [(f"g{i}", groups.group_opening(10_000_00)) for i in range(40)])
    with pg.connect() as conn:
        pid, *_ = conn.execute(sa.text("SELECT id FROM portfolio_directory WHERE name = 'bulk-cash'")).one()
        rows = repo.load_accounts(conn, pid, [r[0] for r in conn.execute(
            sa.select(accounts.c.id).where(accounts.c.portfolio_id == pid, accounts.c.kind != "EXT")
        )])  # fmt: skip
    changed = [replace(a, cash=a.cash + 17 * i, base_capital=a.base_capital - i) for i, a in enumerate(rows.values())]
    changed.append(replace(changed[0], cash=5))  # the same account twice: the last one stands
    assert len(changed) >= COPY_MIN_ROWS

    def written(bulk: bool) -> tuple[dict[int, tuple[int, int]], dict]:
        with pg.connect() as conn, conn.begin():
            with rowlog.recording(conn, pid) as cap:
                if bulk:
                    repo.apply_cash(conn, changed)
                else:
                    repo._CASH_UPDATE.many(
                        conn, [{"pid": a.portfolio_id, "aid": a.id, "cash": a.cash, "base": a.base_capital}
                               for a in changed],
                    )  # fmt: skip
                manifest = cap.manifest()
            stored = conn.execute(
                sa.select(accounts.c.id, accounts.c.cash_cents, accounts.c.base_capital_cents).where(
                    accounts.c.portfolio_id == pid
                )
            ).all()
            conn.rollback()
        return {r[0]: (r[1], r[2]) for r in stored}, manifest

    one_by_one, one_by_one_manifest = written(bulk=False)
    together, together_manifest = written(bulk=True)
    assert together == one_by_one
    assert together_manifest == one_by_one_manifest
    assert together[changed[0].id] == (5, changed[0].base_capital)
