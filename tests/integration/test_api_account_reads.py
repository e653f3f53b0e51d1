"""The account read's own path (api/fastpath.py): every answer is the app's, byte for byte, a revoked
token, user, key or grant takes effect on the next read, and a read takes one connection, kept
between requests."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from alluse.api import fastpath
from alluse.api.app import create_app
from alluse.api.hardening import strict_json
from alluse.config import Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient


@pytest.fixture
def ordinary(api) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """The same app without the account read's own path: any dependency override hands every
    request to FastAPI (this one overrides the JSON check with itself, changing nothing)."""
    app = create_app(Settings(request_log=False), api.engine, api.app.state.ctx.keyring)
    app.dependency_overrides[strict_json] = strict_json
    with TestClient(app) as client:
        yield client


def _same(api, ordinary, path: str, headers: dict[str, str]) -> int:  # type: ignore[no-untyped-def]
    fast, slow = api.client.get(path, headers=headers), ordinary.get(path, headers=headers)
    assert (fast.status_code, fast.headers.items(), fast.content) == (
        slow.status_code,
        slow.headers.items(),
        slow.content,
    ), path
    return fast.status_code


def test_every_answer_is_the_apps_and_revocation_takes_effect_at_once(api, portfolio, ordinary):  # type: ignore[no-untyped-def]
    owner = api.user("olivia", role="owner")
    assert api.client.post("/portfolios/main/groups", json={"amount": "100000"}, headers=owner).status_code == 201
    viewer = api.user("vera", role="viewer")
    key = api.client.post(
        "/api-keys", json={"name": "ro", "scopes": [{"portfolio": "main", "role": "viewer"}]}, headers=owner
    ).json()
    bot = {"Authorization": f"Bearer {key['key']}"}
    one = "/portfolios/main/accounts/A1-GEN"
    aid = api.client.get(one, headers=owner).json()["account_id"]
    token = viewer["Authorization"].split(" ", 1)[1]
    asked = {
        one: 200,
        "/portfolios/main/accounts/a1-gen": 200,
        f"/portfolios/main/accounts/{aid}": 200,
        f"/portfolios/{api.client.get('/portfolios', headers=owner).json()[0]['portfolio_id']}/accounts/A1-COM": 200,
        "/portfolios/main/accounts/A1-GEM": 404,  # with its "did you mean"
        "/portfolios/main/accounts/" + "A" * 61: 422,
        "/portfolios/nope/accounts/A1-GEN": 404,
        "/portfolios/" + "p" * 101 + "/accounts/A1-GEN": 422,
        "/portfolios/main/accounts/A1-GEN?extra=1": 200,
    }
    for path, status in asked.items():
        assert _same(api, ordinary, path, viewer) == status, path
    for headers in ({}, {"Authorization": f"bearer  {token} "}, {"Authorization": f"Basic {token}"}, bot):
        _same(api, ordinary, one, headers)
    assert _same(api, ordinary, one, {"Authorization": "Bearer nonsense"}) == 401

    # Each revocation shows on the very next read.
    assert _same(api, ordinary, one, bot) == 200
    assert api.client.delete(f"/api-keys/{key['api_key_id']}", headers=owner).status_code == 200
    assert _same(api, ordinary, one, bot) == 401
    assert api.client.delete("/portfolios/main/roles/vera", headers=owner).status_code == 200
    assert _same(api, ordinary, one, viewer) == 404
    api.user("walt", role="viewer")
    walt = api.headers_for("walt")
    assert _same(api, ordinary, one, walt) == 200
    with api.engine.begin() as conn:
        conn.execute(sa.text("UPDATE users SET token_version = token_version + 1 WHERE username = 'walt'"))
    assert _same(api, ordinary, one, walt) == 401
    api.user("dora", role="viewer")
    dora = api.headers_for("dora")
    with api.engine.begin() as conn:
        conn.execute(sa.text("UPDATE users SET disabled = TRUE WHERE username = 'dora'"))
    assert _same(api, ordinary, one, dora) == 401


def test_account_reads_take_one_kept_connection(api, portfolio):  # type: ignore[no-untyped-def]
    """The check and the read share one connection, which the own path keeps between requests: after
    the first read, the next ones take none from the pool."""
    owner = api.user("olivia", role="owner")
    assert api.client.post("/portfolios/main/groups", json={"amount": "100000"}, headers=owner).status_code == 201
    checkouts: list[object] = []

    def checkout(*_: object) -> None:
        checkouts.append(1)

    sa.event.listen(api.engine, "checkout", checkout)
    try:
        assert api.client.get("/portfolios/main/accounts/A1-GEN", headers=owner).status_code == 200
        assert len(checkouts) <= 1  # none if an earlier request left a kept connection
        checkouts.clear()
        for _ in range(3):
            assert api.client.get("/portfolios/main/accounts/A1-GEN", headers=owner).status_code == 200
    finally:
        sa.event.remove(api.engine, "checkout", checkout)
    assert checkouts == []


def test_the_request_log_names_the_route_and_the_reader(engine, keyring, portfolio, api, caplog):  # type: ignore[no-untyped-def]
    owner = api.user("olivia", role="owner")
    assert api.client.post("/portfolios/main/groups", json={"amount": "100000"}, headers=owner).status_code == 201
    app = create_app(Settings(request_log=True), engine, keyring)
    logger = logging.getLogger("alluse.request")
    logger.addHandler(caplog.handler)
    try:
        TestClient(app).get("/portfolios/main/accounts/A1-GEN", headers=owner)
    finally:
        logger.removeHandler(caplog.handler)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "alluse.request"]
    assert [(x["route"], x["status"], x["actor"]) for x in lines] == [
        ("/portfolios/{portfolio}/accounts/{account}", 200, "user:olivia")
    ]


def test_a_kept_connection_is_given_back_reset_and_closed_with_its_engine(engine):  # type: ignore[no-untyped-def]
    kept = fastpath._kept(engine)
    assert fastpath._kept(engine) is kept  # one set per engine, however many apps serve it
    first, second = kept.take(), kept.take()
    first.execute(sa.text("SELECT 1"))  # a read through SQLAlchemy begins a transaction
    assert first.in_transaction()
    kept.give_back(first)
    assert not first.in_transaction() and not first.closed
    assert kept.take() is first  # kept: the next request takes it again
    kept.give_back(first)
    engine.dispose()
    assert first.closed  # idle when the engine was disposed of
    assert not second.closed  # in use then: closed when it comes back
    kept.give_back(second)
    assert second.closed
    third = kept.take()
    assert third is not first and third is not second
    kept.give_back(third)
