"""The benchmark's concurrent clients (`bench/run._in_processes`): the clock runs until the last
client has done its work, a client that is done lets go of its connections only after that, and a
client that fails fails the measurement instead of leaving the others waiting."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from alluse.bench.run import _in_processes


def _worker(out: str, client: int, ready: Any, go: Any) -> Any:
    """Client 0 is done at once, client 1 after 0.3 s; each notes when it did its work and when it
    let go of its connections."""
    ready.wait()
    go.wait()
    if client == 1:
        time.sleep(0.3)
    worked = time.perf_counter()

    def close() -> None:
        Path(out, f"{client}").write_text(f"{worked} {time.perf_counter()}")

    return close


def test_the_clock_runs_to_the_last_client_and_teardown_waits_for_it(tmp_path: Path) -> None:
    elapsed = _in_processes(_worker, str(tmp_path), clients=2)
    assert 0.3 <= elapsed < 2.0
    (fast_worked, fast_closed), (slow_worked, slow_closed) = (
        map(float, Path(tmp_path, f"{c}").read_text().split()) for c in (0, 1)
    )
    assert slow_worked - fast_worked >= 0.3
    # The fast client's teardown waited for the slow one to finish its work.
    assert fast_closed >= slow_worked
    assert slow_closed >= slow_worked


def _fails_late(out: str, client: int, ready: Any, go: Any) -> Any:
    ready.wait()
    go.wait()
    if client == 1:
        raise RuntimeError("client 1 broke")
    return lambda: Path(out, f"{client}").write_text("closed")


def _fails_early(out: str, client: int, ready: Any, go: Any) -> Any:
    if client == 1:
        raise RuntimeError("client 1 broke before it was ready")
    ready.wait()
    go.wait()
    return lambda: Path(out, f"{client}").write_text("closed")


@pytest.mark.parametrize("target", [_fails_late, _fails_early])
def test_a_failing_client_fails_the_measurement_and_nobody_waits_for_it(tmp_path: Path, target: Any) -> None:
    t = time.perf_counter()
    with pytest.raises(RuntimeError, match="a benchmark client failed"):
        _in_processes(target, str(tmp_path), clients=3)
    assert time.perf_counter() - t < 30
    if target is _fails_late:  # the others were done: they still let go of their connections
        assert sorted(p.name for p in tmp_path.iterdir()) == ["0", "2"]
