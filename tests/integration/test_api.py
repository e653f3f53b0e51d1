"""The REST API end to end (in-process ASGI), on SQLite and PostgreSQL: money, idempotency, roles,
audit actors, tokens, API keys, credentials, problem+json, health and metrics."""

from __future__ import annotations

import json
import time

import jwt
import pytest
import sqlalchemy as sa

from alluse.services.brokers import read_credentials
from alluse.services.verify import verify
from alluse.store.schema import audit_log, brokerage_accounts

# /auth/logout is authenticated by the refresh token in its body.
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("POST", "/auth/login"),
    ("POST", "/auth/refresh"),
    ("POST", "/auth/logout"),
}


@pytest.fixture
def owner(api, portfolio):  # type: ignore[no-untyped-def]
    h = api.user("olivia", role="owner")
    r = api.client.post("/portfolios/main/groups", json={"amount": "100000"}, headers=h)
    assert r.status_code == 201, r.text
    return h


def cash_of(api, h, name: str) -> str:  # type: ignore[no-untyped-def]
    r = api.client.get(f"/portfolios/main/accounts/{name}", headers=h)
    assert r.status_code == 200, r.text
    return r.json()["cash"]


def test_deposit_splits_to_the_cent_and_amounts_are_decimal_strings(api, owner):  # type: ignore[no-untyped-def]
    r = api.client.post("/portfolios/main/deposits", json={"to": "A1", "amount": "1250.51"}, headers=owner)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["amount"] == "1250.51"
    legs = {leg["account"]: leg["amount"] for leg in body["legs"]}
    # 40/30/30 of 125,051 cents, the odd cent to Com-Acc (the domain split); the legs sum to zero.
    assert legs == {"ext:bank": "-1250.51", "A1-GEN": "500.20", "A1-REV": "375.15", "A1-COM": "375.16"}
    from decimal import Decimal

    assert sum(Decimal(v) for v in legs.values()) == 0
    assert cash_of(api, owner, "A1-GEN") == "40500.20"
    assert verify(api.engine).ok


BAD_AMOUNTS = ["12.345", "abc", "-5", "0", "1e999999999", "NaN", "1,0.0.0", "", "١٢"]


def test_bad_amounts_are_problem_json_400_and_change_nothing(api, owner):  # type: ignore[no-untyped-def]
    for amount in BAD_AMOUNTS:
        r = api.client.post("/portfolios/main/deposits", json={"to": "A1", "amount": amount}, headers=owner)
        assert r.status_code in (400, 422), (amount, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["detail"], amount
    assert cash_of(api, owner, "A1-GEN") == "40000.00"


def test_a_json_number_is_refused_not_rounded(api, owner):  # type: ignore[no-untyped-def]
    r = api.client.post("/portfolios/main/deposits", json={"to": "A1", "amount": 12.5}, headers=owner)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"


def test_idempotency_key_header_replays_and_a_generated_key_is_returned(api, owner):  # type: ignore[no-untyped-def]
    body = {"to": "A1-GEN", "amount": "10"}
    first = api.client.post("/portfolios/main/deposits", json=body, headers={**owner, "Idempotency-Key": "k-1"})
    again = api.client.post("/portfolios/main/deposits", json=body, headers={**owner, "Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert again.json()["replayed"] is True and again.json()["transfer_id"] == first.json()["transfer_id"]
    assert first.headers["Idempotency-Key"] == "k-1"
    assert cash_of(api, owner, "A1-GEN") == "40010.00"
    other = api.client.post(
        "/portfolios/main/deposits", json={**body, "amount": "11"}, headers={**owner, "Idempotency-Key": "k-1"}
    )
    assert other.status_code == 409
    fresh = api.client.post("/portfolios/main/deposits", json=body, headers=owner)
    assert fresh.headers["Idempotency-Key"].startswith("api-")
    assert cash_of(api, owner, "A1-GEN") == "40020.00"


def test_audit_actor_is_the_authenticated_user_or_key(api, owner):  # type: ignore[no-untyped-def]
    api.client.post("/portfolios/main/deposits", json={"to": "A1", "amount": "5"}, headers=owner)
    r = api.client.post(
        "/api-keys", json={"name": "bot", "scopes": [{"portfolio": "main", "role": "trader"}]}, headers=owner
    )
    assert r.status_code == 201, r.text
    key_id, secret = r.json()["api_key_id"], r.json()["key"]
    bot = {"Authorization": f"Bearer {secret}"}
    assert (
        api.client.post("/portfolios/main/deposits", json={"to": "A1", "amount": "6"}, headers=bot).status_code == 201
    )
    entries = api.client.get("/portfolios/main/audit", headers=owner).json()
    actors = [(e["actor"], e["action"]) for e in entries]
    assert ("user:olivia", "cash.deposit") in actors
    assert (f"apikey:{key_id}", "cash.deposit") in actors
    assert ("user:olivia", "apikey.create") in actors
    # The key's secret appears nowhere in the audit log.
    with api.engine.connect() as conn:
        stored = " ".join(conn.execute(sa.select(audit_log.c.result)).scalars())
    assert secret.split("_", 2)[2] not in stored


def test_buffer_override_is_an_owner_decision_not_a_traders(api, owner):  # type: ignore[no-untyped-def]
    trader = api.user("tom", role="trader")
    # $20,000 of A1-GEN's $40,000 into shares: at most $18,947.36 of the cash left may be withdrawn.
    buy = {"account": "A1-GEN", "action": "BTO", "symbol": "MSFT", "quantity": 200, "price": "100"}
    r = api.client.post("/portfolios/main/fills", json={**buy, "trade_date": "2026-01-05"}, headers=owner)
    assert r.status_code == 201, r.text
    body = {"account": "A1-GEN", "amount": "19000", "override_reason": "tax bill"}
    refused = api.client.post("/portfolios/main/withdrawals", json={**body, "override_reason": None}, headers=trader)
    assert refused.status_code == 422 and "buffer" in refused.json()["detail"]
    forbidden = api.client.post("/portfolios/main/withdrawals", json=body, headers=trader)
    assert forbidden.status_code == 403
    assert cash_of(api, owner, "A1-GEN") == "20000.00"
    ok = api.client.post("/portfolios/main/withdrawals", json=body, headers=owner)
    assert ok.status_code == 201, ok.text
    entry = api.client.get("/portfolios/main/audit", headers=owner).json()[-1]
    assert entry["override_reason"] == "tax bill" and entry["actor"] == "user:olivia"


def test_viewer_reads_but_cannot_write(api, owner):  # type: ignore[no-untyped-def]
    viewer = api.user("vera", role="viewer")
    assert api.client.get("/portfolios/main/accounts", headers=viewer).status_code == 200
    r = api.client.post("/portfolios/main/deposits", json={"to": "A1", "amount": "5"}, headers=viewer)
    assert r.status_code == 403 and r.json()["type"] == "urn:alluse:problem:forbidden"
    assert cash_of(api, owner, "A1-GEN") == "40000.00"


def test_every_endpoint_but_login_health_readiness_needs_authentication(api, owner):  # type: ignore[no-untyped-def]
    checked = 0
    for template, methods in api.app.openapi()["paths"].items():
        for method in methods:
            method = method.upper()
            path = template.replace("{portfolio}", "main").replace("{account}", "A1-GEN").replace("{target}", "A1-GEN")
            path = path.replace("{username}", "olivia").replace("{ref}", "PAPER:PA0000001").replace("{api_key_id}", "1")
            for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Bearer alk_1_nope"}):
                r = api.client.request(method, path, headers=headers, json={})
                if (method, template) in PUBLIC:
                    assert r.status_code != 401 or template in ("/auth/refresh", "/auth/logout"), (method, path)
                else:
                    assert r.status_code == 401, (method, path, r.status_code, r.text)
                    assert r.headers["WWW-Authenticate"] == "Bearer"
                checked += 1
    assert checked > 60


def test_login_refresh_and_token_rules(api, portfolio):  # type: ignore[no-untyped-def]
    api.user("alice", role="viewer")
    r = api.client.post("/auth/login", json={"username": "alice", "password": "correct horse battery staple"})
    assert r.status_code == 200, r.text
    tokens = r.json()
    access_h = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert api.client.get("/auth/me", headers=access_h).json()["actor"] == "user:alice"
    # A refresh token is not an access token, and vice versa.
    assert api.client.get("/auth/me", headers={"Authorization": f"Bearer {tokens['refresh_token']}"}).status_code == 401
    assert api.client.post("/auth/refresh", json={"refresh_token": tokens["access_token"]}).status_code == 401
    fresh = api.client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert fresh.status_code == 200 and fresh.json()["access_token"]
    # An expired token, and one signed with another key, are refused.
    ctx = api.app.state.ctx
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    expired = jwt.encode({**claims, "exp": int(time.time()) - 5}, ctx.tokens.key, algorithm="HS256")
    r = api.client.get("/auth/me", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    forged = jwt.encode(claims, b"another key" * 3, algorithm="HS256")
    assert api.client.get("/auth/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    # Bumping the user's token version revokes every token issued before.
    with api.engine.begin() as conn:
        conn.execute(sa.text("UPDATE users SET token_version = token_version + 1 WHERE username = 'alice'"))
    assert api.client.get("/auth/me", headers=access_h).status_code == 401
    assert api.client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 401


def test_login_is_rate_limited(api, portfolio):  # type: ignore[no-untyped-def]
    api.user("bob")
    limit = api.app.state.ctx.settings.login_max_failures
    for _ in range(limit):
        r = api.client.post("/auth/login", json={"username": "bob", "password": "wrong password!"})
        assert r.status_code == 401 and r.json()["detail"] == "wrong username or password"
    r = api.client.post("/auth/login", json={"username": "bob", "password": "correct horse battery staple"})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert r.headers["content-type"] == "application/problem+json"
    # An unknown user gets the same answer as a wrong password.
    r = api.client.post("/auth/login", json={"username": "nobody", "password": "whatever123"})
    assert r.status_code in (401, 429)


def test_api_keys_are_scoped_revocable_and_capped_by_their_creator(api, owner):  # type: ignore[no-untyped-def]
    r = api.client.post(
        "/api-keys", json={"name": "ro", "scopes": [{"portfolio": "main", "role": "viewer"}]}, headers=owner
    )
    kid, bot = r.json()["api_key_id"], {"Authorization": f"Bearer {r.json()['key']}"}
    assert api.client.get("/portfolios/main/accounts", headers=bot).status_code == 200
    assert (
        api.client.post("/portfolios/main/deposits", json={"to": "A1", "amount": "1"}, headers=bot).status_code == 403
    )
    # Keys cannot make keys, nor list users.
    assert (
        api.client.post(
            "/api-keys", json={"name": "x", "scopes": [{"portfolio": "main", "role": "viewer"}]}, headers=bot
        ).status_code
        == 403
    )
    listed = api.client.get("/api-keys", headers=owner).json()
    assert [k["api_key_id"] for k in listed] == [kid] and all(k["key"] is None for k in listed)
    assert api.client.delete(f"/api-keys/{kid}", headers=owner).status_code == 200
    assert api.client.get("/portfolios/main/accounts", headers=bot).status_code == 401
    # A non-owner cannot mint a key for the portfolio.
    trader = api.user("tom", role="trader")
    r = api.client.post(
        "/api-keys", json={"name": "t", "scopes": [{"portfolio": "main", "role": "viewer"}]}, headers=trader
    )
    assert r.status_code == 403


def test_a_key_loses_what_its_creator_loses(api, owner):  # type: ignore[no-untyped-def]
    second = api.user("otto", role="owner")
    r = api.client.post(
        "/api-keys", json={"name": "bot", "scopes": [{"portfolio": "main", "role": "owner"}]}, headers=second
    )
    bot = {"Authorization": f"Bearer {r.json()['key']}"}
    assert api.client.get("/portfolios/main/roles", headers=bot).status_code == 200
    assert api.client.put("/portfolios/main/roles/otto", json={"role": "viewer"}, headers=owner).status_code == 200
    assert api.client.get("/portfolios/main/roles", headers=bot).status_code == 403
    assert api.client.get("/portfolios/main/accounts", headers=bot).status_code == 200
    assert api.client.delete("/portfolios/main/roles/otto", headers=owner).status_code == 200
    assert api.client.get("/portfolios/main/accounts", headers=bot).status_code == 404


def test_the_last_owner_cannot_be_removed(api, owner):  # type: ignore[no-untyped-def]
    r = api.client.delete("/portfolios/main/roles/olivia", headers=owner)
    assert r.status_code == 409
    assert api.client.get("/portfolios/main/roles", headers=owner).json() == [
        {"username": "olivia", "role": "owner", "revoked": None, "replayed": False}
    ]


def test_broker_credentials_are_encrypted_and_never_returned(api, owner, keyring):  # type: ignore[no-untyped-def]
    secret = "token=IBKR-very-secret-9f8e7d"
    r = api.client.put(
        "/portfolios/main/brokerage-accounts/PAPER:PA0000001/credentials", json={"credentials": secret}, headers=owner
    )
    assert r.status_code == 200 and secret not in r.text
    with api.engine.connect() as conn:
        stored = conn.execute(sa.select(brokerage_accounts.c.credentials_encrypted)).scalars().all()
        audit_text = json.dumps([list(map(str, row)) for row in conn.execute(sa.select(audit_log))])
    assert any(s is not None for s in stored)
    assert all(secret.encode() not in s for s in stored if s is not None)
    assert secret not in audit_text
    assert read_credentials(api.engine, "main", "PAPER:PA0000001", keyring) == secret
    listed = api.client.get("/portfolios/main/brokerage-accounts", headers=owner)
    assert secret not in listed.text and listed.json()[0]["has_credentials"] is True
    trader = api.user("tom", role="trader")
    r = api.client.put(
        "/portfolios/main/brokerage-accounts/PAPER:PA0000001/credentials", json={"credentials": "x"}, headers=trader
    )
    assert r.status_code == 403


def test_creating_a_portfolio_makes_its_creator_owner_and_keys_do_not_cross_users(api, portfolio):  # type: ignore[no-untyped-def]
    a = api.user("amy")
    b = api.user("ben")
    r = api.client.post("/portfolios", json={"name": "amy-p"}, headers={**a, "Idempotency-Key": "same"})
    assert r.status_code == 201, r.text
    assert [p["name"] for p in api.client.get("/portfolios", headers=a).json()] == ["amy-p"]
    # Ben re-using Amy's idempotency key (and even her portfolio name) never gets her portfolio.
    r = api.client.post("/portfolios", json={"name": "amy-p"}, headers={**b, "Idempotency-Key": "same"})
    assert r.status_code == 409
    assert api.client.get("/portfolios", headers=b).json() == []


def test_health_readiness_metrics(api, owner):  # type: ignore[no-untyped-def]
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["schema_revision"]
    api.client.get("/portfolios/main/accounts/A1-GEN", headers=owner)
    m = api.client.get("/metrics", headers=owner)
    assert m.status_code == 200
    assert (
        'alluse_http_requests_total{method="GET",route="/portfolios/{portfolio}/accounts/{account}",status="200"} 1.0'
        in m.text
    )
    assert "A1-GEN" not in m.text
    assert api.client.get("/metrics").status_code == 401


def test_readiness_fails_on_an_unmigrated_database(tmp_path, keyring):  # type: ignore[no-untyped-def]
    import warnings

    from alluse.api.app import create_app
    from alluse.config import Settings
    from alluse.store.db import make_engine

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from fastapi.testclient import TestClient
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    client = TestClient(create_app(Settings(request_log=False), engine, keyring))
    r = client.get("/readyz")
    assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"


def test_request_log_is_one_json_line_per_request(engine, keyring, portfolio, caplog):  # type: ignore[no-untyped-def]
    import logging
    import warnings

    from alluse.api.app import create_app
    from alluse.config import Settings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from fastapi.testclient import TestClient
    app = create_app(Settings(request_log=True), engine, keyring)
    logger = logging.getLogger("alluse.request")
    logger.addHandler(caplog.handler)
    try:
        TestClient(app).get("/healthz")
        TestClient(app).get("/portfolios/main/accounts")
    finally:
        logger.removeHandler(caplog.handler)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "alluse.request"]
    assert [(x["route"], x["status"]) for x in lines] == [("/healthz", 200), ("/portfolios/{portfolio}/accounts", 401)]
    assert all(isinstance(x["ms"], float) for x in lines)
