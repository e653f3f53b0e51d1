"""api/threads.run_sync: the call runs in another thread, in the caller's context, and its result or
its error comes back; calls run side by side up to the limit and queue past it."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest

from alluse.api import threads

seen: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="unset")


def test_the_result_and_the_error_come_back_from_another_thread() -> None:
    caller = threading.get_ident()

    def where(x: int) -> tuple[int, int]:
        return threading.get_ident(), x + 1

    def fails() -> None:
        raise KeyError("nope")

    async def main() -> None:
        ident, value = await threads.run_sync(where, 1)
        assert ident != caller and value == 2
        with pytest.raises(KeyError, match="nope"):
            await threads.run_sync(fails)

    asyncio.run(main())


def test_the_call_sees_the_callers_context_and_leaves_it_alone() -> None:
    def read_and_set() -> str:
        before = seen.get()
        seen.set("thread")
        return before

    async def main() -> None:
        seen.set("caller")
        assert await threads.run_sync(read_and_set) == "caller"
        assert seen.get() == "caller"
        seen.set("again")
        assert await threads.run_sync(read_and_set) == "again"

    asyncio.run(main())


def test_calls_run_side_by_side_up_to_the_limit_then_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "LIMIT", 3)
    monkeypatch.setattr(threads, "_threads", threads._Threads())
    lock = threading.Lock()
    running, most = [0], [0]
    all_in = threading.Barrier(3, timeout=10)

    def call(i: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        if i < 3:
            all_in.wait()  # the first three run at once, or this times out
        with lock:
            running[0] -= 1
        return i

    async def main() -> list[int]:
        return list(await asyncio.gather(*(threads.run_sync(call, i) for i in range(10))))

    assert asyncio.run(main()) == list(range(10))
    assert most[0] == 3
    made = threads._threads
    _settled(made)
    assert (made._made, made._idle, made._waiting) == (3, 3, 0)
    # Idle threads take the next calls: none is made.
    assert asyncio.run(main()) == list(range(10))
    _settled(made)
    assert (made._made, made._idle, made._waiting) == (3, 3, 0)


def _settled(made: threads._Threads) -> None:
    """Wait until every thread has counted itself idle again (it does so after answering)."""
    deadline = time.monotonic() + 10
    while made._idle < made._made and time.monotonic() < deadline:
        time.sleep(0.001)


def test_a_cancelled_caller_does_not_stop_the_call() -> None:
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        release.wait(10)
        finished.set()

    async def main() -> None:
        task = asyncio.ensure_future(threads.run_sync(slow))
        while not started.is_set():
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        await asyncio.get_running_loop().run_in_executor(None, finished.wait, 10)

    asyncio.run(main())
    assert finished.is_set()
