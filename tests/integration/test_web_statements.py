"""Statement upload in the dashboard, on SQLite and PostgreSQL: any role reconciles (nothing
written), traders import exactly once, and the page shows both reports."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import db_state
from tests.integration.conftest import Api
from tests.integration.test_web import csrf, login

DATA = Path(__file__).parents[1] / "data" / "ibkr"


def _post(api: Api, path: str, token: str, name: str = "flex_statement.xml"):  # type: ignore[no-untyped-def]
    files = {"statement": (name, (DATA / name).read_bytes(), "text/xml")}
    return api.client.post(f"/p/main{path}", data={"csrf_token": token}, files=files)


def test_reconcile_then_import_once(api: Api, portfolio: str) -> None:
    owner = api.user("olivia", role="owner")
    r = api.client.post("/portfolios/main/groups", json={"amount": "0", "brokerage_accounts":
                        ["IBKR:U9100001", "IBKR:U9100002", "IBKR:U9100003"]}, headers=owner)  # fmt: skip
    assert r.status_code == 201, r.text
    api.user("victor", role="viewer")
    login(api, "victor")
    page = api.client.get("/p/main/statements").text
    assert "/statements/reconcile" in page and "/statements/import" not in page
    before = db_state(api.engine)
    rec = _post(api, "/statements/reconcile", csrf(page))
    assert rec.status_code == 200 and "7 differences" in rec.text and "$100,639.09" in rec.text
    assert _post(api, "/statements/import", csrf(page)).status_code == 403
    assert _post(api, "/statements/reconcile", "forged").status_code == 403
    assert db_state(api.engine) == before

    login(api, "olivia")
    token = csrf(api.client.get("/p/main/statements").text)
    first = _post(api, "/statements/import", token)
    assert first.status_code == 200 and 'data-testid="import-report"' in first.text
    assert "✓ reconciled" in first.text
    again = _post(api, "/statements/import", token)
    assert '<td class="num">0</td><td class="num">12</td>' in again.text  # every row already present
    state = db_state(api.engine)
    bad = _post(api, "/statements/import", token, "flex_malformed.xml")
    assert bad.status_code == 400 and "tradeID=4100010" in bad.text
    assert db_state(api.engine) == state
