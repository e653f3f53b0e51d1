"""A deposit's own path (api/fastpath.Deposits): every answer is the app's, byte for byte (a first
deposit, a replay, every refusal), a request refused before or by the write is handed on with its
body and leaves nothing behind, and the request log names the route and the depositor."""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from alluse.api import fastpath
from alluse.api.app import create_app
from alluse.api.hardening import strict_json
from alluse.config import Settings
from alluse.security.keyring import Keyring
from alluse.services import groups
from alluse.store.db import make_engine
from tests.conftest import db_state
from tests.integration.conftest import Api

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

DEPOSITS = "/portfolios/main/deposits"


def _ordinary(engine: sa.Engine, keyring: Keyring) -> Any:
    """The app without its own paths: any dependency override hands every request to FastAPI (this
    one overrides the JSON check with itself, changing nothing)."""
    app = create_app(Settings(request_log=False), engine, keyring)
    app.dependency_overrides[strict_json] = strict_json
    return app


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The idempotency keys of the writes the deposit's own path made (or tried)."""
    made: list[str] = []
    deposited = fastpath.deposited

    def counted(scope: Any, body: Any, c: Any, key: str) -> Any:
        made.append(key)
        return deposited(scope, body, c, key)

    monkeypatch.setattr(fastpath, "deposited", counted)
    return made


def _answer(response: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    return response.status_code, list(response.headers.items()), response.content


def _post(client: Any, path: str, body: Any, headers: dict[str, str]) -> Any:
    if isinstance(body, bytes):
        return client.post(path, content=body, headers=headers)
    return client.post(path, json=body, headers=headers)


def _twin(sqlite_template: Path, path: Path, keyring: Keyring, ordinary: bool) -> Api:
    """A fresh database with the same users, grants and group as its twin, ids and all."""
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    from alluse.services.portfolios import create_portfolio

    create_portfolio(engine, "test", "main", "test:portfolio")
    groups.open_group(engine, "t", "main", "g1", groups.group_opening(10_000_000))
    app = _ordinary(engine, keyring) if ordinary else create_app(Settings(request_log=False), engine, keyring)
    api = Api(TestClient(app), engine, app)
    for name, role in (("tina", "trader"), ("vera", "viewer"), ("olivia", "owner")):
        api.user(name, role=role)
    return api


@pytest.fixture
def twins(sqlite_template: Path, tmp_path: Path, keyring: Keyring) -> Iterator[tuple[Api, Api]]:
    fast = _twin(sqlite_template, tmp_path / "fast.db", keyring, ordinary=False)
    slow = _twin(sqlite_template, tmp_path / "slow.db", keyring, ordinary=True)
    with fast.client, slow.client:
        yield fast, slow
    fast.engine.dispose()
    slow.engine.dispose()


def test_every_answer_is_the_apps(twins: tuple[Api, Api], writes: list[str]) -> None:
    fast, slow = twins
    tina, vera = fast.headers_for("tina"), fast.headers_for("vera")
    assert (tina, vera) == (slow.headers_for("tina"), slow.headers_for("vera"))
    json_type = {"Content-Type": "application/json"}
    token = tina["Authorization"].split(" ", 1)[1]
    hundred = {"to": "A1-GEN", "amount": "100.00"}
    asked: list[tuple[str, Any, dict[str, str], int]] = [
        (DEPOSITS, hundred, {**tina, "Idempotency-Key": "k1"}, 201),
        (DEPOSITS, hundred, {**tina, "Idempotency-Key": "k1"}, 201),  # a replay
        (DEPOSITS, hundred, {**tina, "Idempotency-Key": " k1 "}, 201),  # the same key, blanks dropped
        (DEPOSITS, {"to": "A1-GEN", "amount": "5"}, {**tina, "Idempotency-Key": "k1"}, 409),
        (
            DEPOSITS,
            {"to": "A1", "amount": "1000", "group": True, "memo": "split"},
            {**tina, "Idempotency-Key": "k2"},
            201,
        ),
        (DEPOSITS, {"to": "A1", "amount": "0.01"}, {**tina, "Idempotency-Key": "k3"}, 201),
        (DEPOSITS, {"to": "A1-COM", "amount": "7.5", "group": False}, {**tina, "Idempotency-Key": "k4"}, 201),
        (DEPOSITS + "?extra=1", hundred, {**tina, "Idempotency-Key": "k5"}, 201),
        ("/portfolios/1/deposits", hundred, {**tina, "Idempotency-Key": "k6"}, 201),
        (DEPOSITS, {"to": "A1-GNE", "amount": "1"}, {**tina, "Idempotency-Key": "k7"}, 404),
        (DEPOSITS, {"to": "A1", "amount": "1", "group": False}, {**tina, "Idempotency-Key": "k7"}, 404),
        (DEPOSITS, {"to": "A1-GEN", "amount": "-5"}, {**tina, "Idempotency-Key": "k8"}, 422),
        (DEPOSITS, {"to": "A1-GEN", "amount": "0"}, {**tina, "Idempotency-Key": "k8"}, 422),
        (DEPOSITS, {"to": "A1-GEN", "amount": 5}, {**tina, "Idempotency-Key": "k8"}, 422),
        (DEPOSITS, {"to": "A1-GEN", "amount": "1.001"}, {**tina, "Idempotency-Key": "k8"}, 422),
        (DEPOSITS, {"to": "A1-GEN", "amount": "1", "memo": "m" * 201}, {**tina, "Idempotency-Key": "k8"}, 422),
        (DEPOSITS, {"to": "A1-GEN", "amount": "1", "extra": 1}, {**tina, "Idempotency-Key": "k8"}, 422),
        (DEPOSITS, {"amount": "1"}, {**tina, "Idempotency-Key": "k8"}, 422),
        (DEPOSITS, ["A1-GEN", "1"], {**tina, "Idempotency-Key": "k8"}, 422),
        (DEPOSITS, b"", {**tina, **json_type, "Idempotency-Key": "k8"}, 422),
        (DEPOSITS, b'{"to": "A1-GEN",', {**tina, **json_type, "Idempotency-Key": "k8"}, 422),
        (DEPOSITS, b'{"to": "A1-GEN", "to": "A1-REV", "amount": "1"}', {**tina, **json_type}, 422),
        (
            DEPOSITS,
            b'{"to": "A1-GEN", "amount": "1", "memo": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}',
            {**tina, **json_type},
            422,
        ),
        (DEPOSITS, b'{"to": "A1-GEN", "amount": "1"}', {**tina, "Content-Type": "text/plain"}, 415),
        (
            DEPOSITS,
            b'{"to": "A1-GEN", "amount": "1"}',
            {**tina, "Content-Type": "application/json; charset=latin-1"},
            415,
        ),
        (DEPOSITS, b'{"to": "A1-GEN", "amount": "1"}', tina, 415),
        (DEPOSITS, hundred, {**tina, "Idempotency-Key": "k" * 201}, 422),
        (DEPOSITS, hundred, {**tina, "Idempotency-Key": "k" * 200}, 201),
        (DEPOSITS, hundred, {**tina, "Idempotency-Key": "  "}, 400),
        (DEPOSITS, hundred, {**vera, "Idempotency-Key": "k9"}, 403),
        (DEPOSITS, hundred, {"Idempotency-Key": "k9"}, 401),
        (DEPOSITS, hundred, {"Authorization": "Bearer nonsense", "Idempotency-Key": "k9"}, 401),
        (DEPOSITS, hundred, {"Authorization": f"Basic {token}", "Idempotency-Key": "k9"}, 401),
        ("/portfolios/nope/deposits", hundred, {**tina, "Idempotency-Key": "k9"}, 404),
        ("/portfolios/" + "p" * 101 + "/deposits", hundred, {**tina, "Idempotency-Key": "k9"}, 422),
        (DEPOSITS, hundred, {**tina, "Idempotency-Key": "k1"}, 201),  # a replay after all of that
    ]
    for path, body, headers, status in asked:
        before = db_state(slow.engine)
        got, want = _post(fast.client, path, body, headers), _post(slow.client, path, body, headers)
        assert _answer(got) == _answer(want), (path, body, headers)
        assert got.status_code == status, (path, body, got.content)
        if status != 201:
            assert db_state(slow.engine) == before, (path, body)  # nothing written by the app either
    # Every deposit the app made, the own path made (a replay too), and it tried those the write refused.
    assert writes == ["k1", "k1", "k1", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k7", "k" * 200, "k1"]
    assert _books(fast.engine) == _books(slow.engine)

    # Without a key each app makes up its own: all else is the same.
    got, want = (
        fast.client.post(DEPOSITS, json=hundred, headers=tina),
        slow.client.post(DEPOSITS, json=hundred, headers=tina),
    )
    assert got.status_code == want.status_code == 201 and got.content == want.content
    assert [k for k, _ in got.headers.items()] == [k for k, _ in want.headers.items()]
    assert got.headers["idempotency-key"].startswith("api-") and writes[-1] == got.headers["idempotency-key"]


def _books(engine: sa.Engine) -> list[tuple[Any, ...]]:
    """What the deposits leave: transfers, postings, balances, outbox events and audit entries."""
    with engine.connect() as conn:
        return [
            *conn.exec_driver_sql("SELECT id, number, kind, memo, audit_seq FROM transfers ORDER BY id"),
            *conn.exec_driver_sql("SELECT transfer_id, account_id, amount_cents FROM postings ORDER BY id"),
            *conn.exec_driver_sql("SELECT id, cash_cents FROM accounts ORDER BY id"),
            *conn.exec_driver_sql("SELECT seq, kind, account_id, audit_seq FROM events ORDER BY seq"),
            *conn.exec_driver_sql(
                "SELECT seq, actor, action, idempotency_key, input_digest, result FROM audit_log ORDER BY seq"
            ),
        ]


def test_refused_deposits_leave_nothing_and_replays_match(
    api: Api, portfolio: str, keyring: Keyring, writes: list[str]
) -> None:
    """On each backend, the same database behind both apps: a refusal is the app's and writes nothing;
    a replay of a deposit one app made is answered alike by both."""
    owner = api.user("olivia", role="owner")
    assert api.client.post("/portfolios/main/groups", json={"amount": "100000"}, headers=owner).status_code == 201
    with TestClient(_ordinary(api.engine, keyring)) as slow:
        for body, status in (({"to": "A1-GNE", "amount": "1"}, 404), ({"to": "A1-GEN", "amount": "x"}, 422)):
            before = db_state(api.engine)
            got = api.client.post(DEPOSITS, json=body, headers={**owner, "Idempotency-Key": "r1"})
            want = slow.post(DEPOSITS, json=body, headers={**owner, "Idempotency-Key": "r1"})
            assert _answer(got) == _answer(want) and got.status_code == status
            assert db_state(api.engine) == before
        first = api.client.post(
            DEPOSITS, json={"to": "A1-GEN", "amount": "3"}, headers={**owner, "Idempotency-Key": "d1"}
        )
        assert first.status_code == 201 and first.json()["replayed"] is False
        replays = [
            client.post(DEPOSITS, json={"to": "A1-GEN", "amount": "3"}, headers={**owner, "Idempotency-Key": "d1"})
            for client in (api.client, slow)
        ]
        assert _answer(replays[0]) == _answer(replays[1]) and replays[0].json()["replayed"] is True
        assert {**first.json(), "replayed": True} == replays[0].json()
    assert writes == ["r1", "d1", "d1"]


def test_the_request_log_names_the_route_and_the_depositor(
    api: Api, portfolio: str, keyring: Keyring, caplog: pytest.LogCaptureFixture, writes: list[str]
) -> None:
    owner = api.user("olivia", role="owner")
    assert api.client.post("/portfolios/main/groups", json={"amount": "100000"}, headers=owner).status_code == 201
    app = create_app(Settings(request_log=True), api.engine, keyring)
    logger = logging.getLogger("alluse.request")
    logger.addHandler(caplog.handler)
    try:
        with TestClient(app) as client:
            client.post(DEPOSITS, json={"to": "A1-GEN", "amount": "1"}, headers={**owner, "Idempotency-Key": "l1"})
    finally:
        logger.removeHandler(caplog.handler)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "alluse.request"]
    assert [(x["route"], x["status"], x["actor"]) for x in lines] == [
        ("/portfolios/{portfolio}/deposits", 201, "user:olivia")
    ]
    assert writes == ["l1"]


def test_a_write_that_landed_but_raised_is_answered_as_its_replay(
    api: Api, portfolio: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deposit sent without a key, whose write landed but whose answer was lost (a COMMIT that went
    through and then failed, say): the app, handed the request, answers it as a replay under the key
    the own path made up, and the money moves once."""
    owner = api.user("olivia", role="owner")
    assert api.client.post("/portfolios/main/groups", json={"amount": "100000"}, headers=owner).status_code == 201
    deposited, keys = fastpath.deposited, []

    def landed_then_failed(scope: Any, body: Any, c: Any, key: str) -> Any:
        keys.append(key)
        deposited(scope, body, c, key)
        raise ConnectionError("the answer to COMMIT was lost")

    monkeypatch.setattr(fastpath, "deposited", landed_then_failed)
    with api.engine.connect() as conn:
        before = conn.exec_driver_sql("SELECT count(*) FROM transfers").scalar_one()
    got = api.client.post(DEPOSITS, json={"to": "A1-GEN", "amount": "3"}, headers=owner)
    assert got.status_code == 201 and got.json()["replayed"] is True
    assert got.headers["idempotency-key"] == keys[0]
    with api.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM transfers").scalar_one() == before + 1
