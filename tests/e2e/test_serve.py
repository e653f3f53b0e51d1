"""`alluse serve` as a user starts it (the README's main-job command), over real HTTP on loopback;
and the HTTP benchmark's output format."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(method: str, url: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _serve(tmp_path: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLUSE_")}
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "alluse"), "serve", "--port", str(port)],
        cwd=tmp_path,
        env={**env, "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_ready(base: str) -> None:
    # Generous: each worker process imports the app afresh, which takes long on a busy 2-core machine.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server never became ready")


def test_first_run_serves_the_demo_and_prints_how_to_log_in_once(tmp_path: Path) -> None:
    port = _port()
    base = f"http://127.0.0.1:{port}"
    server = _serve(tmp_path, port)
    try:
        _wait_ready(base)
        status, _ = _call("GET", f"{base}/portfolios/demo/accounts")
        assert status == 401
    finally:
        server.terminate()
        out, err = server.communicate(timeout=60)
    assert "Traceback" not in err
    m = re.search(r"user admin .* password (\S+) ", out)
    assert m, out
    password = m.group(1)
    assert f"curl -s -X POST {base}/auth/login" in out
    # Both files owner-only: the database (created 0600 before SQLite opens it) and the key file.
    assert (tmp_path / "alluse.db").stat().st_mode & 0o077 == 0 and (
        tmp_path / "alluse.key"
    ).stat().st_mode & 0o077 == 0

    # Second run: same database, no new admin, no password printed; the first password works.
    server = _serve(tmp_path, port)
    try:
        _wait_ready(base)
        status, tokens = _call("POST", f"{base}/auth/login", {"username": "admin", "password": password})
        assert status == 200, tokens
        status, tree = _call("GET", f"{base}/portfolios/demo/accounts", token=tokens["access_token"])
        assert status == 200 and [g["name"] for g in tree["groups"]] == ["A1", "A2", "A3"]
        a1_gen = tree["groups"][0]["accounts"][0]
        assert a1_gen["name"] == "A1-GEN" and a1_gen["cash"] == "108000.00"
        status, r = _call(
            "POST", f"{base}/portfolios/demo/deposits", {"to": "A1", "amount": "100.00"}, tokens["access_token"]
        )
        assert status == 201 and r["amount"] == "100.00"
        status, log = _call("GET", f"{base}/portfolios/demo/audit?after=0&limit=500", token=tokens["access_token"])
        assert log[-1]["actor"] == "user:admin" and log[-1]["action"] == "cash.deposit"
    finally:
        server.terminate()
        out2, err2 = server.communicate(timeout=60)
    assert password not in out2 and "first run" not in out2
    # Structured request log: one JSON object per request on stderr.
    lines = [json.loads(x) for x in err2.splitlines() if x.startswith("{")]
    assert {"route": "/portfolios/{portfolio}/deposits", "status": 201} in [
        {"route": x["route"], "status": x["status"]} for x in lines
    ]


@pytest.mark.slow
def test_http_bench_prints_json_lines_with_raw_baseline() -> None:
    from alluse.bench.http import HttpBench
    from alluse.bench.run import Bench

    out = io.StringIO()
    bench = Bench("sqlite", True, out)
    http = HttpBench(bench)
    http.reads, http.writes = 200, 60
    http.run()
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    metrics = {r["metric"]: r for r in rows}
    for name in (
        "http_reads_per_s",
        "http_read_p99_ms",
        "raw_reads_per_s",
        "http_writes_per_s",
        "raw_writes_per_s",
        "http_fills_per_s",
        "http_fill_p99_ms",
        "raw_fills_per_s",
    ):
        assert metrics[name]["value"] > 0 and set(metrics[name]) >= {"metric", "value", "unit"}
    assert metrics["http_reads_per_s"]["requests"] == 200 and metrics["http_writes_per_s"]["requests"] == 60
    assert metrics["http_fills_per_s"]["requests"] == 60
