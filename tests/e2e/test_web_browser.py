"""The web dashboard in a real browser (Debian's chromium through Playwright) against a real
`alluse serve` on a loopback port, on the showcase portfolio (the demo after sixteen weeks of trading)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip
PASSWORD = "browser-test-password"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but /usr/bin/chromium is missing: the browser tests must run in CI")
        pytest.skip("Debian chromium is not installed")
    from alluse.services import access
    from alluse.sim.showcase import build_showcase
    from alluse.store.db import make_engine, migrate
    from alluse.views.access import portfolio_id_for

    workdir = tmp_path_factory.mktemp("web")
    url = f"sqlite:///{workdir / 'alluse.db'}"
    engine = make_engine(url)
    migrate(engine)
    for _ in build_showcase(engine, "test:setup"):
        pass
    with engine.connect() as conn:
        pid = portfolio_id_for(conn, "demo")
    for role in ("viewer", "trader", "owner"):
        access.create_user(engine, role, PASSWORD)
        access.grant_role(engine, "test", pid, role, role, f"grant:{role}")
    engine.dispose()
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLUSE_")}
    env |= {"ALLUSE_DATABASE_URL": url, "ALLUSE_KEY_FILE": str(workdir / "alluse.key"), "ALLUSE_REQUEST_LOG": "false"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "alluse"), "serve", "--port", str(port)],
        cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    for _ in range(1200):  # up to two minutes: a busy shared machine starts slowly
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=1):
                break
        except OSError:
            time.sleep(0.1)
    else:
        proc.terminate()
        raise AssertionError(f"alluse serve never became ready: {proc.communicate(timeout=10)[1][-2000:]}")
    yield base
    proc.terminate()
    _out, err = proc.communicate(timeout=10)
    assert "Traceback" not in err, err[-3000:]


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page_for(browser: Any, server: str) -> Iterator[Any]:
    """`page_for(role, width=1280)`: a fresh browser context, logged in through the form, with console
    errors (a script or style the Content-Security-Policy refused among them) collected."""
    contexts = []

    def open_as(role: str | None, width: int = 1280) -> Any:
        ctx = browser.new_context(viewport={"width": width, "height": 844 if width < 600 else 800})
        contexts.append(ctx)
        page = ctx.new_page()
        page.errors = []  # type: ignore[attr-defined]
        page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        if role:
            page.goto(f"{server}/login")
            page.fill("input[name=username]", role)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{server}/p/demo/")
        return page

    yield open_as
    for ctx in contexts:
        ctx.close()


def _api(server: str, path: str, role: str = "owner") -> Any:
    login = urllib.request.Request(
        f"{server}/auth/login",
        data=json.dumps({"username": role, "password": PASSWORD}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(login) as r:
        token = json.loads(r.read())["access_token"]
    with urllib.request.urlopen(urllib.request.Request(f"{server}{path}", headers={"Authorization": f"Bearer {token}"})) as r:  # fmt: skip
        return json.loads(r.read())


def _usd(decimal_text: str) -> str:
    neg = decimal_text.startswith("-")
    whole, frac = decimal_text.lstrip("-").split(".")
    return f"{chr(0x2212) if neg else ''}${int(whole):,}.{frac}"


def test_owner_logs_in_and_the_overview_shows_the_apis_figures(page_for: Any, server: str) -> None:
    page = page_for("owner")
    assert page.locator("[data-testid=role]").inner_text() == "owner"
    tree = _api(server, "/portfolios/demo/accounts")
    for group in tree["groups"]:
        for acc in group["accounts"]:
            assert page.locator(f"[data-testid='cash-{acc['name']}']").inner_text() == _usd(acc["cash"])
            assert page.locator(f"[data-testid='nav-{acc['name']}']").inner_text() == _usd(acc["nav"])
    assert "A2-COM" in page.locator("[data-testid=alert-banner]").inner_text()
    assert page.errors == []


def test_open_an_account_and_a_lot(page_for: Any, server: str) -> None:
    page = page_for("viewer")
    page.click("[data-testid='row-A1-COM'] a")
    assert "Com-Acc A1-COM" in page.locator("h1").inner_text()
    assert page.locator("[data-testid=journal] tbody tr").count() >= 5
    lot = _api(server, "/portfolios/demo/positions?account=A1-COM", "viewer")["accounts"][0]["lots"][0]
    page.click("[data-testid=lots] tbody tr:first-child a")
    assert f"Lot #{lot['lot_id']}" in page.locator("h1").inner_text()
    assert page.locator("[data-testid=lot-basis]").inner_text() == _usd(lot["basis"])
    assert page.errors == []


def _next_quarter_end(day: date) -> date:
    return next(date(day.year, m, d) for m, d in ((3, 31), (6, 30), (9, 30), (12, 31)) if date(day.year, m, d) >= day)


def test_a_trader_records_and_an_owner_runs_a_lifecycle_plan(page_for: Any, server: str) -> None:
    quarter_end = _next_quarter_end(date.today())
    put = f"QQQ   {quarter_end:%y%m%d}P00400000"
    trader = page_for("trader")
    trader.goto(f"{server}/p/demo/accounts/A3-REV")
    for action, price, day in (("STO", "6.20", date.today()), ("EXPIRE", "", quarter_end)):
        form = trader.locator("form[action$='/fills']")
        form.locator("select[name=action]").select_option(action)
        form.locator("input[name=symbol]").fill(put)
        form.locator("input[name=quantity]").fill("1")
        form.locator("input[name=price]").fill(price)
        form.locator("input[name=trade_date]").fill(day.isoformat())
        form.locator("button[type=submit]").click()
        assert "Recorded fill" in trader.locator("[role=status]").first.inner_text()

    owner = page_for("owner")
    owner.click("nav >> text=Lifecycle")
    owner.fill("input[name=as_of]", quarter_end.isoformat())
    owner.click("text=Show the plan")
    plan = owner.locator("[data-testid=plan]").inner_text()
    assert "Rev-Acc A3-REV" in plan and "reinvest" in plan
    owner.check("input[name=confirm]")
    owner.click("text=Run the lifecycle")
    applied = owner.locator("[data-testid=applied]").inner_text()
    assert re.search(r"[1-9]\d* actions? applied", applied), applied
    assert "reinvest" in owner.locator("[data-testid=history]").inner_text()
    assert owner.errors == [] and trader.errors == []


def test_the_fork_tree_follows_a_node_by_mouse_and_keyboard(page_for: Any, server: str) -> None:
    page = page_for("viewer")
    page.click("nav >> text=Fork tree")
    tree = page.locator("[data-testid=tree]")
    assert "A3F1F1" in tree.inner_text() and "MERGED" in (page.locator("[data-testid=node-A1F1]").text_content() or "")
    # The tree's handlers come with app.js, a deferred script: the page's nodes are there before them.
    page.wait_for_load_state("load")
    page.hover("[data-testid=node-A3F1F1]")
    assert "dim" in (page.locator("[data-testid=node-A2]").get_attribute("class") or "")  # off its line
    assert "dim" not in (page.locator("[data-testid=node-A3]").get_attribute("class") or "")  # its ancestor
    page.locator("[data-testid=node-A3F1F1] a.chip").first.click()
    page.wait_for_url(re.compile(r"/accounts/A3F1F1-GEN$"))
    assert "A3F1F1-GEN" in page.locator("h1").inner_text()
    page.go_back()
    page.locator("[data-testid=node-A1F1] a.chip").last.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/accounts/A1F1-COM$"))
    assert "merged" in page.locator("h1").inner_text().lower()
    assert page.errors == []


def test_a_viewer_gets_no_run_button_and_a_posted_run_is_refused(page_for: Any, server: str) -> None:
    page = page_for("viewer")
    page.goto(f"{server}/p/demo/lifecycle")
    assert page.locator("[data-testid=run-form]").count() == 0
    assert page.get_by_role("button", name="Run the lifecycle").count() == 0
    before = len(_api(server, "/portfolios/demo/lifecycle/history", "viewer"))
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    r = page.request.post(f"{server}/p/demo/lifecycle/run", form={"csrf_token": token, "as_of": "2026-12-31", "confirm": "yes"})  # fmt: skip
    assert r.status == 403 and "owner role needed" in r.text()
    assert len(_api(server, "/portfolios/demo/lifecycle/history", "viewer")) == before


def test_a_form_without_its_csrf_token_is_refused(page_for: Any, server: str) -> None:
    page = page_for("owner")
    page.goto(f"{server}/p/demo/accounts/A1-GEN")
    form = page.locator("form[action$='/check']")
    form.locator("input[name=csrf_token]").evaluate("input => input.remove()")
    form.locator("input[name=symbol]").fill("SPY")
    form.locator("input[name=price]").fill("1")
    form.locator("button[type=submit]").click()
    assert "did not come from this site" in page.locator("main").inner_text()


def test_keyboard_focus_charts_under_the_servers_csp_and_a_phone_screen(page_for: Any, server: str) -> None:
    page = page_for("owner")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    response = page.goto(f"{server}/p/demo/reports")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy
    page.wait_for_load_state("networkidle")
    drawn = page.evaluate("[...document.querySelectorAll('canvas[data-chart]')].filter(c => Chart.getChart(c)).length")
    assert drawn == page.locator("canvas[data-chart]").count() >= 8
    assert page.errors == []  # no script or style was refused by the policy
    phone = page_for("viewer", width=390)
    for path in ("/p/demo/", "/p/demo/accounts/A1-GEN", "/p/demo/tree", "/p/demo/lifecycle", "/p/demo/reports"):
        phone.goto(f"{server}{path}")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390, path
    assert phone.errors == []
