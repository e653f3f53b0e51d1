"""The HTTP protocol `alluse serve` (and `alluse bench --http`) runs uvicorn with: httptools, with each
answer leaving in one write.

uvicorn writes an answer's status line and headers when the app sends `http.response.start` and its
body on `http.response.body`: two `send()` system calls and two TCP segments for every small JSON
answer, so the client wakes up twice too. Here the writes a request makes within one turn of the
event loop are gathered and written together at the end of that turn, in order; a close writes what
is gathered first. The bytes on the wire are the same; only their packaging changes. Everything
else (parsing, flow control, keep-alive, upgrades) is uvicorn's own.

With several worker processes, all of them accept from one listening socket, and the first one awake
takes every connection waiting (the event loop accepts until none is left): keep-alive clients that
connect together (a pool of connections opened at once) would all land on one worker, the others
idle. So a worker that has just accepted a connection waits a moment before the next, for a sibling
to take it: the only time a worker waits, and only while connections arrive in a burst.

A worker's heap at its first connection (modules, the app, its routes' models and validators: about
180,000 objects, all alive as long as the process) is frozen out of the cyclic garbage collector
(`gc.freeze`). Otherwise every full collection walks all of it again: about 90 ms of CPU (230 ms
and more on a busy machine), during which the worker answers nothing and, if it holds SQLite's
writer lock, no other worker writes either. The first one after start lands in the first thousand
or two requests, and later ones rarely. What is made later is collected as before."""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

PROTOCOL = "alluse.api.server:OneWriteProtocol"  # uvicorn's `http` setting


class _GatheredWrites:
    """A transport whose writes within one turn of the event loop go out as one. Anything else is
    the wrapped transport's."""

    __slots__ = ("_transport", "_loop", "_pending")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        if self._pending:
            data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


# A connection accepted within BURST seconds of the one before waits PAUSE seconds first, at most
# PAUSES times in a row: a steady stream of new connections (clients without keep-alive) is accepted
# without waits once its first PAUSES have spread.
BURST = 0.005
PAUSE = 0.001
PAUSES = 16
_burst = {"last": 0.0, "paused": 0}


def _spread_accepts() -> None:
    if time.monotonic() - _burst["last"] >= BURST:
        _burst["paused"] = 0
    elif _burst["paused"] < PAUSES:
        _burst["paused"] += 1
        time.sleep(PAUSE)  # blocks this worker's loop, and lets a sibling accept the next connection
    _burst["last"] = time.monotonic()


_frozen = [False]  # whether this process has frozen its startup heap
# A young-generation collection every this many new container objects instead of CPython's 700 (a
# deposit makes several thousand, nearly all freed by reference counting before a collection sees
# them): 1.1 % fewer instructions per deposit, each collection still well under a millisecond.
YOUNG_THRESHOLD = 5_000


def _freeze_startup_heap() -> None:
    if not _frozen[0]:
        _frozen[0] = True
        gc.freeze()
        gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])


class OneWriteProtocol(HttpToolsProtocol):
    def __init__(self, config: Config, *args: Any, **kwargs: Any) -> None:
        # At the first connection the app is built and started: its heap is the one it serves with.
        _freeze_startup_heap()
        # The event loop makes a connection's protocol as it accepts the connection, before the next.
        if config.workers > 1:
            _spread_accepts()
        super().__init__(config, *args, **kwargs)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_GatheredWrites(transport, self.loop))  # type: ignore[arg-type]
