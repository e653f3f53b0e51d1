"""The request log's line written straight to its handler's stream is the line the logging path
writes, and anything else attached to the logger gets the record as before."""

from __future__ import annotations

import io
import json
import logging

import pytest

from alluse.api import observability
from alluse.api.observability import log


@pytest.fixture
def stream(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """The request log as `configure_logging` sets it up, writing to a string."""
    out = io.StringIO()
    monkeypatch.setattr(observability.sys, "stderr", out)
    monkeypatch.setattr(log, "handlers", [])
    monkeypatch.setattr(log, "propagate", log.propagate)
    monkeypatch.setattr(log, "level", log.level)
    monkeypatch.setattr(observability, "_own", [])
    observability.configure_logging()
    return out


def _alone() -> None:
    """The installed handler alone on the logger (pytest attaches its own capturing handlers to it)."""
    log.handlers[:] = [observability._own[0][0]]


def _line() -> str:
    return json.dumps({"ts": 1.5, "method": "GET", "path": '/é"x', "status": 200, "actor": None})


def test_a_line_written_directly_is_the_logging_paths(stream: io.StringIO) -> None:
    _alone()
    assert observability._written(_line())
    direct = stream.getvalue()
    stream.seek(0)
    stream.truncate()
    log.handle(log.makeRecord(log.name, logging.INFO, __file__, 0, _line(), (), None))
    assert direct == stream.getvalue() == _line() + "\n"


def test_another_handler_or_a_filter_gets_the_record(stream: io.StringIO) -> None:
    _alone()
    extra = logging.Handler()
    log.addHandler(extra)
    assert not observability._written(_line())
    log.removeHandler(extra)
    handler = log.handlers[0]
    handler.addFilter(lambda record: True)
    assert not observability._written(_line())
    handler.filters.clear()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    assert not observability._written(_line())
    assert stream.getvalue() == ""


def test_a_failed_write_is_the_handlers_to_report(stream: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    _alone()
    failed: list[logging.LogRecord] = []
    handler = log.handlers[0]
    monkeypatch.setattr(handler, "handleError", failed.append)
    stream.close()  # writing now raises
    assert observability._written(_line())
    assert [r.getMessage() for r in failed] == [_line()]
