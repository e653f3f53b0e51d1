"""`broker fetch`: the Flex Web Service protocol against a local fake, then the import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from alluse.brokers.flex_service import FlexServiceError, FlexWebService
from alluse.config import Settings
from alluse.domain.errors import InvalidInput
from alluse.security.keyring import Keyring
from alluse.services import groups
from alluse.services.brokers import set_credentials
from alluse.services.statements import fetch_and_import
from tests.conftest import db_state
from tests.flex_fake import FakeFlex, serve

SAMPLE = (Path(__file__).parents[1] / "data" / "ibkr" / "flex_statement.xml").read_bytes()
ACCOUNTS = ["IBKR:U9100001", "IBKR:U9100002", "IBKR:U9100003"]
TOKEN, QUERY = "104857600123456789012345", "912345"


@pytest.fixture
def keyring() -> Keyring:
    return Keyring((Fernet.generate_key(),), "test")


@pytest.fixture
def mapped(engine: sa.Engine, portfolio: str, keyring: Keyring) -> sa.Engine:
    groups.open_group(engine, "t", portfolio, "g-ibkr", groups.group_opening(0, ACCOUNTS))
    creds = json.dumps({"flex_token": TOKEN, "flex_query_id": QUERY})
    set_credentials(engine, "t", portfolio, ACCOUNTS[0], creds, "cred", keyring)
    return engine


def _settings(url: str) -> Settings:
    return Settings(ibkr_flex_url=url, ibkr_flex_poll_seconds=0.01, ibkr_flex_max_polls=4)


def test_fetch_polls_then_imports(mapped: sa.Engine, keyring: Keyring) -> None:
    with serve(FakeFlex(TOKEN, QUERY, SAMPLE, pending=2)) as fake:
        data, report = fetch_and_import(mapped, "t", "main", ACCOUNTS[0], keyring, _settings(fake.url))
    assert data == SAMPLE
    assert fake.requests == ["SendRequest", "GetStatement", "GetStatement", "GetStatement"]
    assert [a["added"] for a in report["accounts"]] == [12, 11, 6]
    assert report["reconciliation"]["differences"] == 0


def test_fetch_errors_are_clear_and_write_nothing(mapped: sa.Engine, keyring: Keyring) -> None:
    before = db_state(mapped)
    with serve(FakeFlex("another-token", QUERY, SAMPLE)) as fake:
        with pytest.raises(FlexServiceError, match="SendRequest failed: error 1015: Token is invalid"):
            fetch_and_import(mapped, "t", "main", ACCOUNTS[0], keyring, _settings(fake.url))
    with serve(FakeFlex(TOKEN, QUERY, SAMPLE, pending=10)) as fake:
        with pytest.raises(FlexServiceError, match="not ready after 4 tries .*1019"):
            fetch_and_import(mapped, "t", "main", ACCOUNTS[0], keyring, _settings(fake.url))
    with pytest.raises(InvalidInput, match="IBKR:U9100002 has no stored credentials"):
        fetch_and_import(mapped, "t", "main", ACCOUNTS[1], keyring, _settings("http://127.0.0.1:9"))
    with pytest.raises(FlexServiceError, match="cannot reach"):
        fetch_and_import(mapped, "t", "main", ACCOUNTS[0], keyring, _settings("http://127.0.0.1:9"))
    assert db_state(mapped) == before


def test_service_retries_are_bounded() -> None:
    slept: list[float] = []
    with serve(FakeFlex(TOKEN, QUERY, SAMPLE, pending=3)) as fake:
        source = FlexWebService(fake.url, TOKEN, QUERY, poll_seconds=0.5, max_polls=4, sleep=slept.append)
        assert source.statement() == SAMPLE
    assert slept == [0.5, 0.5, 0.5]
