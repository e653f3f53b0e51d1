"""API hardening in-process, on SQLite and PostgreSQL: body and JSON bounds (413, 415, 422), security
headers, the token lifecycle (rotation with reuse detection, logout, signing out everywhere, password
change and reset), the login throttle's atomic count, and answers that reveal no usernames or
other portfolios' brokerage accounts."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from alluse.domain.errors import TooManyAttempts
from alluse.services import access, brokers
from alluse.services.portfolios import create_portfolio
from alluse.services.ratelimit import LoginThrottle
from tests.conftest import db_state
from tests.integration.conftest import PASSWORD

PROBLEM = "application/problem+json"


@pytest.fixture
def owner(api, portfolio):  # type: ignore[no-untyped-def]
    return api.user("olivia", role="owner")


def _login(api, username: str = "olivia", password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return api.client.post("/auth/login", json={"username": username, "password": password})


def test_oversized_body_is_413_problem_json_and_changes_nothing(api, owner):  # type: ignore[no-untyped-def]
    before = db_state(api.engine)
    limit = api.app.state.ctx.settings.max_body_bytes
    big = b'{"to": "A1", "amount": "1", "memo": "' + b"x" * limit + b'"}'
    r = api.client.post("/portfolios/main/deposits", content=big, headers={**owner, "content-type": "application/json"})
    assert r.status_code == 413 and r.headers["content-type"] == PROBLEM, r.text

    # Streamed without a Content-Length: cut off once the bytes pass the limit.
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    r = api.client.post(
        "/portfolios/main/deposits", content=chunks(), headers={**owner, "content-type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["status"] == 413
    assert db_state(api.engine) == before


@pytest.mark.parametrize(
    ("content_type", "body", "status", "words"),
    [
        ("text/plain", b'{"to": "A1", "amount": "1"}', 415, "application/json"),
        ("application/x-www-form-urlencoded", b"to=A1&amount=1", 415, "application/json"),
        ("application/json; charset=latin-1", b'{"to": "A1", "amount": "1"}', 415, "UTF-8"),
        ("application/json; charset=utf-8", b'{"to": "A1", "amount": "1", "amount": "2"}', 422, "duplicate key"),
        ("application/json", b'{"to": "A1", "amount": "1", "memo": ' + b"[" * 40 + b"]" * 40 + b"}", 422, "deeper"),
        (
            "application/json",
            b'{"to": "A1", "amount": "1", "x": {' + b",".join(b'"k%d": 1' % i for i in range(1500)) + b"}}",
            422,
            "keys",
        ),
        ("application/json", b"[" * 100_000 + b"]" * 100_000, 400, "parsing"),
    ],
)
def test_json_bodies_are_checked_before_anything_happens(api, owner, content_type, body, status, words):  # type: ignore[no-untyped-def]
    before = db_state(api.engine)
    r = api.client.post("/portfolios/main/deposits", content=body, headers={**owner, "content-type": content_type})
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM and words in r.json()["detail"]
    assert db_state(api.engine) == before


def test_unicode_digits_in_a_path_are_a_404_not_a_500(api, owner):  # type: ignore[no-untyped-def]
    for ref in ("%C2%B2", "%D9%A3", "%F0%9D%9F%98", "99999999999999999999999"):
        r = api.client.get(f"/portfolios/{ref}/accounts", headers=owner)
        assert r.status_code == 404 and r.headers["content-type"] == PROBLEM, (ref, r.text)


def test_security_headers_on_every_answer(api, owner):  # type: ignore[no-untyped-def]
    for path, headers in (("/healthz", {}), ("/portfolios/main/accounts", owner), ("/nope", {})):
        r = api.client.get(path, headers=headers)
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer" and r.headers["cache-control"] == "no-store"
    # The interactive docs page starts Swagger UI inline, so it alone gets the docs policy.
    assert "unsafe-inline" in api.client.get("/docs").headers["content-security-policy"]


def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_family(api, owner):  # type: ignore[no-untyped-def]
    first = _login(api).json()
    second = api.client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    # The first token again: someone holds a copy. Refused, and the whole family goes with it.
    reuse = api.client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401 and "already used" in reuse.json()["detail"]
    assert api.client.post("/auth/refresh", json={"refresh_token": second["refresh_token"]}).status_code == 401
    # Another login is another family, untouched.
    other = _login(api).json()
    assert api.client.post("/auth/refresh", json={"refresh_token": other["refresh_token"]}).status_code == 200


def test_logout_revokes_the_refresh_token_and_logout_everywhere_every_token(api, owner):  # type: ignore[no-untyped-def]
    a, b = _login(api).json(), _login(api).json()
    assert api.client.post("/auth/logout", json={"refresh_token": a["refresh_token"]}).status_code == 204
    assert api.client.post("/auth/refresh", json={"refresh_token": a["refresh_token"]}).status_code == 401
    bearer = {"Authorization": f"Bearer {b['access_token']}"}
    assert api.client.get("/auth/me", headers=bearer).status_code == 200
    assert api.client.post("/auth/logout-everywhere", headers=bearer).status_code == 204
    assert api.client.get("/auth/me", headers=bearer).status_code == 401
    assert api.client.post("/auth/refresh", json={"refresh_token": b["refresh_token"]}).status_code == 401
    assert _login(api).status_code == 200


def test_password_change_and_admin_reset(api, owner):  # type: ignore[no-untyped-def]
    tokens = _login(api).json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    body = {"current_password": "wrong password!", "new_password": "a brand new passphrase"}
    assert api.client.post("/auth/password", json=body, headers=bearer).status_code == 401
    body["current_password"] = PASSWORD
    assert api.client.post("/auth/password", json=body, headers=bearer).status_code == 204
    assert api.client.get("/auth/me", headers=bearer).status_code == 401  # every token voided
    assert _login(api).status_code == 401
    assert _login(api, password="a brand new passphrase").status_code == 200

    admin = api.user("ada", admin=True)
    reset = {"new_password": "reset by the admin 1"}
    assert api.client.put("/users/olivia/password", json=reset, headers=owner).status_code in (401, 403)
    assert api.client.put("/users/olivia/password", json=reset, headers=admin).status_code == 204
    assert api.client.put("/users/nobody/password", json=reset, headers=admin).status_code == 404
    assert _login(api, password="reset by the admin 1").status_code == 200
    users = api.client.get("/users", headers=admin).json()
    assert [u["username"] for u in users] == ["olivia", "ada"]


def test_api_key_answer_carries_created_at(api, owner):  # type: ignore[no-untyped-def]
    r = api.client.post(
        "/api-keys", json={"name": "bot", "scopes": [{"portfolio": "main", "role": "viewer"}]}, headers=owner
    )
    assert r.status_code == 201 and r.json()["created_at"] is not None
    assert r.json()["created_at"] == api.client.get("/api-keys", headers=owner).json()[0]["created_at"]


def test_granting_a_role_does_not_tell_which_usernames_exist(api, owner):  # type: ignore[no-untyped-def]
    access.create_user(api.engine, "stranger", PASSWORD)  # exists, but shares no portfolio with olivia
    answers = {}
    for name in ("stranger", "nobody-at-all"):
        r = api.client.put(f"/portfolios/main/roles/{name}", json={"role": "viewer"}, headers=owner)
        answers[name] = (r.status_code, r.json()["detail"].replace(name, "NAME"))
    assert answers["stranger"] == answers["nobody-at-all"] and answers["stranger"][0] == 404
    for name in ("stranger", "nobody-at-all"):
        r = api.client.delete(f"/portfolios/main/roles/{name}", headers=owner)
        answers[name] = (r.status_code, r.json()["detail"].replace(name, "NAME"))
    assert answers["stranger"] == answers["nobody-at-all"] and answers["stranger"][0] == 404
    # An admin grants the first role; after that, the owner sees the user and may change the role.
    admin = api.user("ada", admin=True)
    assert api.client.put("/portfolios/main/roles/stranger", json={"role": "viewer"}, headers=admin).status_code == 200
    assert api.client.put("/portfolios/main/roles/stranger", json={"role": "trader"}, headers=owner).status_code == 200


def test_a_brokerage_account_of_another_portfolio_is_refused_without_saying_so(api, owner):  # type: ignore[no-untyped-def]
    create_portfolio(api.engine, "test", "theirs", "test:theirs")
    brokers.register(api.engine, "test", "theirs", ["IBKR:U777"], "reg:theirs")
    brokers.register(api.engine, "test", "main", ["IBKR:U888"], "reg:main")
    theirs = api.client.post("/portfolios/main/brokerage-accounts", json={"accounts": ["IBKR:U777"]}, headers=owner)
    ours = api.client.post("/portfolios/main/brokerage-accounts", json={"accounts": ["IBKR:U888"]}, headers=owner)
    assert theirs.status_code == ours.status_code == 409
    assert theirs.json()["detail"].replace("U777", "N") == ours.json()["detail"].replace("U888", "N")
    r = api.client.post(
        "/portfolios/main/groups", json={"amount": "1000", "brokerage": ["IBKR:U777"] * 3}, headers=owner
    )
    assert r.status_code in (409, 422) and "another portfolio" not in r.text


def test_throttle_lets_exactly_the_limit_through_under_concurrency(engine):  # type: ignore[no-untyped-def]
    throttle = LoginThrottle(engine, max_attempts=5, window_seconds=300)
    passed, refused = [], []
    gate = threading.Barrier(40)

    def attempt(i: int) -> None:
        gate.wait()
        try:
            throttle.attempt("user:victim", f"ip:10.0.0.{i}")
            passed.append(i)
        except TooManyAttempts as exc:
            assert exc.retry_after >= 1
            refused.append(i)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(passed) == 5 and len(refused) == 35
    # One row per key, whatever the number of attempts; a success clears the username's count.
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM login_throttle")).scalar_one() == 41
    throttle.succeeded("user:victim", "ip:10.0.0.0")
    throttle.attempt("user:victim", "ip:10.0.0.1")


def test_throttle_window_passes(engine):  # type: ignore[no-untyped-def]
    now = [1_000_000.0]
    throttle = LoginThrottle(engine, max_attempts=2, window_seconds=60, clock=lambda: now[0])
    throttle.attempt("user:x", "ip:a")
    throttle.attempt("user:x", "ip:a")
    with pytest.raises(TooManyAttempts) as refused:
        throttle.attempt("user:x", "ip:b")
    assert refused.value.retry_after == 20  # the window is 999,960 to 1,000,020
    now[0] += 21
    throttle.attempt("user:x", "ip:b")
    with engine.connect() as conn:
        # Finished windows' rows are pruned as new attempts come in.
        starts = conn.execute(sa.text("SELECT DISTINCT window_start FROM login_throttle")).scalars().all()
    assert min(starts) >= 999_960


def test_throttle_counts_per_username_and_per_address_and_a_success_gives_back(engine):  # type: ignore[no-untyped-def]
    throttle = LoginThrottle(engine, max_attempts=2, window_seconds=60, clock=lambda: 1_000_000.0)
    throttle.attempt("user:a", "ip:1")
    throttle.attempt("user:a", "ip:1")
    with pytest.raises(TooManyAttempts):
        throttle.attempt("user:b", "ip:1")  # the address is spent, whatever the username
    throttle.attempt("user:c", "ip:2")
    with pytest.raises(TooManyAttempts):
        throttle.attempt("user:a", "ip:3")  # and so is the username, from any address
    throttle.succeeded("user:c", "ip:2")  # clears c's count and gives ip:2 its attempt back
    throttle.attempt("user:c", "ip:2")
    throttle.attempt("user:d", "ip:2")
    with pytest.raises(TooManyAttempts):
        throttle.attempt("user:e", "ip:2")
