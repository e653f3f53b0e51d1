"""API fixtures: the real app on the `engine` fixture's database, driven in-process over ASGI."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from alluse.config import Settings
from alluse.security.keyring import Keyring
from alluse.services import access
from alluse.views import access as access_view

PASSWORD = "correct horse battery staple"


@dataclass
class Api:
    client: object  # fastapi.testclient.TestClient
    engine: sa.Engine
    app: object

    def headers_for(self, username: str) -> dict[str, str]:
        """A real access token for the user, issued as /auth/login would (without paying argon2 per test)."""
        ctx = self.app.state.ctx
        with self.engine.connect() as conn:
            uid = conn.execute(sa.text("SELECT id FROM users WHERE username = :u"), {"u": username}).scalar_one()
            version = access_view.token_version(conn, uid)
        return {"Authorization": f"Bearer {ctx.tokens.pair(uid, version)['access_token']}"}

    def user(self, username: str, *, admin: bool = False, role: str | None = None, portfolio: str = "main") -> dict:
        access.create_user(self.engine, username, PASSWORD, is_admin=admin)
        if role:
            with self.engine.connect() as conn:
                pid = access_view.portfolio_id_for(conn, portfolio)
            access.grant_role(self.engine, "test", pid, username, role, f"grant:{portfolio}:{username}")
        return self.headers_for(username)


@pytest.fixture
def keyring() -> Keyring:
    return Keyring((Fernet.generate_key(),), "test")


@pytest.fixture
def api(engine: sa.Engine, keyring: Keyring) -> Iterator[Api]:
    from alluse.api.app import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from fastapi.testclient import TestClient

    app = create_app(Settings(request_log=False), engine, keyring)
    with TestClient(app) as client:
        yield Api(client, engine, app)
