"""The IBKR statement upload over the REST API, on SQLite and PostgreSQL: the same report as the CLI,
exactly-once re-uploads, and a bad file as problem+json with nothing written."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import db_state

P = "/portfolios/main"
DATA = Path(__file__).parents[1] / "data" / "ibkr"


def _upload(api, h, name: str, path: str = "/statements/ibkr"):  # type: ignore[no-untyped-def]
    files = {"statement": (name, (DATA / name).read_bytes(), "text/xml")}
    return api.client.post(f"{P}{path}", files=files, headers=h)


def test_upload_imports_once_and_reconciles(api, portfolio):  # type: ignore[no-untyped-def]
    h = api.user("olivia", role="owner")
    brokers = ["IBKR:U9100001", "IBKR:U9100002", "IBKR:U9100003"]
    r = api.client.post(f"{P}/groups", json={"amount": "0", "brokerage_accounts": brokers}, headers=h)
    assert r.status_code == 201, r.text

    viewer = api.user("victor", role="viewer")
    before = _upload(api, viewer, "flex_statement.xml", "/statements/ibkr/reconcile")
    assert before.status_code == 200 and before.json()["differences"] == 7
    assert before.json()["accounts"][0]["differences"][0] == {
        "what": "cash",
        "symbol": None,
        "broker": "100639.09",
        "alluse": "0.00",
        "broker_quantity": None,
        "alluse_quantity": None,
        "note": None,
    }
    assert _upload(api, viewer, "flex_statement.xml").status_code == 403

    r = _upload(api, h, "flex_statement.xml")
    assert r.status_code == 201, r.text
    body = r.json()
    assert [(a["added"], a["already_present"]) for a in body["accounts"]] == [(12, 0), (11, 0), (6, 0)]
    assert body["reconciliation"]["differences"] == 0
    assert body["reconciliation"]["accounts"][0]["cash"] == "100639.09"
    again = _upload(api, h, "flex_statement.xml").json()
    assert [(a["added"], a["already_present"]) for a in again["accounts"]] == [(0, 12), (0, 11), (0, 6)]

    state = db_state(api.engine)
    bad = _upload(api, h, "flex_malformed.xml")
    assert bad.status_code == 400 and "tradeID=4100010" in bad.json()["detail"]
    assert db_state(api.engine) == state
