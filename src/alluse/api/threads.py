"""Blocking calls from the event loop, run in worker threads with one hop each way.

`anyio.to_thread.run_sync` (what FastAPI and Starlette use) yields to the event loop twice before the
call leaves (its checkpoint, then its capacity limiter's) and hands the call over through a
`queue.Queue`: about 190,000 instructions of a deposit's 2.35 million for a hop that does nothing,
where a C queue and one callback back into the loop take about 20,000. Here a call waits for its
result only: the threads take their calls from a `queue.SimpleQueue`, run each in a copy of the
caller's context (as anyio does), and hand the result or the error back to the caller's loop.

As many threads as calls waiting, at most `LIMIT` (anyio's default limiter's 40): a call that finds
every thread busy waits in the queue. Threads are made when first needed and kept (daemons: an idle
one blocks nothing at exit). A call is not abandoned when its caller is cancelled: it runs to its
end in its thread, whose result is then dropped."""

from __future__ import annotations

import asyncio
import os
import queue
import threading
from collections.abc import Callable
from contextvars import copy_context
from typing import Any, TypeVar

T = TypeVar("T")
LIMIT = 40


class _Threads:
    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for a call that no caller has counted on yet
        self._waiting = 0  # calls queued while every thread was busy and none could be made
        self._made = 0

    def _reset(self) -> None:
        """In a forked child: the parent's threads are not there."""
        self.__init__()  # type: ignore[misc]

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            if self._idle:
                self._idle -= 1
                make = False
            else:
                make = self._made < LIMIT
                if make:
                    self._made += 1
                else:
                    self._waiting += 1
        self._calls.put((copy_context(), fn, args, loop, future))
        if make:
            threading.Thread(target=self._work, name="alluse-worker", daemon=True).start()
        return await future

    def _work(self) -> None:
        calls, lock = self._calls, self._lock
        while True:
            context, fn, args, loop, future = calls.get()
            try:
                result = context.run(fn, *args)
            except BaseException as exc:  # the caller's to raise
                _answer(loop, future, _fail, exc)
            else:
                _answer(loop, future, _succeed, result)
            context = fn = args = loop = future = result = None  # nothing of a call outlives it
            with lock:
                if self._waiting:
                    self._waiting -= 1  # the next queued call is this thread's
                else:
                    self._idle += 1


def _answer(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], how: Callable[..., None], value: Any) -> None:
    try:
        loop.call_soon_threadsafe(how, future, value)
    except RuntimeError:  # the loop has closed: nobody waits for the answer
        pass


def _succeed(future: asyncio.Future[Any], result: Any) -> None:
    if not future.cancelled():
        future.set_result(result)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.cancelled():
        future.set_exception(exc)


_threads = _Threads()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_threads._reset)


async def run_sync(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a worker thread; its result, or its error raised here."""
    return await _threads.run(fn, *args)
