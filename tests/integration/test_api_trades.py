"""Trades, marks, positions, tax, weeks, alerts, the protocol check and the reports over the REST API,
on SQLite and PostgreSQL: hand-worked figures to the cent, all-or-nothing batches, idempotency, CSV
and PNG answers, and bad input as problem+json."""

from __future__ import annotations

import csv
import io
import struct
from decimal import Decimal

import pytest

from alluse.services.reports import write_realized_csv
from alluse.services.verify import verify
from tests.conftest import db_state

P = "/portfolios/main"
PUT = "AAPL  260116P00180000"


@pytest.fixture
def owner(api, portfolio):  # type: ignore[no-untyped-def]
    h = api.user("olivia", role="owner")
    r = api.client.post(f"{P}/groups", json={"amount": "100000"}, headers=h)
    assert r.status_code == 201, r.text
    return h


def post(api, h, path: str, body: dict, status: int = 201, key: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    headers = {**h, "Idempotency-Key": key} if key else h
    r = api.client.post(f"{P}{path}", json=body, headers=headers)
    assert r.status_code == status, r.text
    return r.json()


def get(api, h, path: str, **params: str) -> dict:  # type: ignore[no-untyped-def]
    r = api.client.get(f"{P}{path}", params=params, headers=h)
    assert r.status_code == 200, r.text
    return r.json()


def trade_a_month(api, h) -> None:  # type: ignore[no-untyped-def]
    """A put sold and expired, ten shares bought, marked, four sold: the figures of the tests below."""
    fill = {"account": "A1-GEN", "commission": "0.65"}
    sto = post(api, h, "/fills", {**fill, "action": "STO", "symbol": PUT, "quantity": 1, "price": "2.50"} | D(5))
    assert (sto["cash"], sto["realized"], sto["symbol"]) == ("249.35", "0.00", PUT)
    expired = post(api, h, "/fills", {"account": "A1-GEN", "action": "EXPIRE", "symbol": PUT, "quantity": 1})
    # No date given: an expiry happens on the option's expiry; the premium net of commission is realized.
    assert (expired["trade_date"], expired["realized"], expired["cash"]) == ("2026-01-16", "249.35", "0.00")
    buy = {"account": "A1-GEN", "action": "BTO", "symbol": "MSFT", "quantity": 10, "price": "100.25"}
    assert post(api, h, "/fills", {**buy, "commission": "1"} | D(20))["cash"] == "-1003.50"
    marked = post(api, h, "/marks", {"prices": {"MSFT": "110"}, "as_of": "2026-01-21"})
    assert (marked["marks"], marked["positions_revalued"]) == (1, 1)
    sell = {"account": "A1-GEN", "action": "STC", "symbol": "MSFT", "quantity": 4, "price": "120"}
    # 4/10 of the 1,003.50 basis is 401.40: 480.00 − 401.40 realized.
    assert post(api, h, "/fills", sell | {"trade_date": "2026-02-02"})["realized"] == "78.60"


def D(day: int) -> dict:  # noqa: N802 - reads as a constant
    return {"trade_date": f"2026-01-{day:02d}"}


def test_fills_marks_and_positions_to_the_cent(api, owner):  # type: ignore[no-untyped-def]
    trade_a_month(api, owner)
    h = get(api, owner, "/positions", account="A1-GEN", as_of="2026-02-03")
    (acc,) = h["accounts"]
    # 40,000 + 249.35 − 1,003.50 + 480.00; six shares at 120, the price of the latest trade.
    assert (acc["cash"], acc["positions_value"], acc["nav"]) == ("39725.85", "720.00", "40445.85")
    (lot,) = acc["lots"]
    assert (lot["symbol"], lot["quantity"], lot["basis"], lot["value"], lot["unrealized"], lot["term"]) == (
        "MSFT",
        6,
        "602.10",
        "720.00",
        "117.90",
        "SHORT",
    )
    assert get(api, owner, "/accounts/A1-GEN")["cash"] == "39725.85"
    assert verify(api.engine).ok


def test_tax_surplus_pnl_payments_and_the_tax_year(api, owner):  # type: ignore[no-untyped-def]
    trade_a_month(api, owner)
    r = api.client.put(f"{P}/tax/rates", json={"short_term": "30", "long_term": "15", "dividend": "15"}, headers=owner)
    assert r.status_code == 200 and r.json()["short_term_bps"] == 3000, r.text
    pnl = get(api, owner, "/accounts/A1-GEN/pnl", **{"from": "2026-01-01", "to": "2026-12-31"})
    # 249.35 + 78.60 short-term; 30 % of 327.95 is 98.385, half-even to 98.38.
    assert (pnl["realized"], pnl["pre_tax"], pnl["estimated_tax"], pnl["post_tax"]) == (
        "327.95",
        "327.95",
        "98.38",
        "229.57",
    )
    assert "not tax advice" in pnl["note"]
    paid = post(
        api, owner, "/tax/payments", {"account": "A1-GEN", "tax_year": 2026, "amount": "50", "paid_on": "2026-04-15"}
    )
    assert (paid["amount"], paid["buffer_breach"]) == ("50.00", False)
    year = get(api, owner, "/reports/tax-year", year="2026")
    assert (year["short_term"]["gains"], year["short_term"]["closes"]) == ("327.95", 2)
    assert (year["estimated_tax"], year["paid"], year["unpaid"]) == ("98.38", "50.00", "48.38")
    s = get(api, owner, "/accounts/A1-GEN/surplus", as_of="2026-04-15")
    # NAV 40,445.85 − 50 paid; base capital 40,000; unpaid 48.38. Tax on the 117.90 unrealized is what it
    # adds to the year: 30 % of 445.85 (133.755 → 133.76) − 98.38 = 35.38.
    assert (s["nav"], s["base_capital"], s["unpaid_tax_on_realized"], s["tax_on_unrealized"]) == (
        "40395.85",
        "40000.00",
        "48.38",
        "35.38",
    )
    assert Decimal(s["post_tax_surplus"]) == Decimal("40395.85") - 40000 - Decimal("48.38") - Decimal("35.38")
    assert verify(api.engine).ok


def test_a_batch_is_all_or_nothing_and_each_fact_keeps_its_key(api, owner):  # type: ignore[no-untyped-def]
    fee = {"account": "A1-REV", "action": "FEE", "amount": "2.50", "trade_date": "2026-01-07"}
    body = {"fills": [{**fee, "key": "stmt-1"}, {**fee, "key": "stmt-2", "amount": "1.25"}]}
    first = post(api, owner, "/fills/batch", body)
    assert (first["recorded"], first["replayed"]) == (2, 0)
    assert [f["cash"] for f in first["fills"]] == ["-2.50", "-1.25"]
    overlapping = {"fills": [*body["fills"], {**fee, "key": "stmt-3", "amount": "0.10"}]}
    again = post(api, owner, "/fills/batch", overlapping)
    assert (again["recorded"], again["replayed"]) == (1, 2)
    assert get(api, owner, "/accounts/A1-REV")["cash"] == "29996.15"  # 30,000 − 2.50 − 1.25 − 0.10
    before = db_state(api.engine)
    bad = {"account": "A1-REV", "action": "STC", "symbol": "MSFT", "quantity": 1, "price": "1", "key": "stmt-5"}
    r = api.client.post(f"{P}/fills/batch", json={"fills": [{**fee, "key": "stmt-4"}, bad]}, headers=owner)
    assert r.status_code in (404, 422) and r.headers["content-type"] == "application/problem+json", r.text
    twice = {"fills": [{**fee, "key": "dup"}, {**fee, "key": "dup"}]}
    r = api.client.post(f"{P}/fills/batch", json=twice, headers=owner)
    assert r.status_code == 400 and "appears twice" in r.json()["detail"]
    assert db_state(api.engine) == before


def test_a_fill_replays_by_key_and_a_changed_body_is_a_conflict(api, owner):  # type: ignore[no-untyped-def]
    fee = {"account": "A1-GEN", "action": "FEE", "amount": "3", "trade_date": "2026-01-07"}
    a = post(api, owner, "/fills", fee, key="f-1")
    b = post(api, owner, "/fills", fee, key="f-1")
    assert b["replayed"] is True and b["fill_id"] == a["fill_id"]
    r = api.client.post(f"{P}/fills", json={**fee, "amount": "4"}, headers={**owner, "Idempotency-Key": "f-1"})
    assert r.status_code == 409
    assert get(api, owner, "/accounts/A1-GEN")["cash"] == "39997.00"


BAD_FILLS = [
    (
        {"action": "BTO", "symbol": "MSFT", "quantity": 1, "price": "1.23456"},
        422,
    ),  # five decimals: refused by the schema, before any service
    ({"action": "BTO", "symbol": "MSFT", "quantity": 1, "price": 1.5}, 422),  # a JSON number
    ({"action": "BTO", "symbol": "MSFT", "quantity": -1}, 422),
    ({"action": "BUY", "symbol": "MSFT", "quantity": 1}, 422),
    ({"action": "BTO", "symbol": "AAPL  26XX16P00180000", "quantity": 1}, 400),
    ({"action": "BTO", "quantity": 1}, 400),  # no symbol
    ({"action": "FEE"}, 400),  # no amount
    ({"action": "STC", "symbol": "MSFT", "quantity": 5, "price": "1"}, 422),  # nothing held
    ({"action": "BTO", "symbol": "MSFT", "quantity": 1, "trade_date": "0001-01-01"}, 422),
    ({"action": "BTO", "symbol": "MSFT", "quantity": 1, "account": "NOPE-GEN"}, 404),
]


def test_bad_fills_are_problem_json_and_change_nothing(api, owner):  # type: ignore[no-untyped-def]
    before = db_state(api.engine)
    for body, status in BAD_FILLS:
        r = api.client.post(f"{P}/fills", json={"account": "A1-GEN", **body}, headers=owner)
        assert r.status_code == status, (body, r.status_code, r.text)
        assert r.headers["content-type"] == "application/problem+json" and r.json()["detail"], body
    r = api.client.post(f"{P}/marks", json={"prices": {"NEVER": "1"}}, headers=owner)
    assert r.status_code == 404 and "NEVER" in r.json()["detail"]
    assert db_state(api.engine) == before


def test_a_fact_below_the_buffer_is_recorded_with_an_alert(api, owner):  # type: ignore[no-untyped-def]
    # 39,000 into shares leaves 1,000 cash against a 5 % buffer of the 40,000 NAV (2,000).
    buy = {"account": "A1-GEN", "action": "BTO", "symbol": "MSFT", "quantity": 390, "price": "100"}
    assert post(api, owner, "/fills", buy | D(7))["buffer_breach"] is True
    (alert,) = get(api, owner, "/alerts")
    assert (alert["name"], alert["kind"]) == ("A1-GEN", "BUFFER_BREACH")


def test_the_protocol_check_answers_and_writes_nothing(api, owner):  # type: ignore[no-untyped-def]
    before = db_state(api.engine)
    call = {"account": "A1-GEN", "action": "STO", "symbol": "AAPL  260116C00200000", "quantity": 1, "price": "1"}
    r = post(api, owner, "/check-trade", {**call, "on": "2026-01-05", "delta": "0.30"}, status=200)
    assert r["ok"] is False and any("cover" in v for v in r["violations"]), r
    assert db_state(api.engine) == before


def test_week_types_and_their_accuracy(api, owner):  # type: ignore[no-untyped-def]
    w = post(api, owner, "/weeks", {"stage": "predict", "week_type": "GREEN", "week": "2026-01-07"})
    assert w["week_start"] == "2026-01-05" and w["predicted"] == "GREEN"
    post(api, owner, "/weeks", {"stage": "confirm", "week_type": "RED", "week": "2026-01-09"})
    post(api, owner, "/weeks", {"stage": "predict", "week_type": "CHOP", "week": "2026-01-05"}, status=409)
    acc = get(api, owner, "/weeks/accuracy")
    assert (acc["weeks"], acc["correct"], acc["by_predicted"]) == (1, 0, {"GREEN": {"correct": 0, "weeks": 1}})


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_reports_as_json_csv_and_png(api, owner):  # type: ignore[no-untyped-def]
    trade_a_month(api, owner)
    week = {"from": "2026-01-05", "to": "2026-01-25"}
    weekly = get(api, owner, "/reports/weekly", **week)
    assert [(w["week_start"], w["trades"], w["income"]) for w in weekly["weeks"]] == [
        ("2026-01-05", 1, "0.00"),
        ("2026-01-12", 1, "249.35"),
        ("2026-01-19", 1, "0.00"),
    ]
    r = api.client.get(f"{P}/reports/weekly", params={**week, "format": "csv"}, headers=owner)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["week_start"], x["income"]) for x in rows] == [(w["week_start"], w["income"]) for w in weekly["weeks"]]
    for path, params in (
        ("/reports/weekly", week),
        ("/reports/monthly", {"year": "2026"}),
        ("/reports/performance", {"from": "2026-01-01", "to": "2026-02-28"}),
    ):
        r = api.client.get(f"{P}{path}", params={**params, "format": "png"}, headers=owner)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png", (path, r.text[:200])
        width, height = png_size(r.content)
        assert width >= 1000 and height >= 450, path

    monthly = get(api, owner, "/reports/monthly", year="2026")
    jan = monthly["months"][0]
    assert (jan["month"], jan["income"], jan["reinvested"]) == ("2026-01", "249.35", "1003.50")
    assert set(jan["growth"]) >= {"A1-GEN", "A1-REV", "A1-COM"}
    r = api.client.get(f"{P}/reports/monthly", params={"year": "2026", "format": "csv"}, headers=owner)
    first = next(csv.DictReader(io.StringIO(r.text)))
    assert (first["income"], first["growth A1-GEN"]) == ("249.35", jan["growth"]["A1-GEN"])

    q = get(api, owner, "/reports/quarterly", year="2026")
    q1 = next(x for x in q["rows"] if x["quarter"] == "2026Q1" and x["account"] == "A1-GEN")
    assert (q1["short_term"], q1["net_realized"]) == ("327.95", "327.95")

    realized = get(api, owner, "/reports/realized", year="2026")
    assert sorted(x["gain"] for x in realized) == ["249.35", "78.60"]
    r = api.client.get(f"{P}/reports/realized", params={"year": "2026", "format": "csv"}, headers=owner)
    cli = io.StringIO()
    write_realized_csv(api.engine, "main", 2026, cli)
    assert r.text == cli.getvalue() and r.text.count("\n") == 3

    perf = get(api, owner, "/reports/performance", **{"from": "2026-01-01", "account": "A1-GEN"})
    (a,) = perf["accounts"]
    nav = get(api, owner, "/accounts/A1-GEN")["nav"]
    assert a["end_nav"] == a["series"][-1]["nav"] == nav == "40445.85"
    # Flows (the group's opening capital) are excluded: the return is the trading result alone.
    assert a["flows"] == "40000.00" and Decimal(a["twr"]) > 0


def test_report_periods_are_checked(api, owner):  # type: ignore[no-untyped-def]
    for path, params in (
        ("/reports/weekly", {"from": "2026-02-01", "to": "2026-01-01"}),
        ("/reports/performance", {"from": "1990-01-01", "to": "2026-01-01"}),
        ("/accounts/A1-GEN/pnl", {"from": "2026-02-01", "to": "2026-01-01"}),
    ):
        r = api.client.get(f"{P}{path}", params=params, headers=owner)
        assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json", (path, r.text)
    r = api.client.get(f"{P}/reports/monthly", params={"year": "12345"}, headers=owner)
    assert r.status_code == 422
