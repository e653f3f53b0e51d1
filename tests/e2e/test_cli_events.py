"""The events commands as a user runs them: webhook registration, the relay, `alerts --follow`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from alluse.services.trades import Fill, FillAction, record_fill
from tests.conftest import Stream


def test_webhook_commands_and_a_relay_run(
    cli_db: Callable[..., Any], stream: Stream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALLUSE_SECRET_KEY", "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg=")
    r = cli_db("webhook", "add", "http://127.0.0.1:9/hook", "--kind", "cash.*")
    assert "signing secret (shown once): whsec_" in r.output
    bad = cli_db("webhook", "add", "http://127.0.0.1:9/hook", "--kind", "No Such", ok=False)
    assert bad.exit_code == 1 and bad.output.strip().startswith("error: kinds:")
    cli_db("group", "open", "100000")
    cli_db("deposit", "A1", "10")
    out = cli_db("events", "relay", "--once", "--no-webhooks", "--nats-url", stream.url, "--stream", stream.name,
                 "--prefix", stream.prefix).output  # fmt: skip
    assert "published 4 (0 duplicates" in out  # portfolio.create, webhook.register, group.open, cash.deposit
    assert [env["kind"] for _, env, _ in stream.messages()][-1] == "cash.deposit"
    lines = cli_db("events", "list", "--kind", "cash.*").output.splitlines()
    assert [json.loads(line)["data"]["amount_cents"] for line in lines] == [1000]
    listed = json.loads(cli_db("webhook", "list", "--json").output)
    assert listed[0]["kinds"] == ["cash.*"] and listed[0]["enabled"]
    cli_db("webhook", "disable", "1")
    assert cli_db("webhook", "disable", "1", ok=False).output.startswith("error: no enabled webhook endpoint 1")
    down = cli_db("events", "relay", "--once", "--no-webhooks", "--nats-url", "nats://127.0.0.1:1", ok=False)
    assert down.exit_code == 1 and "unreachable" in down.output


def test_alerts_follow_streams_new_alerts(cli_db: Callable[..., Any], tmp_path: Path) -> None:
    cli_db("group", "open", "100000")
    url = str(cli_db.engine.url)  # type: ignore[attr-defined]
    alluse = Path(sys.executable).parent / "alluse"
    proc = subprocess.Popen([str(alluse), "--db", url, "-p", "main", "alerts", "--follow"], stdout=subprocess.PIPE,
                            text=True, env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("no open alerts")
        assert proc.stdout.readline().startswith("following alerts after event")
        sym = "XYZ   270108P00390000"
        on = date(2027, 1, 4)
        record_fill(cli_db.engine, "t", "main", "sto", Fill("A1-GEN", FillAction.STO, sym, 1, "1", trade_date=on))  # type: ignore[attr-defined]
        record_fill(cli_db.engine, "t", "main", "asg", Fill("A1-GEN", FillAction.ASSIGN, sym, 1, trade_date=on))  # type: ignore[attr-defined]
        got = sorted(proc.stdout.readline().split(" ", 1)[1] for _ in range(2))
        assert got[0].startswith("assignment raised A1-GEN: XYZ") and got[1].startswith("buffer_breach raised")
    finally:
        proc.terminate()
        proc.wait(10)
