"""The lifecycle over the REST API, on SQLite and PostgreSQL: the §5 Gen-Acc fork and a quarterly
reinvestment from gains recorded as fills, planned (nothing changes), run (exactly once), and read
back as history, earmarks and the fork tree — amounts as decimal strings, to the cent."""

from __future__ import annotations

import pytest

from alluse.services.verify import verify
from tests.conftest import db_state

P = "/portfolios/main"


@pytest.fixture
def owner(api, portfolio):  # type: ignore[no-untyped-def]
    h = api.user("olivia", role="owner")
    r = api.client.post(f"{P}/groups", json={"amount": "250000"}, headers=h)
    assert r.status_code == 201, r.text
    return h


def realize(api, h, account: str, buy: str, sell: str) -> None:  # type: ignore[no-untyped-def]
    """1,000 shares bought on 2 November 2026 and sold on the 13th: (sell − buy) × 1,000 realized."""
    for action, price, day in (("BTO", buy, "2026-11-02"), ("STC", sell, "2026-11-13")):
        body = {"account": account, "action": action, "symbol": "XYZ", "quantity": 1000, "price": price}
        r = api.client.post(f"{P}/fills", json={**body, "trade_date": day}, headers=h)
        assert r.status_code == 201, r.text


def test_plan_run_history_tree_and_earmarks(api, owner):  # type: ignore[no-untyped-def]
    realize(api, owner, "A1-GEN", "10", "85")  # 75,000 realized in the Gen-Acc
    realize(api, owner, "A1-REV", "10", "50")  # 40,000 realized in the Rev-Acc
    before = db_state(api.engine)
    r = api.client.get(f"{P}/lifecycle/plan", params={"as_of": "2026-11-20"}, headers=owner)
    assert r.status_code == 200, r.text
    (fork,) = r.json()
    # §5.1: the surplus above base capital less the 30 % tax reserve on the gain: 75,000 − 22,500.
    assert (fork["rule"], fork["outcome"], fork["amount"], fork["subject"]) == (
        "GEN_FORK",
        "APPLY",
        "52500.00",
        "Gen-Acc A1-GEN",
    )
    assert fork["legs"] == {"GEN": "26250.00", "COM": "26250.00"}
    assert db_state(api.engine) == before, "a plan changed the database"

    ran = api.client.post(f"{P}/lifecycle/run", json={"as_of": "2026-11-20"}, headers=owner)
    assert ran.status_code == 200, ran.text
    (applied,) = ran.json()["applied"]
    assert (applied["rule"], applied["amount"], applied["group"]) == ("GEN_FORK", "52500.00", "A1F1")
    cash = {n: api.client.get(f"{P}/accounts/{n}", headers=owner).json()["cash"] for n in ("A1-GEN", "A1F1-GEN")}
    assert cash == {"A1-GEN": "122500.00", "A1F1-GEN": "26250.00"}  # 175,000 − 52,500; half of it

    after = db_state(api.engine)
    again = api.client.post(f"{P}/lifecycle/run", json={"as_of": "2026-11-20"}, headers=owner)
    assert again.status_code == 200 and again.json()["applied"] == []
    assert db_state(api.engine) == after, "a repeated run acted again"

    quarter = api.client.post(f"{P}/lifecycle/run", json={"as_of": "2026-12-31"}, headers=owner).json()
    (reinvest,) = [a for a in quarter["applied"] if a["rule"] == "REINVEST"]
    # 40,000: a 30 % tax reserve, the rest split 75/25 between new contracts and LEAPS.
    assert reinvest["earmarks"] == {"TAX_RESERVE": "12000.00", "CONTRACTS": "21000.00", "LEAPS": "7000.00"}

    history = api.client.get(f"{P}/lifecycle/history", headers=owner).json()
    assert [(h["rule"], h["as_of"], h["amount"]) for h in history] == [
        ("GEN_FORK", "2026-11-20", "52500.00"),
        ("REINVEST", "2026-12-31", reinvest["amount"]),
    ]
    marks = {(e["account"], e["purpose"]): e for e in api.client.get(f"{P}/lifecycle/earmarks", headers=owner).json()}
    leaps = marks[("Rev-Acc A1-REV", "LEAPS")]
    assert (leaps["planned"], leaps["executed"], leaps["open"]) == ("7000.00", "0.00", "7000.00")

    (root,) = api.client.get(f"{P}/tree", headers=owner).json()
    (child,) = root["children"]
    assert (root["name"], child["name"], child["kind"], child["forked_from"]) == ("A1", "A1F1", "FORK", "A1-GEN")
    assert child["nav"] == "52500.00"
    assert verify(api.engine).ok


def test_run_needs_an_owner_and_a_date(api, owner):  # type: ignore[no-untyped-def]
    trader = api.user("tom", role="trader")
    r = api.client.post(f"{P}/lifecycle/run", json={"as_of": "2026-11-20"}, headers=trader)
    assert r.status_code == 403
    for body in ({}, {"as_of": "20-11-2026"}, {"as_of": "0001-01-01"}):
        r = api.client.post(f"{P}/lifecycle/run", json=body, headers=owner)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", body
    r = api.client.get(f"{P}/lifecycle/plan", headers=owner)
    assert r.status_code == 422
