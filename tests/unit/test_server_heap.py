"""A served worker freezes its startup heap out of the cyclic garbage collector and collects its young
generation less often (api/server.py)."""

import asyncio
import gc

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from alluse.api import server


async def _app(scope: object, receive: object, send: object) -> None:
    raise AssertionError("no request is sent")


@pytest.fixture
def unfrozen(monkeypatch: pytest.MonkeyPatch):
    gc.unfreeze()
    monkeypatch.setattr(server, "_frozen", [False])
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_the_first_connection_freezes_the_heap_once(unfrozen: None) -> None:
    config = Config(app=_app, http=server.PROTOCOL, workers=1)
    loop = asyncio.new_event_loop()
    try:
        assert gc.get_freeze_count() == 0
        startup = [object()]  # alive before the first connection, as the app's objects are
        server.OneWriteProtocol(config, ServerState(), {}, _loop=loop)
        frozen = gc.get_freeze_count()
        assert frozen > 0
        assert gc.get_threshold()[0] == server.YOUNG_THRESHOLD
        assert not any(o is startup for o in gc.get_objects())  # frozen objects are out of every generation
        later = [object()]
        server.OneWriteProtocol(config, ServerState(), {}, _loop=loop)
        assert gc.get_freeze_count() == frozen  # later connections freeze nothing more
        assert any(o is later for o in gc.get_objects())  # what is made later is collected as before
    finally:
        loop.close()
