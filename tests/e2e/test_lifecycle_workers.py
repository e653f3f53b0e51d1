"""On PostgreSQL (and Citus) several `alluse lifecycle run` processes started at once for one
portfolio and day leave exactly what one leaves: one sweeps (an advisory lock on the portfolio and
the day), the others leave it to that one, and every action is keyed, so none is applied twice."""

from __future__ import annotations

import os
from datetime import date

import sqlalchemy as sa
from lifecycle_scenario import RUN_DAY, build, snapshot

from alluse.store.schema import audit_log
from tests.conftest import _truncate_pg

WORKERS = 4


def _reset(engine: sa.Engine) -> None:
    _truncate_pg(engine)
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


def test_four_workers_equal_one(pg: sa.Engine) -> None:
    url = pg.url.render_as_string(hide_password=False)
    _reset(pg)
    _run(url, ["solo"])
    one = snapshot(pg)
    _reset(pg)
    _run(url, [f"worker-{i}" for i in range(WORKERS)])
    four = snapshot(pg)
    assert four == one
    assert one["counts"]["lifecycle_actions"] > 50
    with pg.connect() as conn:
        busy = conn.execute(
            sa.select(audit_log.c.actor, sa.func.count())
            .where(audit_log.c.action == "lifecycle", audit_log.c.actor != "setup")  # not the scenario's own
            .group_by(audit_log.c.actor)
        ).all()
    pg.dispose()
    # Every action by one of them: the others found the sweep taken, or came after it had ended and
    # found every action applied.
    assert len(busy) == 1, f"the sweep was split or repeated: {busy}"


def test_a_worker_finding_the_sweep_taken_leaves_it_to_the_one_sweeping(pg: sa.Engine) -> None:
    from typer.testing import CliRunner

    from alluse.cli.main import app
    from alluse.services import lifecycle

    url = pg.url.render_as_string(hide_password=False)
    _reset(pg)
    with lifecycle._sweeping(pg, "main", RUN_DAY) as (_pid, mine):
        assert mine
        idle = lifecycle.run(pg, "late", "main", RUN_DAY)
        said = CliRunner().invoke(app, ["--db", url, "-p", "main", "lifecycle", "run", "--as-of", RUN_DAY.isoformat()])
        assert said.exit_code == 0, said.output
        assert "another worker is sweeping this portfolio as of that day; this one did nothing" in said.output
        # Another day of the same portfolio is another sweep: not held up by this one.
        other = lifecycle.run(pg, "other-day", "main", date(2026, 11, 30))
    assert idle.busy and idle.families == 0 and not idle.applied and not idle.waiting
    assert not other.busy
    with pg.connect() as conn:
        held = conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        ).scalar()  # this database's only: another one's sessions are not this test's
    assert held == 0  # the late worker took nothing it kept; the lock went with the sweep's transaction
    done = lifecycle.run(pg, "after", "main", RUN_DAY)
    assert done.applied and not done.busy
    assert not lifecycle.run(pg, "again", "main", RUN_DAY).applied  # and never twice
