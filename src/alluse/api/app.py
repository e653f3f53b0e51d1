"""The app factory. `create_app()` reads the settings; tests pass their own engine and keyring."""

from __future__ import annotations

import os

import sqlalchemy as sa
from fastapi import Depends, FastAPI
from fastapi.telemetry import TelemetryConfig
from opentelemetry import _logs, metrics, trace
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from alluse import __version__
from alluse.api import problems
from alluse.api.deps import Context
from alluse.api.fastpath import AccountReads, Deposits, declared
from alluse.api.hardening import EdgeGuard, strict_json
from alluse.api.observability import Metrics, RequestLog, configure_logging
from alluse.api.routers import (
    accounts,
    audit,
    auth,
    brokerage,
    cash,
    config,
    groups,
    lifecycle,
    ops,
    portfolios,
    projections,
    reports,
    sessions,
    statements,
    tax,
    trades,
    webhooks,
    weeks,
)
from alluse.config import Settings, get_settings
from alluse.security.keyring import Keyring, load_keyring
from alluse.security.tokens import TokenIssuer
from alluse.services.ratelimit import LoginThrottle
from alluse.web import pages as web

# One module per resource (docs/api.md). A request is matched against the routers in this order, each
# router's every route in turn, so the most frequent requests (account reads, deposits, fills) come
# first; no two routers' paths overlap for one method, so the order decides nothing else.
ROUTERS = [
    accounts,
    cash,
    trades,
    ops,
    auth,
    sessions,
    portfolios,
    groups,
    brokerage,
    config,
    audit,
    weeks,
    tax,
    reports,
    lifecycle,
    statements,
    projections,
    webhooks,
]


# OpenTelemetry's providers while none is configured (`opentelemetry.trace.ProxyTracerProvider` …).
_UNCONFIGURED = frozenset({"ProxyTracerProvider", "_ProxyMeterProvider", "ProxyLoggerProvider"})


def _telemetry() -> TelemetryConfig:
    """FastAPI's own OpenTelemetry instrumentation asks the global providers on every request whether
    one is configured (5 % of an account read's CPU). They are configured before the app is built
    (`opentelemetry-instrument`) or by FastAPI itself (FASTAPI_OTEL_AUTO_CONFIGURE): with neither, the
    instrumentation is off from the start instead."""
    if os.getenv("FASTAPI_OTEL_AUTO_CONFIGURE", "").lower() == "true":
        return {}
    providers = (trace.get_tracer_provider(), metrics.get_meter_provider(), _logs.get_logger_provider())
    if any(type(p).__name__ not in _UNCONFIGURED for p in providers):
        return {}
    return {"tracing": False, "metrics": False, "logs": False}


def create_app(
    settings: Settings | None = None, engine: sa.Engine | None = None, keyring: Keyring | None = None
) -> FastAPI:
    settings = settings or get_settings()
    if engine is None:
        from alluse.services.database import open_database

        engine = open_database(settings.database_url)
    keyring = keyring or load_keyring(settings)
    telemetry = _telemetry()
    app = FastAPI(
        title="alluse",
        version=__version__,
        description="Accounts, ledger and rules for the ALL-USE method. Amounts are decimal strings in US dollars.",
        telemetry=telemetry,
    )
    app.state.ctx = Context(
        engine=engine,
        settings=settings,
        keyring=keyring,
        tokens=TokenIssuer.from_settings(settings, keyring),
        throttle=LoginThrottle(engine, settings.login_max_failures, settings.login_window_seconds),
    )
    app.state.metrics = Metrics()
    problems.install(app)
    for module in ROUTERS:
        # The API speaks JSON: bodies are checked for media type, charset, repeated keys and bounds.
        app.include_router(module.router, dependencies=[Depends(strict_json)], responses=problems.responses(413, 415))
    web.mount(app)  # the dashboard's pages and static files (docs/web.md)
    if settings.request_log:
        configure_logging()
    if telemetry:  # FastAPI's instrumentation is off: nothing of it to skip (api/fastpath.py)
        own = {"ctx": app.state.ctx, "overrides": app.dependency_overrides}
        app.add_middleware(Deposits, route=declared(cash.router, cash.deposit), **own)
        app.add_middleware(AccountReads, route=declared(accounts.router, accounts.one), **own)  # the most frequent
    app.add_middleware(RequestLog, metrics=app.state.metrics, enabled=settings.request_log)
    # Starlette's limiter cuts a streamed body off once it passes the limit (413 via problems.py);
    # EdgeGuard, outside it, refuses a declared oversized body before anything runs.
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=settings.max_body_bytes)
    app.add_middleware(EdgeGuard, settings=settings)
    if settings.trusted_proxies.strip():
        # Believe X-Forwarded-For/-Proto only from the listed proxies (`alluse serve` turns uvicorn's
        # own handling off, which would trust loopback by default).
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxy_list)
    return app
