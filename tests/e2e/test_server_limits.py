"""The server's own limits, over real HTTP against `alluse serve` in a subprocess on a free loopback
port: /healthz keeps answering while heavy reports and oversized bodies are being handled, forty
parallel wrong logins let exactly the limit reach the password check, and X-Forwarded-For is
believed only from a configured proxy."""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import date, timedelta
from pathlib import Path

import pytest

from alluse.services import access, trades
from alluse.services.demo import build_demo
from alluse.store.db import make_engine, migrate
from tests.e2e.test_serve import _port, _wait_ready

PASSWORD = "correct horse battery staple"


def _call(base: str, method: str, path: str, body: dict | None = None, headers: dict | None = None):  # type: ignore[no-untyped-def]
    req = urllib.request.Request(
        base + path, method=method, data=json.dumps(body).encode() if body is not None else None
    )
    req.add_header("content-type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo portfolio with a year of option trades (so reports have work to do) and a user."""
    where = tmp_path_factory.mktemp("server")
    engine = make_engine(f"sqlite:///{where / 'alluse.db'}")
    migrate(engine)
    for _ in build_demo(engine, "test"):
        pass
    facts = []
    day = date(2026, 1, 5)
    for week in range(52):
        on = day + timedelta(weeks=week)
        expiry = on + timedelta(days=4)
        symbol = f"XYZ   {expiry:%y%m%d}P00050000"
        facts.append((f"sto:{week}", trades.Fill("A1-REV", trades.FillAction.STO, symbol, 1, "1.25", 0, on)))
        facts.append((f"exp:{week}", trades.Fill("A1-REV", trades.FillAction.EXPIRE, symbol, 1, "0", 0, expiry)))
    trades.record_fills(engine, "test", "demo", facts)
    access.create_user(engine, "olivia", PASSWORD, is_admin=True)
    for name in ("u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9", "u10"):
        access.create_user(engine, name, PASSWORD)
    engine.dispose()
    return where


def _serve(database: Path, **settings: str) -> tuple[subprocess.Popen, str]:
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLUSE_")}
    env.update({f"ALLUSE_{k.upper()}": v for k, v in settings.items()})
    env.update(ALLUSE_DATABASE_URL=f"sqlite:///{database / 'alluse.db'}", ALLUSE_KEY_FILE=str(database / "alluse.key"))
    env["ALLUSE_REQUEST_LOG"] = "false"
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "alluse"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base)
    except BaseException:
        _stop(server)  # never leave a server (and its workers) running behind a failed test
        raise
    return server, base


def _stop(server: subprocess.Popen) -> str:
    server.terminate()
    _, err = server.communicate(timeout=20)
    return err


def _clear_throttle(database: Path) -> None:
    engine = make_engine(f"sqlite:///{database / 'alluse.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM login_throttle")
    engine.dispose()


def _serve_counting_logins(database: Path, **settings: str) -> tuple[subprocess.Popen, str]:
    """A server whose login counts start from nothing. Attempts are counted per fixed window: logins
    that straddle a window's end would be counted in two (five allowed in each), which a slow or
    loaded machine makes likely with the default minute. An hour's window, and never its last minute."""
    _clear_throttle(database)
    window = 3600
    if (left := window - time.time() % window) < 60:
        time.sleep(left + 1)
    return _serve(database, login_window_seconds=str(window), **settings)


def _slow_oversized_body(port: int, declared: bool, done: list[str]) -> None:
    """13 MB posted in pieces: with a Content-Length the server answers 413 at once; streamed
    (chunked) it cuts the body off once it passes the limit."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        head = "POST /portfolios/demo/check-trade HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        head += "Content-Length: 13000000\r\n\r\n" if declared else "Transfer-Encoding: chunked\r\n\r\n"
        s.sendall(head.encode())
        piece = b"{" + b'"k": 1, ' * 8000
        try:
            for _ in range(200):
                s.sendall(piece if declared else b"%x\r\n%s\r\n" % (len(piece), piece))
                time.sleep(0.005)
        except OSError:
            pass  # the server answered and closed: that is the point
        s.settimeout(30)
        done.append(s.recv(200).decode("latin-1").split("\r\n")[0])


def test_healthz_answers_while_heavy_reports_and_oversized_bodies_are_handled(database: Path) -> None:
    server, base = _serve(database)
    try:
        status, _, body = _call(base, "POST", "/auth/login", {"username": "olivia", "password": PASSWORD})
        assert status == 200, body
        auth = {"Authorization": f"Bearer {json.loads(body)['access_token']}"}
        port = int(base.rsplit(":", 1)[1])
        heavy_done: list[tuple[int, float]] = []
        bodies_done: list[str] = []

        def report(path: str) -> None:
            status, headers, _ = _call(base, "GET", path, headers=auth)
            heavy_done.append((status, time.perf_counter()))

        paths = [
            "/portfolios/demo/reports/monthly?year=2026&format=png",
            "/portfolios/demo/reports/performance?from=2026-01-01&to=2026-12-31&format=png",
            "/portfolios/demo/reports/weekly?from=2026-01-01&to=2026-12-31&format=png",
            "/portfolios/demo/reports/realized?year=2026&format=csv",
        ] * 2
        workers = [threading.Thread(target=report, args=(p,)) for p in paths]
        workers += [
            threading.Thread(target=_slow_oversized_body, args=(port, declared, bodies_done))
            for declared in (True, False)
        ]
        started = time.perf_counter()
        for w in workers:
            w.start()
        latencies = []
        while len(heavy_done) < len(paths) and time.perf_counter() - started < 120:
            t0 = time.perf_counter()
            status, _, _ = _call(base, "GET", "/healthz")
            latencies.append((time.perf_counter() - t0, t0))
            assert status == 200
            time.sleep(0.02)
        for w in workers:
            w.join(timeout=120)
    finally:
        err = _stop(server)
    assert [s for s, _ in heavy_done] == [200] * len(paths), err
    assert sorted(bodies_done) == ["HTTP/1.1 413 Request Entity Too Large"] * 2, bodies_done
    # Only the probes made while reports were still being drawn count.
    last_report = max(t for _, t in heavy_done)
    during = [lat for lat, t0 in latencies if t0 < last_report]
    assert len(during) >= 10, (len(during), latencies)
    # The reports draw in worker threads that share the server's GIL with the event loop: the typical
    # probe answers within 50 ms, a few wait for a thread switch (docs/security.md).
    assert statistics.median(during) < 0.05 and sorted(during)[int(len(during) * 0.9)] < 0.25, sorted(during)


def test_forty_parallel_wrong_logins_let_only_the_limit_reach_the_password_check(database: Path) -> None:
    server, base = _serve_counting_logins(database)
    try:
        gate = threading.Barrier(40)
        answers: list[tuple[int, str | None]] = []

        def wrong() -> None:
            gate.wait()
            status, headers, _ = _call(base, "POST", "/auth/login", {"username": "olivia", "password": "not it at all"})
            answers.append((status, headers.get("Retry-After")))

        threads = [threading.Thread(target=wrong) for _ in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = sorted(s for s, _ in answers)
        # 401 means the password was checked; 429 means it was refused before.
        assert statuses == [401] * 5 + [429] * 35, statuses
        assert all(int(r) >= 1 for s, r in answers if s == 429)
        # The right password is refused too while the username is locked.
        status, headers, _ = _call(base, "POST", "/auth/login", {"username": "olivia", "password": PASSWORD})
        assert status == 429 and int(headers["Retry-After"]) >= 1
    finally:
        _stop(server)


def test_forwarded_for_is_believed_only_from_a_configured_proxy(database: Path) -> None:
    server, base = _serve_counting_logins(database)
    try:
        # Ten spoofed addresses, ten usernames: by default they all count against the one peer.
        statuses = [
            _call(
                base,
                "POST",
                "/auth/login",
                {"username": f"u{i}", "password": "wrong password"},
                {"X-Forwarded-For": f"203.0.113.{i}"},
            )[0]
            for i in range(1, 11)
        ]
        assert statuses == [401] * 5 + [429] * 5, statuses
    finally:
        _stop(server)

    server, base = _serve_counting_logins(database, trusted_proxies="127.0.0.1")
    try:
        # Behind a trusted proxy each forwarded address has its own budget...
        statuses = [
            _call(
                base,
                "POST",
                "/auth/login",
                {"username": f"u{i}", "password": "wrong password"},
                {"X-Forwarded-For": f"203.0.113.{i}"},
            )[0]
            for i in range(1, 11)
        ]
        assert statuses == [401] * 10, statuses
        # ... and one address is still held to it, across usernames.
        statuses = [
            _call(
                base,
                "POST",
                "/auth/login",
                {"username": f"u{i}", "password": "wrong password"},
                {"X-Forwarded-For": "198.51.100.7"},
            )[0]
            for i in range(1, 8)
        ]
        assert statuses == [401] * 5 + [429] * 2, statuses
    finally:
        _stop(server)
