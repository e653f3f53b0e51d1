"""The web dashboard's overview of a portfolio with 1,000 accounts (334 groups), measured in-process:
`web_overview_ms` is the server time of one `GET /p/<portfolio>/` through the real app (session
cookie check, role lookup, the read model, the template, gzip), the median of `repeat` × 10 requests.
The raw baseline is the bare driver reading the same rows the page shows (every account with its
group and brokerage account, the open alerts), so `web_overview_vs_raw` says what the page adds on
top of its query. `web_overview_kb` is the page's size over the wire (gzip), to hold against the
300 KB budget of docs/web.md.
"""

from __future__ import annotations

import statistics
import time
import warnings
from typing import Any

from alluse.services import access, groups
from alluse.views.access import portfolio_id_for

GROUPS = 334  # three sleeves each: 1,002 accounts
PASSWORD = "bench-password-1"


def run_web(bench: Any) -> None:
    from alluse.api.app import create_app
    from alluse.config import Settings
    from alluse.security.keyring import Keyring

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the test client names a deprecated transport; the figures do not depend on it
        from fastapi.testclient import TestClient
    from cryptography.fernet import Fernet

    engine = bench.fresh_engine()
    groups.open_groups(engine, "bench", "bench", [(f"w{i}", groups.group_opening(10_000_000)) for i in range(GROUPS)])
    access.create_user(engine, "bench", PASSWORD)
    with engine.connect() as conn:
        pid = portfolio_id_for(conn, "bench")
    assert pid is not None
    access.grant_role(engine, "bench", pid, "bench", "viewer", "bench:viewer")
    app = create_app(Settings(request_log=False), engine, Keyring((Fernet.generate_key(),), "bench"))
    rounds = 10
    with TestClient(app) as client:
        login = client.get("/login")
        token = login.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        r = client.post("/login", data={"csrf_token": token, "username": "bench", "password": PASSWORD})
        assert r.status_code == 200, r.text[:300]
        page = client.get("/p/bench/", headers={"Accept-Encoding": "gzip"})
        assert page.status_code == 200 and "A25-COM" in page.text, "the overview must show every account"
        size = page.num_bytes_downloaded
        times = []
        for _ in range(bench.repeat * rounds):
            t = time.perf_counter()
            client.get("/p/bench/", headers={"Accept-Encoding": "gzip"})
            times.append(time.perf_counter() - t)
    accounts = 3 * GROUPS
    bench.emit("web_overview_ms", statistics.median(times) * 1000, "ms", accounts=accounts)
    raw = _raw_overview(bench, engine.url.render_as_string(hide_password=False), pid, bench.repeat * rounds)
    bench.emit("raw_overview_query_ms", raw * 1000, "ms", accounts=accounts)
    bench.emit("web_overview_vs_raw", statistics.median(times) / raw, "ratio")
    bench.emit("web_overview_kb", size / 1024, "KB", accounts=accounts, encoding="gzip")
    engine.dispose()


def _raw_overview(bench: Any, url: str, pid: int, n: int) -> float:
    from alluse.bench.raw import _raw_connection

    conn = _raw_connection(url, setup=False)
    sql = (
        "SELECT g.id, g.name, g.kind, g.status, g.parent_group_id, a.id, a.kind, a.name, a.status, a.cash_cents, "
        "a.positions_value_cents, a.collateral_cents, a.earmarked_cents, a.buffer_bps, a.base_capital_cents, "
        "b.broker, b.number FROM accounts a JOIN account_groups g ON g.portfolio_id = a.portfolio_id AND g.id = a.group_id "
        "LEFT JOIN brokerage_accounts b ON b.portfolio_id = a.portfolio_id AND b.account_id = a.id WHERE a.portfolio_id = ? ORDER BY g.id, a.id"
    )
    alerts = "SELECT id, account_id, kind, message, raised_at FROM alerts WHERE portfolio_id = ? AND cleared_at IS NULL"
    times = []
    for _ in range(n):
        t = time.perf_counter()
        rows = conn.execute(sql, (pid,)).fetchall()
        conn.execute(alerts, (pid,)).fetchall()
        times.append(time.perf_counter() - t)
    assert len(rows) == 3 * GROUPS
    conn.close()
    return statistics.median(times)
