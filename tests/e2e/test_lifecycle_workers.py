"""On PostgreSQL several `alluse lifecycle run` processes share one sweep: families are claimed with
FOR NO KEY UPDATE SKIP LOCKED, every action is planned again under the portfolio lock and keyed, so
4 workers leave exactly what 1 worker leaves, and the work is really spread between them."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa
from lifecycle_scenario import RUN_DAY, build, snapshot

from alluse.store.schema import audit_log, metadata

WORKERS = 4


def _reset(engine: sa.Engine) -> None:
    names = ", ".join(t.name for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    build(engine)
    engine.dispose()  # no connection may cross the fork


def _start(url: str, worker: str) -> int:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            os.environ["ALLUSE_ACTOR"] = worker
            from alluse.cli.main import app
            from alluse.config import get_settings

            get_settings.cache_clear()
            args = ["--db", url, "-p", "main", "lifecycle", "run", "--as-of", RUN_DAY.isoformat()]
            app([*args, "--families-per-batch", "1"], standalone_mode=False)
            code = 0
        finally:
            os._exit(code)
    return pid


def _run(url: str, workers: list[str]) -> None:
    pids = [_start(url, w) for w in workers]
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.postgres
def test_four_workers_equal_one(pg_engine: sa.Engine) -> None:
    url = pg_engine.url.render_as_string(hide_password=False)
    _reset(pg_engine)
    _run(url, ["solo"])
    one = snapshot(pg_engine)
    _reset(pg_engine)
    _run(url, [f"worker-{i}" for i in range(WORKERS)])
    four = snapshot(pg_engine)
    assert four == one
    assert one["counts"]["lifecycle_actions"] > 50
    with pg_engine.connect() as conn:
        busy = conn.execute(
            sa.select(audit_log.c.actor, sa.func.count())
            .where(audit_log.c.action == "lifecycle")
            .group_by(audit_log.c.actor)
        ).all()
    pg_engine.dispose()
    assert len(busy) >= 2, f"one worker did everything: {busy}"


def _all_claimed_held(engine: sa.Engine, pid: int) -> bool:
    from alluse.services.lifecycle import SWEEP_ALL_CLAIMED

    with engine.connect() as conn:
        free = conn.execute(sa.select(sa.func.pg_try_advisory_lock_shared(SWEEP_ALL_CLAIMED, pid))).scalar()
        if free:
            conn.execute(sa.select(sa.func.pg_advisory_unlock_shared(SWEEP_ALL_CLAIMED, pid))).all()
    return not free


def _gate_held(engine: sa.Engine, pid: int) -> bool:
    """Whether any session holds the sweep's gate (an advisory lock on two keys: classid, objid)."""
    from alluse.services.lifecycle import SWEEP_GATE

    with engine.connect() as conn:
        held = conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND classid = :k AND objid = :p AND objsubid = 2"
            ),
            {"k": SWEEP_GATE, "p": pid},
        ).scalar()
    return bool(held)


@pytest.mark.postgres
def test_a_worker_holding_every_family_lets_the_others_leave_without_looking(pg_engine: sa.Engine) -> None:
    from alluse.services import lifecycle
    from alluse.services.lifecycle import SWEEP_ALL_CLAIMED

    _reset(pg_engine)
    with pg_engine.connect() as conn:
        pid = conn.execute(sa.text("SELECT id FROM portfolio_directory WHERE name = 'main'")).scalar_one()
    # A worker that claimed every family says so until its sweep ends (seen here between batches).
    seen: list[bool] = []
    report = lifecycle.run(
        pg_engine, "solo", "main", RUN_DAY, progress=lambda *_: seen.append(_all_claimed_held(pg_engine, pid))
    )
    assert report.applied and seen and all(seen)
    assert not _all_claimed_held(pg_engine, pid)  # let go at its end

    # While one does, another worker has nothing to do and does not look.
    _reset(pg_engine)
    with pg_engine.connect() as holder:
        holder.execute(sa.select(sa.func.pg_advisory_lock(SWEEP_ALL_CLAIMED, pid))).all()
        idle = lifecycle.run(pg_engine, "late", "main", RUN_DAY)
        holder.execute(sa.select(sa.func.pg_advisory_unlock(SWEEP_ALL_CLAIMED, pid))).all()
    assert idle.families == 0 and not idle.applied
    assert not _gate_held(pg_engine, pid)  # it opened the gate again as it left
    assert lifecycle.run(pg_engine, "after", "main", RUN_DAY).applied
