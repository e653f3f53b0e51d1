"""The web dashboard over HTTP on both databases: every page for every role, the same figures as the
API, sessions, CSRF, refusals that change nothing, and page weight. The browser scenarios are in
tests/e2e/test_web_browser.py."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from datetime import date
from urllib.parse import quote

import pytest
from cryptography.fernet import Fernet

from alluse.api.app import create_app
from alluse.config import Settings
from alluse.security.keyring import Keyring
from alluse.services import access
from alluse.sim.showcase import build_showcase
from alluse.store.db import make_engine, migrate
from alluse.views import access as access_view
from tests.conftest import _truncate_pg, db_state
from tests.integration.conftest import PASSWORD, Api

PAGES = [
    "/p/demo/",
    "/p/demo/accounts/A1-COM",
    "/p/demo/tree",
    "/p/demo/lifecycle",
    "/p/demo/reports",
    "/p/demo/alerts",
    "/p/demo/projection",
]
MAX_PAGE_BYTES = 300 * 1024


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def web(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The showcase portfolio (the demo after sixteen weeks of trading) and a user per role, built once
    per database for this module: the tests read it, or prove they changed nothing, except the last,
    which runs the lifecycle."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('web') / 'web.db'}")
        migrate(engine)
    else:
        engine = request.getfixturevalue("pg_engine")
        _truncate_pg(engine)
    for _ in build_showcase(engine, "test:setup"):
        pass
    with engine.connect() as conn:
        pid = access_view.portfolio_id_for(conn, "demo")
    for role in ("viewer", "trader", "owner"):
        access.create_user(engine, role, PASSWORD)
        access.grant_role(engine, "test", pid, role, role, f"grant:{role}")
    app = create_app(Settings(request_log=False), engine, Keyring((Fernet.generate_key(),), "test"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from fastapi.testclient import TestClient
    with TestClient(app) as client:
        yield Api(client, engine, app)
    if request.param == "postgres":
        _truncate_pg(engine)
    else:
        engine.dispose()


def login(api: Api, username: str) -> None:
    c = api.client
    c.cookies.clear()
    token = csrf(c.get("/login").text)
    r = c.post("/login", data={"csrf_token": token, "username": username, "password": PASSWORD, "next": "/"}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/"


def csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "the page has no CSRF field"
    return m.group(1)


def cents(text: str) -> int:
    """'$1,234.56' or '−$1,234.56' as cents, for comparing what a page shows."""
    neg = text.strip().startswith("\u2212")
    whole, frac = text.strip().lstrip("\u2212$").replace(",", "").split(".")
    return (-1 if neg else 1) * (int(whole) * 100 + int(frac))


def test_every_page_for_every_role(web: Api) -> None:
    for role in ("viewer", "trader", "owner"):
        login(web, role)
        for path in PAGES:
            r = web.client.get(path)
            assert r.status_code == 200, (role, path, r.text[:300])
            assert 'data-testid="role">' + role in r.text
            assert "<script>" not in r.text and " style=" not in r.text and "onclick" not in r.text
        lifecycle = web.client.get("/p/demo/lifecycle").text
        assert ('data-testid="run-form"' in lifecycle) is (role == "owner")
        account = web.client.get("/p/demo/accounts/A1-COM").text
        assert ("Record a broker fact" in account) is (role != "viewer")
        assert ('href="/p/demo/roles"' in account) is (role == "owner")
        assert web.client.get("/p/demo/roles").status_code == (200 if role == "owner" else 403)


def test_overview_shows_the_apis_figures(web: Api) -> None:
    login(web, "viewer")
    html = web.client.get("/p/demo/").text
    tree = web.client.get("/portfolios/demo/accounts", headers=web.headers_for("viewer")).json()
    shown = 0
    for group in tree["groups"]:
        for acc in group["accounts"]:
            name = acc["name"]
            cash = re.search(rf'data-testid="cash-{name}">([^<]+)<', html)
            nav = re.search(rf'data-testid="nav-{name}">([^<]+)<', html)
            assert cash and nav, name
            assert cash.group(1).replace("\u2212", "-") == _usd(acc["cash"])
            assert nav.group(1).replace("\u2212", "-") == _usd(acc["nav"])
            shown += 1
    assert shown == 15
    total_nav = sum(cents(_usd(a["nav"])) for g in tree["groups"] for a in g["accounts"] if a["status"] == "ACTIVE")
    kpi = re.search(r'data-testid="nav">([^<]+)<', html)
    assert kpi and cents(kpi.group(1)) == total_nav
    # The breach is impossible to miss: a banner naming the account.
    assert 'data-testid="alert-banner"' in html and "A2-COM" in html


def _usd(decimal_text: str) -> str:
    neg = decimal_text.startswith("-")
    whole, frac = decimal_text.lstrip("-").split(".")
    return f"{'-' if neg else ''}${int(whole):,}.{frac}"


def test_journal_running_balance_ends_at_the_cash_and_pages(web: Api) -> None:
    login(web, "viewer")
    pattern = r'<td class="num"><span class="num[^"]*">([^<]+)</span></td><td class="num">([^<]+)</td>'
    html = web.client.get("/p/demo/accounts/A1-GEN?per=200").text
    count = re.search(r"\((\d+) entries", html)
    rows = re.findall(pattern, html[html.index('data-testid="journal"') :])
    assert count and len(rows) == int(count.group(1)) > 10  # every entry, newest first
    cash = re.search(r'data-testid="cash">([^<]+)<', html)
    assert cash and cents(rows[0][1]) == cents(cash.group(1))
    for (amount, balance), (_next_amount, older_balance) in zip(rows, rows[1:], strict=False):
        assert cents(balance) - cents(amount) == cents(older_balance)
    assert cents(rows[-1][1]) == cents(rows[-1][0])  # the first entry starts from zero
    # Paged: the second page of ten carries on where the first stopped.
    page2 = web.client.get("/p/demo/accounts/A1-GEN?page=2&per=10").text
    assert "page 2 of" in page2 and "← newer" in page2
    assert re.findall(pattern, page2[page2.index('data-testid="journal"') :]) == rows[10:20]


def test_a_lot_page_shows_the_basis_the_api_reports(web: Api) -> None:
    login(web, "viewer")
    positions = web.client.get("/portfolios/demo/positions?account=A1-COM", headers=web.headers_for("viewer")).json()
    lot = positions["accounts"][0]["lots"][0]
    html = web.client.get(f"/p/demo/accounts/A1-COM/lots/{lot['lot_id']}").text
    basis = re.search(r'data-testid="lot-basis">([^<]+)<', html)
    assert basis and basis.group(1) == _usd(lot["basis"])
    assert web.client.get("/p/demo/accounts/A1-COM/lots/999999").status_code == 404


def test_a_viewer_or_trader_posting_a_run_is_refused_and_nothing_changes(web: Api) -> None:
    for role in ("viewer", "trader"):
        login(web, role)
        token = csrf(web.client.get("/p/demo/lifecycle").text)
        before = db_state(web.engine)
        r = web.client.post(
            "/p/demo/lifecycle/run", data={"csrf_token": token, "as_of": "2026-12-31", "confirm": "yes"}
        )
        assert r.status_code == 403 and "owner role needed" in r.text
        assert db_state(web.engine) == before


def test_a_form_without_its_csrf_token_is_refused(web: Api) -> None:
    login(web, "owner")
    before = db_state(web.engine)
    for data in ({"as_of": "2026-12-31", "confirm": "yes"}, {"csrf_token": "forged", "as_of": "2026-12-31", "confirm": "yes"}):  # fmt: skip
        r = web.client.post("/p/demo/lifecycle/run", data=data)
        assert r.status_code == 403 and "did not come from this site" in r.text
    r = web.client.post("/p/demo/accounts/A2-REV/fills", data={"key": "web-x", "action": "STO", "symbol": "SPY", "quantity": "1"})  # fmt: skip
    assert r.status_code == 403
    assert db_state(web.engine) == before
    # Another user's token does not pass either: the token is bound to the session.
    owner_token = csrf(web.client.get("/p/demo/lifecycle").text)
    login(web, "viewer")
    r = web.client.post("/p/demo/accounts/A1-GEN/check", data={"csrf_token": owner_token, "action": "STO", "symbol": "SPY", "quantity": "1", "price": "1"})  # fmt: skip
    assert r.status_code == 403


def test_sessions_logins_and_isolation(web: Api) -> None:
    c = web.client
    c.cookies.clear()
    r = c.get("/p/demo/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/p/demo/")
    token = csrf(c.get("/login").text)
    bad = c.post("/login", data={"csrf_token": token, "username": "owner", "password": "wrong password!"})
    assert bad.status_code == 401 and "wrong username or password" in bad.text
    r = c.post("/login", data={"csrf_token": token, "username": "owner", "password": PASSWORD, "next": "//evil.example/"}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie  # plain HTTP here
    # The session cookie is not an API token.
    session = c.cookies.get("alluse_session")
    assert c.get("/portfolios/demo/accounts", headers={"Authorization": f"Bearer {session}"}).status_code == 401
    # A portfolio the user holds no role on looks exactly like one that does not exist.
    from alluse.services.portfolios import create_portfolio

    create_portfolio(web.engine, "test", "other", "other:create")  # nobody holds a role on it
    login(web, "owner")
    assert web.client.get("/p/other/").status_code == 404
    assert web.client.get("/p/nothing-here/").status_code == 404
    logout = web.client.post("/logout", data={"csrf_token": csrf(web.client.get("/p/demo/").text)}, follow_redirects=False)  # fmt: skip
    assert logout.status_code == 303
    assert web.client.get("/p/demo/", follow_redirects=False).status_code == 303


def test_pages_and_their_assets_weigh_at_most_300_kb_over_the_wire(web: Api) -> None:
    login(web, "owner")
    for path in [*PAGES, "/p/demo/roles", "/login"]:
        r = web.client.get(path, headers={"Accept-Encoding": "gzip"})
        assert r.status_code == 200
        total = r.num_bytes_downloaded  # as sent: compressed when the client accepts gzip
        for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', r.text):
            a = web.client.get(asset, headers={"Accept-Encoding": "gzip"})
            assert a.status_code == 200, asset
            total += a.num_bytes_downloaded
        fonts = web.client.get("/static/inter-5.3.0-latin-wght.woff2")
        total += len(fonts.content)
        assert total <= MAX_PAGE_BYTES, (path, total)


def test_static_files_are_vendored_and_compressed(web: Api) -> None:
    r = web.client.get("/static/chart-4.6.1.umd.min.js", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert "Chart.js v4.6.1" in r.text[:200]
    raw = web.client.get("/static/app.css", headers={"Accept-Encoding": "identity"})
    assert raw.status_code == 200 and "font-variant-numeric: tabular-nums" in raw.text


HOSTILE = ["²", "\x00", "x" * 300, "-1", "99999999999999999999999", "𝟘𝟙", "1E+99", "", "'\"<"]


def test_hostile_input_never_gets_a_5xx_nor_writes(web: Api) -> None:
    login(web, "owner")
    before = db_state(web.engine)
    token = csrf(web.client.get("/p/demo/lifecycle").text)
    for b in HOSTILE:
        q = quote(b, safe="")
        for path in (f"/p/{q}/", f"/p/demo/accounts/{q}", f"/p/demo/accounts/A1-COM/lots/{q}",
                     f"/p/demo/lifecycle?as_of={q}", f"/p/demo/reports?start={q}", f"/p/demo/?page={q}",
                     f"/p/demo/accounts/A1-GEN?page={q}&per={q}", f"/login?next={q}"):  # fmt: skip
            assert web.client.get(path).status_code < 500, path
        for path, data in (
            ("/p/demo/accounts/A1-GEN/check", {"action": b, "symbol": b, "quantity": b, "price": b, "delta": b}),
            (
                "/p/demo/accounts/A1-GEN/fills",
                {
                    "key": "web-" + b,
                    "action": "STO",
                    "symbol": b,
                    "quantity": b,
                    "price": b,
                    "commission": b,
                    "trade_date": b,
                },
            ),  # fmt: skip
            ("/p/demo/lifecycle/run", {"as_of": b}),
            ("/p/demo/roles", {"key": "web-x" + b, "username": b, "role": b}),
        ):
            r = web.client.post(path, data={**data, "csrf_token": token})
            assert r.status_code < 500, (path, b, r.text[:300])
    assert db_state(web.engine) == before


def test_owner_runs_the_lifecycle_once(web: Api) -> None:
    login(web, "owner")
    quarter_end = _next_quarter_end(date.today())
    # A trader's fact in this quarter gives the Rev-Acc something to reinvest at the quarter end.
    page = web.client.get("/p/demo/accounts/A2-REV").text
    put = f"IWM   {quarter_end:%y%m%d}P00200000"
    for action, extra in (("STO", {"price": "9.10"}), ("EXPIRE", {})):
        key = re.search(r'name="key" value="([^"]+)"', page)
        assert key
        form = {"csrf_token": csrf(page), "key": key.group(1), "action": action, "symbol": put, "quantity": "1",
                "trade_date": (date.today() if action == "STO" else quarter_end).isoformat(), **extra}  # fmt: skip
        r = web.client.post("/p/demo/accounts/A2-REV/fills", data=form)
        assert r.status_code == 200 and "Recorded fill" in r.text, r.text[-2000:]
        page = r.text
    plan = web.client.get(f"/p/demo/lifecycle?as_of={quarter_end}").text
    assert "Rev-Acc A2-REV" in plan and "reinvest" in plan
    data = {"csrf_token": csrf(plan), "as_of": quarter_end.isoformat()}
    unconfirmed = web.client.post("/p/demo/lifecycle/run", data=data)
    assert unconfirmed.status_code == 400 and "confirm" in unconfirmed.text
    if web.engine.dialect.name == "postgresql":  # SQLite's one writer queues a second sweep instead
        from alluse.services import lifecycle

        before = db_state(web.engine)
        with lifecycle._sweeping(web.engine, "demo", quarter_end) as (_pid, mine):
            assert mine
            busy = web.client.post("/p/demo/lifecycle/run", data=data | {"confirm": "yes"})
            rest = web.client.post(
                "/portfolios/demo/lifecycle/run",
                json={"as_of": quarter_end.isoformat()},
                headers=web.headers_for("owner"),
            )
        assert rest.status_code == 200 and rest.json()["busy"] is True and rest.json()["applied"] == [], rest.text
        assert busy.status_code == 200 and "another sweep of this portfolio as of that day is running" in busy.text
        assert db_state(web.engine) == before
    first = web.client.post("/p/demo/lifecycle/run", data=data | {"confirm": "yes"})
    assert first.status_code == 200 and 'data-testid="applied"' in first.text
    applied = re.search(r"(\d+) actions? applied", first.text)
    assert applied and int(applied.group(1)) >= 1
    before = db_state(web.engine)
    again = web.client.post("/p/demo/lifecycle/run", data=data | {"confirm": "yes"})
    assert "0 actions applied" in again.text and "never acts twice" in again.text
    assert db_state(web.engine) == before


def _next_quarter_end(day: date) -> date:
    for m, d in ((3, 31), (6, 30), (9, 30), (12, 31)):
        if date(day.year, m, d) >= day:
            return date(day.year, m, d)
    raise AssertionError("unreachable")
