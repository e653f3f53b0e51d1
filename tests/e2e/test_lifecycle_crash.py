"""Kill a running `alluse lifecycle run` at 50+ random points (SIGKILL: no cleanup, no rollback
handler), restart it, and require the final state to equal an uninterrupted run's: same accounts and
groups, same balances and earmarks to the cent, the same actions once each, and `verify` clean.

The runs are real processes forked from the test (so starting one costs milliseconds, not a fresh
interpreter) running the CLI command itself with one family per transaction, which gives the run
many commit points to be killed between and inside. Kill times are drawn over what is left of the
run (now and then during start-up), so nearly every kill interrupts real work.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import time
from pathlib import Path

import sqlalchemy as sa
from lifecycle_scenario import RUN_DAY, build, snapshot

from alluse.store.schema import lifecycle_actions, metadata

KILLS = 50
MAX_KILLS_PER_ROUND = 10


GROUPS, MERGING = 12, 3


def _reset(engine: sa.Engine, template: Path) -> None:
    if engine.dialect.name == "sqlite":
        engine.dispose()
        shutil.copy(template, engine.url.database)  # type: ignore[arg-type]
        for suffix in ("-wal", "-shm"):
            Path(f"{engine.url.database}{suffix}").unlink(missing_ok=True)
    else:
        names = ", ".join(t.name for t in metadata.sorted_tables)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    build(engine, GROUPS, MERGING)
    engine.dispose()  # no connection may cross the fork


def _start(url: str) -> int:
    pid = os.fork()
    if pid == 0:  # the child: the CLI command, then out without running any of pytest's teardown
        code = 1
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            from alluse.cli.main import app

            args = ["--db", url, "-p", "main", "lifecycle", "run", "--as-of", RUN_DAY.isoformat()]
            app([*args, "--families-per-batch", "1"], standalone_mode=False)
            code = 0
        finally:
            os._exit(code)
    return pid


def _wait(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _actions(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(lifecycle_actions)).scalar_one()
    engine.dispose()
    return n


def _kill_when(engine: sa.Engine, pid: int, target: int, rng: random.Random) -> bool:
    """SIGKILL the run once `target` actions are committed, plus a random few milliseconds (so the
    kill lands anywhere: between transactions, inside one, in a commit). False if it finished first."""
    count = sa.select(sa.func.count()).select_from(lifecycle_actions)
    with engine.connect() as conn:  # opened after the fork, closed before the next one
        while conn.execute(count).scalar_one() < target:
            conn.rollback()
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                engine.dispose()
                return False
            time.sleep(0.001)
    engine.dispose()
    time.sleep(rng.uniform(0, 0.01))
    if os.waitpid(pid, os.WNOHANG) != (0, 0):
        return False
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return True


def test_killed_runs_resume_to_the_uninterrupted_result(engine: sa.Engine, sqlite_template: Path) -> None:
    url = engine.url.render_as_string(hide_password=False)
    _reset(engine, sqlite_template)
    before = _actions(engine)
    assert _wait(_start(url)) == 0
    expected = snapshot(engine)
    final = expected["counts"]["lifecycle_actions"]
    assert final - before == 28  # the scenario's merges, forks and reinvestments
    assert _wait(_start(url)) == 0
    assert snapshot(engine) == expected  # a repeated run changes nothing
    engine.dispose()

    rng = random.Random(20261231)
    kills = partial = rounds = 0
    while kills < KILLS:
        rounds += 1
        _reset(engine, sqlite_template)
        done = before
        for _ in range(MAX_KILLS_PER_ROUND):
            pid = _start(url)
            if rng.random() < 0.1:  # now and then while it starts up
                time.sleep(rng.uniform(0, 0.05))
                killed = os.waitpid(pid, os.WNOHANG) == (0, 0)
                if killed:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
            else:
                killed = _kill_when(engine, pid, done + rng.randint(1, 3), rng)
            if not killed:
                break
            kills += 1
            done = _actions(engine)
            partial += before < done < final
            assert before <= done <= final  # never more than the uninterrupted run, even half-way
            if done == final:
                break
        assert _wait(_start(url)) == 0  # the restart finishes the work
        assert snapshot(engine) == expected, f"round {rounds} (after {kills} kills) differs"
        engine.dispose()
    assert kills >= KILLS
    assert partial >= KILLS // 2, f"only {partial} of {kills} kills landed between the run's first and last commit"
