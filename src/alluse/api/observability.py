"""Health, readiness, Prometheus metrics and one JSON log line per request.

Metrics are labelled by route template (never the concrete path), so no portfolio or account name
reaches them."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("alluse.request")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "alluse_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "alluse_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        # The labelled series, looked up once each: `labels()` checks and locks on every call. Few
        # series exist (route templates × methods × statuses), so this stays small.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        series = self._series.get((method, route, status))
        if series is None:
            series = self._series[(method, route, status)] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
        series[0].inc()
        series[1].observe(seconds)


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class RequestLog:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware on the hot path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, enabled: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = _route_template(scope)
            self.metrics.observe(scope["method"], route, status, elapsed)
            if self.enabled and log.isEnabledFor(logging.INFO):
                state: dict[str, Any] = scope.get("state", {})
                line = {
                    "ts": round(time.time(), 3),
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "ms": round(elapsed * 1000, 2),
                    "actor": state.get("actor"),
                    "client": scope["client"][0] if scope.get("client") else None,
                }
                text = json.dumps(line)
                if not _written(text):
                    # The record is made here: `log.info` would also look up the caller's file and
                    # line in the stack, on every request, for a line that shows neither.
                    log.handle(log.makeRecord(log.name, logging.INFO, __file__, 0, text, (), None))


_own: list[tuple[logging.StreamHandler[Any], logging.Formatter]] = []  # what configure_logging installed


def _written(text: str) -> bool:
    """Write the line as the handler `configure_logging` installed writes it, if that handler is the
    logger's only one and nothing filters or formats it otherwise: making a LogRecord and passing it
    through the logger and the handler cost about 50,000 instructions a request. Anything else (a
    handler added, as tests do, a filter, another format) gets the record, as before."""
    if not _own:
        return False
    handler, formatter = _own[0]
    if log.handlers != [handler] or log.filters or handler.filters or handler.formatter is not formatter:
        return False
    if handler.level > logging.INFO or log.propagate:
        return False
    try:
        with handler.lock:  # type: ignore[union-attr]
            handler.stream.write(text + handler.terminator)
            handler.flush()
    except RecursionError:  # as StreamHandler.emit answers a failed write
        raise
    except Exception:
        handler.handleError(log.makeRecord(log.name, logging.INFO, __file__, 0, text, (), None))
    return True


def configure_logging() -> None:
    """Request lines go to stderr as bare JSON, one per line."""
    if log.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter("%(message)s")
    handler.setFormatter(formatter)
    log.addHandler(handler)
    _own[:] = [(handler, formatter)]
    log.setLevel(logging.INFO)
    log.propagate = False
