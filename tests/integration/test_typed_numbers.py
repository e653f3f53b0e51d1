"""Every bad typed number is refused the same way through the CLI and through the API, on SQLite and
PostgreSQL: a message naming the field and the accepted form, and nothing written."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from alluse.cli.main import app
from alluse.domain import parsing
from alluse.services import groups
from alluse.services.portfolios import create_portfolio
from tests.conftest import db_state
from tests.unit.test_parsing import BAD_INPUTS

P = "/portfolios/main"
PRICE_FORM = parsing.PRICE_FORM.format(places=4)
DAY = "2026-01-05"

# kind → (CLI arguments, the field the CLI names, the form)
CLI: dict[str, tuple[list[str], str, str]] = {
    "money": (["deposit", "--", "A1", "{}"], "amount", parsing.MONEY_FORM),
    "price": (["mark", "--date", DAY, "--", "ABC", "{}"], "price of ABC", PRICE_FORM),
    "quantity": (["fill", "--price", "1", "--date", DAY, "--", "A1-GEN", "BTO", "ABC", "{}"], "quantity", None),
    "percent": (["config", "set", "--", "A1-GEN", "buffer_pct", "{}"], "buffer_pct", parsing.PERCENT_FORM),
    "delta": (["config", "set", "--", "A1-GEN", "delta_min", "{}"], "delta_min", parsing.DELTA_FORM.format(low=0)),
}
CLI["quantity"] = (CLI["quantity"][0], "quantity", parsing.QUANTITY_FORM)


def _api_requests(text: str) -> dict[str, list[tuple[str, str, dict[str, Any], str, str]]]:
    """kind → [(method, path, body, the field the answer names, the form)]."""
    fill = {"account": "A1-GEN", "action": "BTO", "symbol": "ABC", "price": "1", "trade_date": DAY}
    return {
        "money": [("post", "/deposits", {"to": "A1", "amount": text}, "amount", parsing.MONEY_FORM)],
        "price": [("post", "/marks", {"prices": {"ABC": text}, "as_of": DAY}, "prices.ABC", PRICE_FORM)],
        "quantity": [("post", "/fills", {**fill, "quantity": text}, "quantity", parsing.QUANTITY_FORM)],
        "percent": [
            ("put", "/config/A1-GEN", {"key": "buffer_pct", "value": text}, "buffer_pct", parsing.PERCENT_FORM),
            (
                "put",
                "/tax/rates",
                {"short_term": text, "long_term": "15", "dividend": "15"},
                "short_term",
                parsing.PERCENT_FORM,
            ),
        ],
        "delta": [
            (
                "put",
                "/config/A1-GEN",
                {"key": "delta_min", "value": text},
                "delta_min",
                parsing.DELTA_FORM.format(low=0),
            ),
            (
                "post",
                "/check-trade",
                {
                    "account": "A1-GEN",
                    "action": "STO",
                    "symbol": "ABC   260116P00050000",
                    "quantity": 1,
                    "price": "1",
                    "on": DAY,
                    "delta": text,
                },
                "delta",
                parsing.DELTA_FORM.format(low=-1),
            ),
        ],
    }


@pytest.fixture
def opened(engine):  # type: ignore[no-untyped-def]
    create_portfolio(engine, "test", "main", "test:portfolio")
    groups.open_group(engine, "test", "main", "open", groups.group_opening(4_000_000))
    return engine


def test_bad_numbers_are_refused_through_the_cli(opened) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()
    url = opened.url.render_as_string(hide_password=False)
    before = db_state(opened)
    for kind, text in BAD_INPUTS:
        args, field, form = CLI[kind]
        argv = ["--db", url, "--portfolio", "main", *(a.replace("{}", text) for a in args)]
        result = runner.invoke(app, argv, env={"ALLUSE_PORTFOLIO": "", "COLUMNS": "400"})
        line = result.output.strip()
        assert result.exit_code == 1, (kind, text, line)
        assert "\n" not in line and line.startswith(f"error: {field}: "), (kind, text, line)
        assert line.endswith(f"expected {form}"), (kind, text, line)
    assert db_state(opened) == before


def test_bad_numbers_are_refused_through_the_api(api) -> None:  # type: ignore[no-untyped-def]
    create_portfolio(api.engine, "test", "main", "test:portfolio")
    groups.open_group(api.engine, "test", "main", "open", groups.group_opening(4_000_000))
    headers = api.user("owner", role="owner")
    before = db_state(api.engine)
    n = 0
    for kind, text in BAD_INPUTS:
        for method, path, body, field, form in _api_requests(text)[kind]:
            r = getattr(api.client, method)(P + path, json=body, headers=headers | {"Idempotency-Key": f"k{n}"})
            n += 1
            detail = r.json().get("detail", "")
            assert r.status_code in (400, 422), (kind, text, path, r.status_code, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert f"{field}: " in detail and f"expected {form}" in detail, (kind, text, path, detail)
    assert n > len(BAD_INPUTS)
    assert db_state(api.engine) == before


def test_json_numbers_for_money_are_refused_and_a_huge_delta_is_422(api) -> None:  # type: ignore[no-untyped-def]
    create_portfolio(api.engine, "test", "main", "test:portfolio")
    groups.open_group(api.engine, "test", "main", "open", groups.group_opening(4_000_000))
    headers = api.user("owner", role="owner")
    before = db_state(api.engine)
    for amount in (1250.5, 1250, 1e3):
        r = api.client.post(P + "/deposits", json={"to": "A1", "amount": amount}, headers=headers)
        assert r.status_code == 422 and "amount: " in r.json()["detail"], r.text
    call = {"account": "A1-GEN", "action": "STO", "symbol": "ABC   260116P00050000", "quantity": 1, "price": "1"}
    r = api.client.post(P + "/check-trade", json={**call, "on": DAY, "delta": "1E+999999999"}, headers=headers)
    assert r.status_code == 422 and r.json()["detail"].startswith("delta: "), r.text
    assert db_state(api.engine) == before
    # The typed forms the parser accepts go through: groups of three and a dollar sign.
    r = api.client.post(P + "/deposits", json={"to": "A1-GEN", "amount": "$1,000.50"}, headers=headers)
    assert r.status_code == 201 and r.json()["amount"] == "1000.50", r.text
