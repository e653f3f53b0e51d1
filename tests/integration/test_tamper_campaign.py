"""A tamper campaign: edit the database directly, as its superuser, and `verify` must notice every time.

One populated database (the demo, a lifecycle run with forks, merges and reinvestment, trades with an
assignment, marks, tax, weeks, credentials, users, roles and API keys). Then, for every table of the
schema (but the few that `store/rowlog.NOT_AUDITED` names as no facts): an UPDATE of each column of
one row, a DELETE of that row and an INSERT of a copy under a new key — each in its own transaction,
verified on that transaction's connection and rolled back. Foreign keys and CHECK constraints are switched off for the edit (an attacker with the file or the superuser
can do that too), so no edit is refused by the database instead of being caught by verify.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from alluse.config import Settings, get_settings
from alluse.security.keyring import load_keyring
from alluse.services import access, brokers, groups, lifecycle, tax, webhooks, weeks
from alluse.services.demo import build_demo
from alluse.services.marks import record_marks
from alluse.services.orders import OrderIntent, place_order
from alluse.services.statements import import_statement
from alluse.services.trades import Fill, FillAction, record_fills
from alluse.services.verify import verify, verify_on
from alluse.store import rowlog
from alluse.store.citus import is_citus
from alluse.store.schema import metadata
from alluse.views import access as access_view

sys.path.insert(0, str(Path(__file__).parent.parent / "e2e"))
import lifecycle_scenario  # noqa: E402

PUT = "XYZ   270115P00050000"
DATA = Path(__file__).parents[1] / "data" / "ibkr"
IBKR_ACCOUNTS = ["IBKR:U9100001", "IBKR:U9100002", "IBKR:U9100003"]
MIN_EDITS = 60


def populate(engine: sa.Engine) -> None:
    list(build_demo(engine, "t"))
    lifecycle_scenario.build(engine, n_groups=3, n_merging=1)
    lifecycle.run(engine, "setup", "main", lifecycle_scenario.RUN_DAY)
    record_fills(
        engine,
        "t",
        "demo",
        [
            ("f1", Fill("A1-GEN", FillAction.STO, PUT, 2, "1.25", trade_date=date(2027, 1, 8))),
            ("f2", Fill("A1-GEN", FillAction.ASSIGN, PUT, 1, trade_date=date(2027, 1, 15))),
            ("f3", Fill("A1-GEN", FillAction.BTO, "XYZ", 100, "48.00", trade_date=date(2027, 1, 19))),
            ("f4", Fill("A1-GEN", FillAction.STC, "XYZ", 50, "52.00", trade_date=date(2027, 2, 1))),
            # Leaves A2-COM below its buffer: an alert.
            ("f5", Fill("A2-COM", FillAction.BTO, "XYZ", 700, "50.00", trade_date=date(2027, 2, 2))),
        ],
    )
    record_marks(engine, "t", "demo", "mk1", {"XYZ": "51.00"}, date(2027, 2, 5))
    tax.set_rates(engine, "t", "demo", "tr1", "30", "15", "15")
    tax.pay_tax(engine, "t", "demo", "tp1", "A1-GEN", 2027, 100_000, date(2027, 4, 15))
    weeks.set_week(engine, "t", "demo", "w1", "predict", "GREEN", date(2027, 1, 4))
    weeks.set_week(engine, "t", "demo", "w2", "confirm", "RED", date(2027, 1, 4))
    brokers.set_credentials(
        engine, "t", "demo", "IBKR:U1000001", "user=x;token=y", "cred1", load_keyring(get_settings())
    )
    access.create_user(engine, "owner1", "correct horse battery", is_admin=False)
    with engine.connect() as conn:
        pid = access_view.portfolio_id_for(conn, "demo")
    assert pid is not None
    access.grant_role(engine, "t", pid, "owner1", "owner", "g1")
    who = access.login(engine, "owner1", "correct horse battery")
    place_order(engine, "t", "demo", "o1", OrderIntent("A2-REV", "BTO", "XYZ", 10, on=date(2027, 2, 8)), Settings())
    groups.open_group(engine, "t", "main", "g-ibkr", groups.group_opening(0, IBKR_ACCOUNTS))
    import_statement(engine, "t", "main", (DATA / "flex_statement.xml").read_bytes())
    webhooks.register(engine, "t", "demo", "https://hooks.example/a", ["alert.*"], "wh1", load_keyring(get_settings()))
    access.create_api_key(engine, who, "ci", [(pid, "viewer")], "k1")
    second = access.create_api_key(engine, who, "old", [(pid, "trader")], "k2")
    access.revoke_api_key(engine, who, second["api_key_id"], "k3")


# --- the edits -----------------------------------------------------------------------------------


def _changed(value: Any, column: sa.Column) -> Any:
    """A different value of the column's type (within its length, so the database takes it)."""
    if value is None:
        python = _python_type(column)
        return {
            int: 7_000_003 if _keyed(column) else 7,
            str: "X",
            bool: True,
            date: date(2031, 1, 6),
            datetime: datetime(2031, 1, 6, 12, 0),
            bytes: b"x",
        }[python]
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1_000_003 if _keyed(column) else value + 1
    if isinstance(value, datetime):
        return value + timedelta(seconds=1)
    if isinstance(value, date):
        return value + timedelta(days=1000)
    if isinstance(value, (bytes, memoryview)):
        return bytes(value) + b"x"
    if isinstance(value, str):
        return value[:-1] + ("X" if value[-1:] != "X" else "Y") if value else "X"
    raise TypeError(f"{column}: {type(value).__name__}")


def _keyed(column: sa.Column) -> bool:
    """Part of a key: a changed value must not collide with another row's."""
    if column.primary_key or column.unique:
        return True
    return any(column.name in u.columns for u in _unique_sets(column.table))


def _unique_sets(table: sa.Table) -> list[Any]:
    constraints = [c for c in table.constraints if isinstance(c, sa.UniqueConstraint)]
    return constraints + [i for i in table.indexes if i.unique]


def _python_type(column: sa.Column) -> type:
    if isinstance(column.type, sa.Boolean):
        return bool
    if isinstance(column.type, sa.DateTime):
        return datetime
    if isinstance(column.type, sa.Date):
        return date
    if isinstance(column.type, sa.LargeBinary):
        return bytes
    if isinstance(column.type, (sa.Integer, sa.BigInteger)):
        return int
    return str


def _pk_where(table: sa.Table, row: sa.Row) -> Any:
    return sa.and_(*[c == row._mapping[c.name] for c in table.primary_key.columns])


def tampered_tables() -> list[sa.Table]:
    """Every table verify vouches for: the covered ones and the audit chain's own."""
    return [t for t in metadata.sorted_tables if t.name not in rowlog.NOT_AUDITED]


def edits(tables: list[sa.Table] | None = None) -> Iterator[tuple[str, str]]:
    """(table, edit) for every table verify vouches for (or those given): each column, then delete,
    then insert."""
    for table in tampered_tables() if tables is None else tables:
        for column in table.columns:
            yield table.name, f"update {column.name}"
        yield table.name, "delete"
        yield table.name, "insert"


def _apply(conn: sa.Connection, table: sa.Table, edit: str, last: bool = False) -> str:
    """The edit on the table's first row by key (`last`: its last)."""
    order = [c.desc() if last else c for c in table.primary_key.columns]
    row = conn.execute(sa.select(table).order_by(*order).limit(1)).first()
    assert row is not None, f"the populated database has no {table.name} row to tamper with"
    where = _pk_where(table, row)
    if edit == "delete":
        conn.execute(table.delete().where(where))
        return f"deleted {table.name} {tuple(row)[:3]}"
    if edit == "insert":
        values = dict(row._mapping)
        for c in table.primary_key.columns:
            values[c.name] = _changed(values[c.name], c)
        for u in _unique_sets(table):
            for c in u.columns:
                if not c.primary_key and values[c.name] is not None:
                    values[c.name] = _changed(values[c.name], c)
        conn.execute(table.insert().values(values))
        return f"inserted a copy of {table.name} {tuple(row)[:3]}"
    column = table.c[edit.removeprefix("update ")]
    new = _changed(row._mapping[column.name], column)
    conn.execute(table.update().where(where).values({column.name: new}))
    return f"set {table.name}.{column.name} = {new!r}"


def _unconstrained(conn: sa.Connection, table: sa.Table) -> None:
    """What an attacker with the superuser does first: foreign keys and CHECKs off for this table."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA ignore_check_constraints = ON")
        return
    conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
    for (name,) in conn.exec_driver_sql(
        "SELECT conname FROM pg_constraint WHERE conrelid = %(t)s::regclass AND contype = 'c'", {"t": table.name}
    ):
        conn.exec_driver_sql(f'ALTER TABLE {table.name} DROP CONSTRAINT "{name}"')


def _edit(conn: sa.Connection, table: sa.Table, edit: str, last: bool = False) -> str | None:
    """The edit as such; where a constraint refuses it, the same edit with the constraints off (on
    PostgreSQL dropping a CHECK is DDL, so it is done only where needed)."""
    if conn.dialect.name == "sqlite":
        _unconstrained(conn, table)
        return _apply(conn, table, edit, last)
    if is_citus(conn):  # the attacker's DDL, then verify's reads of the reference tables: one connection
        conn.exec_driver_sql("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")
    conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
    try:
        with conn.begin_nested():
            return _apply(conn, table, edit, last)
    except sa.exc.NotSupportedError as exc:
        # Citus refuses to move a row to another shard (its distribution column) whatever the role.
        if "modifying the partition value" not in str(exc):
            raise
        return None
    except sa.exc.IntegrityError:
        _unconstrained(conn, table)
        return _apply(conn, table, edit, last)


def run_campaign(engine: sa.Engine, tables: list[sa.Table] | None = None, last: bool = False) -> list[str]:
    """Every edit (of the tables given, on their last row by key if `last`) in its own rolled-back
    transaction; returns the edits verify did NOT catch."""
    missed = []
    count = 0
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            # Outside any transaction, or SQLite ignores it.
            conn.connection.dbapi_connection.execute("PRAGMA foreign_keys = OFF")  # type: ignore[union-attr]
        for name, edit in edits(tables):
            table = metadata.tables[name]
            with conn.begin() as tx:
                what = _edit(conn, table, edit, last)
                if what is None:  # an edit the store itself cannot make
                    tx.rollback()
                    continue
                report = verify_on(conn)
                named = [f for f in report.findings if f.table is not None]
                if report.ok or not named:
                    missed.append(f"{what}: {'not detected' if report.ok else report.problems}")
                tx.rollback()
            count += 1
        if conn.dialect.name == "sqlite":
            raw = conn.connection.dbapi_connection
            raw.execute("PRAGMA ignore_check_constraints = OFF")  # type: ignore[union-attr]
            raw.execute("PRAGMA foreign_keys = ON")  # type: ignore[union-attr]
    print(f"tamper campaign on {engine.dialect.name}: {count} edits, {count - len(missed)} detected")
    assert count >= MIN_EDITS
    return missed


def test_tamper_campaign(engine: sa.Engine) -> None:
    populate(engine)
    report = verify(engine)
    assert report.ok, report.problems
    with engine.connect() as conn:
        empty = [
            t.name
            for t in tampered_tables()
            if conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() == 0
        ]
    # A table this population leaves empty is a table the campaign cannot prove covered.
    assert not empty, f"no rows to tamper with in: {', '.join(empty)} (extend populate())"
    assert {t.name for t in rowlog.covered_tables()} | set(rowlog.EXEMPT) == set(metadata.tables)
    missed = run_campaign(engine)
    assert not missed, "\n".join(missed)
    assert verify(engine).ok  # every edit was rolled back
