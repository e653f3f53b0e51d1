"""Hash partitioning on PostgreSQL: one account's postings, one portfolio's audit log, one partition."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from alluse.domain.errors import InvalidInput
from alluse.services import cash, groups
from alluse.services.portfolios import create_portfolio
from alluse.store.partitioning import DEFAULT_PARTITIONS, partition_count, postgres_primary_key
from alluse.store.schema import metadata

pytestmark = pytest.mark.postgres


def _partitions(conn: sa.Connection, parent: str) -> list[str]:
    return list(
        conn.exec_driver_sql(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %(p)s::regclass ORDER BY 1",
            {"p": parent},
        ).scalars()
    )


def _scanned(conn: sa.Connection, sql: str, params: dict) -> set[str]:
    plan = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {sql}", params).scalar_one()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    found: set[str] = set()

    def walk(node: dict) -> None:
        if "Relation Name" in node:
            found.add(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return found


def test_declared_tables_are_partitioned_with_the_default_count(pg: sa.Engine) -> None:
    declared = {t.name: t.info["partition_by"] for t in metadata.tables.values() if "partition_by" in t.info}
    assert declared == {
        "postings": "account_id",
        "audit_log": "portfolio_id",
        "lots": "account_id",
        "lot_closes": "account_id",
        "positions": "account_id",
    }
    with pg.connect() as conn:
        for table, column in declared.items():
            key = conn.exec_driver_sql("SELECT pg_get_partkeydef(%(t)s::regclass)", {"t": table}).scalar_one()
            assert key == f"HASH ({column})"
            assert len(_partitions(conn, table)) == DEFAULT_PARTITIONS


def test_single_account_and_single_portfolio_queries_touch_one_partition(pg: sa.Engine) -> None:
    create_portfolio(pg, "t", "main", "k:p")
    opened = groups.open_groups(pg, "t", "main", [(f"g{i}", groups.group_opening(1_000_000)) for i in range(20)])
    gens = [g["accounts"]["GEN"]["account_id"] for g in opened]
    cash.move_cash(pg, "t", "main", [(f"w{i}", cash.withdrawal(a, 1_000)) for i, a in enumerate(gens)])
    with pg.connect() as conn:
        conn.exec_driver_sql("ANALYZE postings; ANALYZE audit_log")
        # Twenty accounts spread over several partitions, yet each account's query reads exactly one.
        spread = conn.exec_driver_sql("SELECT count(DISTINCT tableoid) FROM postings").scalar_one()
        assert spread > 1
        for account_id in gens[:5]:
            scanned = _scanned(
                conn, "SELECT sum(amount_cents) FROM postings WHERE account_id = %(a)s", {"a": account_id}
            )
            assert len(scanned) == 1 and scanned.pop().startswith("postings_p")
        pid = conn.exec_driver_sql("SELECT id FROM portfolios").scalar_one()
        scanned = _scanned(conn, "SELECT max(seq) FROM audit_log WHERE portfolio_id = %(p)s", {"p": pid})
        assert len(scanned) == 1 and scanned.pop().startswith("audit_log_p")
        for table in ("lots", "lot_closes", "positions"):
            scanned = _scanned(conn, f"SELECT count(*) FROM {table} WHERE account_id = %(a)s", {"a": gens[0]})
            assert len(scanned) == 1 and scanned.pop().startswith(f"{table}_p")
        # Without the key every partition is a candidate: the pruning above is real.
        assert len(_scanned(conn, "SELECT sum(amount_cents) FROM postings", {})) == DEFAULT_PARTITIONS


def test_partitioned_primary_keys_carry_partition_key_and_portfolio(pg: sa.Engine) -> None:
    with pg.connect() as conn:
        pk = conn.exec_driver_sql(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'pk_postings'"
        ).scalar_one()
    assert pk == "PRIMARY KEY (id, account_id, portfolio_id)"
    assert postgres_primary_key(["portfolio_id", "seq"], "portfolio_id") == ["portfolio_id", "seq"]


def test_partition_count_is_chosen_at_install(monkeypatch: pytest.MonkeyPatch, pg_engine: sa.Engine) -> None:
    from alluse.store.db import make_engine, migrate

    monkeypatch.setenv("ALLUSE_PARTITIONS", "4")
    assert partition_count() == 4
    url = pg_engine.url.set(database=f"{pg_engine.url.database}_parts")
    admin = sa.create_engine(pg_engine.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{url.database}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{url.database}"')
    scratch = make_engine(url.render_as_string(hide_password=False))
    try:
        migrate(scratch)
        with scratch.connect() as conn:
            assert len(_partitions(conn, "postings")) == 4
            assert len(_partitions(conn, "audit_log")) == 4
    finally:
        scratch.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{url.database}"')
        admin.dispose()


@pytest.mark.parametrize("bad", ["0", "abc", "1025", "-3"])
def test_bad_partition_count_is_a_typed_error(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("ALLUSE_PARTITIONS", bad)
    with pytest.raises(InvalidInput, match="ALLUSE_PARTITIONS"):
        partition_count()


def test_id_blocks_never_overlap_with_concurrent_writers(pg: sa.Engine) -> None:
    """Bulk paths reserve consecutive id blocks while other portfolios draw single ids from the same
    sequence; no id may be handed out twice."""
    import threading

    from alluse.store.repo import allocate_ids
    from alluse.store.schema import transfers

    blocks: list[range] = []
    singles: list[int] = []
    stop = threading.Event()

    def single_writer() -> None:
        # What a one-move unit of work in another portfolio does: draw one id, then insert (the
        # insert's table lock is taken explicitly here, without a row to insert).
        with pg.connect() as conn:
            while not stop.is_set():
                singles.append(allocate_ids(conn, transfers, 1))
                conn.exec_driver_sql("LOCK TABLE transfers IN ROW EXCLUSIVE MODE")
                conn.commit()

    t = threading.Thread(target=single_writer)
    t.start()
    try:
        for _ in range(30):
            with pg.begin() as conn:
                first = allocate_ids(conn, transfers, 500)
            blocks.append(range(first, first + 500))
    finally:
        stop.set()
        t.join()
    taken = [i for b in blocks for i in b]
    assert len(set(taken)) == len(taken)
    assert not set(taken) & set(singles)
    assert len(singles) > 0


def test_busy_table_fallback_works_for_the_app_role(
    pg: sa.Engine, pg_app_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fallback that holds off inserts needs a lock the append-only role may not take itself."""
    from alluse.store import ids, repo, scope
    from alluse.store.schema import transfers

    create_portfolio(pg, "t", "main", "k:main")
    monkeypatch.setattr(ids, "ID_BLOCK_FAST_TRIES", 0)
    with pg_app_engine.connect() as conn:
        scope.resolve_portfolio(conn, "main")
        first = repo.allocate_ids(conn, transfers, 50)
        mode = conn.exec_driver_sql(
            "SELECT mode FROM pg_locks WHERE relation = 'transfers'::regclass AND pid = pg_backend_pid() "
            "AND mode = 'ShareRowExclusiveLock'"
        ).scalar_one()
        conn.rollback()
    assert first >= 1 and mode == "ShareRowExclusiveLock"
    with pg_app_engine.connect() as conn, pytest.raises(sa.exc.DBAPIError, match="permission denied"):
        conn.exec_driver_sql("LOCK TABLE transfers IN SHARE ROW EXCLUSIVE MODE")
