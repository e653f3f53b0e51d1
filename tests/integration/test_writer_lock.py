"""SQLite's writers queue on one lock across processes (several `alluse serve` workers), not only
across the threads of one process."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from alluse.store.db import make_engine, writer_lock

TRY_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    print("held")
else:
    print("free")
"""


def _other_process_sees(lock_file: Path) -> str:
    return subprocess.run(
        [sys.executable, "-c", TRY_LOCK, str(lock_file)], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_a_writer_holds_the_lock_against_other_processes_until_it_is_done(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'alluse.db'}")
    lock_file = tmp_path / "alluse.db-writers"
    with writer_lock(engine):
        with writer_lock(engine):  # re-entered by the same thread: still one holder
            assert _other_process_sees(lock_file) == "held"
        assert _other_process_sees(lock_file) == "held"
    assert _other_process_sees(lock_file) == "free"
    engine.dispose()


def test_threads_of_one_process_take_turns(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'alluse.db'}")
    inside, most = [0], [0]
    guard = threading.Lock()

    def writer() -> None:
        for _ in range(50):
            with writer_lock(engine):
                with guard:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                with guard:
                    inside[0] -= 1

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1
    engine.dispose()
