"""The app factory. `create_app()` reads the settings; tests pass their own engine and keyring."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import FastAPI

from alluse import __version__
from alluse.api import problems
from alluse.api.deps import Context
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
    statements,
    tax,
    trades,
    weeks,
)
from alluse.config import Settings, get_settings
from alluse.security.keyring import Keyring, load_keyring
from alluse.security.ratelimit import LoginLimiter
from alluse.security.tokens import TokenIssuer
from alluse.web import pages as web

# One module per resource (docs/api.md).
ROUTERS = [
    ops,
    auth,
    portfolios,
    accounts,
    groups,
    cash,
    brokerage,
    config,
    audit,
    trades,
    weeks,
    tax,
    reports,
    lifecycle,
    statements,
    projections,
]


def create_app(
    settings: Settings | None = None, engine: sa.Engine | None = None, keyring: Keyring | None = None
) -> FastAPI:
    settings = settings or get_settings()
    if engine is None:
        from alluse.store.db import make_engine, migrate

        engine = make_engine(settings.database_url)
        migrate(engine)
    keyring = keyring or load_keyring(settings)
    app = FastAPI(
        title="alluse",
        version=__version__,
        description="Accounts, ledger and rules for the ALL-USE method. Amounts are decimal strings in US dollars.",
    )
    app.state.ctx = Context(
        engine=engine,
        settings=settings,
        keyring=keyring,
        tokens=TokenIssuer.from_settings(settings, keyring),
        limiter=LoginLimiter(settings.login_max_failures, settings.login_window_seconds),
    )
    app.state.metrics = Metrics()
    problems.install(app)
    for module in ROUTERS:
        app.include_router(module.router)
    web.mount(app)  # the dashboard's pages and static files (docs/web.md)
    if settings.request_log:
        configure_logging()
    app.add_middleware(RequestLog, metrics=app.state.metrics, enabled=settings.request_log)
    return app
