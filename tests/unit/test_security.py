"""Pure pieces of the security layer: tokens, roles, the money edge (the login throttle counts in the
database: tests/integration/test_api_hardening.py)."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.fernet import Fernet

from alluse.api.schemas import money, usd
from alluse.config import Settings
from alluse.domain.errors import InvalidInput, Unauthenticated
from alluse.domain.parsing import parse_money
from alluse.security.keyring import Keyring
from alluse.security.tokens import TokenIssuer
from alluse.services.access import Principal, Role


def _issuer(minutes: int = 15) -> TokenIssuer:
    keyring = Keyring((Fernet.generate_key(),), "test")
    return TokenIssuer.from_settings(Settings(access_token_minutes=minutes), keyring)


def test_tokens_round_trip_and_refuse_the_wrong_type_expiry_and_tampering() -> None:
    issuer = _issuer()
    pair = issuer.pair(7, 3)
    assert issuer.read(pair["access_token"], "access") == (7, 3)
    assert issuer.read(pair["refresh_token"], "refresh") == (7, 3)
    with pytest.raises(Unauthenticated, match="not an access token"):
        issuer.read(pair["refresh_token"], "access")
    claims = jwt.decode(pair["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 15 * 60
    expired = jwt.encode({**claims, "exp": int(time.time()) - 1}, issuer.key, algorithm="HS256")
    with pytest.raises(Unauthenticated, match="expired"):
        issuer.read(expired, "access")
    with pytest.raises(Unauthenticated, match="invalid"):
        issuer.read(pair["access_token"][:-3] + "abc", "access")
    none_alg = jwt.encode(claims, None, algorithm="none")
    with pytest.raises(Unauthenticated):
        issuer.read(none_alg, "access")
    with pytest.raises(Unauthenticated):
        _issuer().read(pair["access_token"], "access")  # another deployment's key


def test_a_verified_access_token_is_remembered_but_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    issuer = _issuer()
    claims = jwt.decode(issuer.pair(7, 3)["access_token"], options={"verify_signature": False})
    exp = int(time.time()) + 1
    token = jwt.encode({**claims, "exp": exp}, issuer.key, algorithm="HS256")
    assert issuer.read(token, "access") == (7, 3)
    with monkeypatch.context() as m:
        m.setattr(jwt, "decode", lambda *a, **k: pytest.fail("a remembered token is decoded again"))
        assert issuer.read(token, "access") == (7, 3)
    while time.time() < exp + 0.05:
        time.sleep(0.05)
    with pytest.raises(Unauthenticated, match="expired"):
        issuer.read(token, "access")
    # A tampered copy is not the remembered token: it is decoded, and refused.
    with pytest.raises(Unauthenticated):
        issuer.read(token[:-3] + "abc", "access")


def test_roles_are_ordered_and_actors_name_the_caller() -> None:
    assert Role.viewer < Role.trader < Role.owner
    assert Role.parse(" Owner ") is Role.owner
    with pytest.raises(InvalidInput):
        Role.parse("admin")
    assert Principal("user", 1, "alice").actor == "user:alice"
    assert Principal("apikey", 3, "apikey:3", user_id=1).actor == "apikey:3"


@pytest.mark.parametrize(
    "text,message",
    [("1e999999999", "not in that form"), ("-1e99999999", "not in that form"), ("1E-999999999", "not in that form")],
)
def test_extreme_exponents_are_refused_quickly(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_money(text)


def test_cents_become_exact_decimal_strings_at_the_edge() -> None:
    assert usd(1) == "0.01" and usd(-125051) == "-1250.51" and usd(10**14) == "1000000000000.00"
    assert money({"amount_cents": 5, "legs": [{"amount_cents": -5, "account": "x"}], "n": 3}) == {
        "amount": "0.05",
        "legs": [{"amount": "-0.05", "account": "x"}],
        "n": 3,
    }
