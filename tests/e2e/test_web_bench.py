"""`alluse bench --only web` prints the overview metrics with its raw baseline, one JSON line each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alluse.cli.main import app


def test_bench_web_prints_the_overview_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["bench", "--quick", "--only", "web"], env={"ALLUSE_PORTFOLIO": ""})
    assert result.exit_code == 0, result.output
    rows = {r["metric"]: r for r in (json.loads(line) for line in result.output.splitlines())}
    assert set(rows) == {"web_overview_ms", "raw_overview_query_ms", "web_overview_vs_raw", "web_overview_kb"}
    assert rows["web_overview_ms"]["accounts"] == rows["raw_overview_query_ms"]["accounts"] == 1002
    assert rows["web_overview_ms"]["value"] > 0 and rows["raw_overview_query_ms"]["value"] > 0
    assert 0 < rows["web_overview_kb"]["value"] <= 300


def test_bench_only_names_its_parts() -> None:
    result = CliRunner().invoke(app, ["bench", "--only", "nothing"], env={"ALLUSE_PORTFOLIO": ""})
    assert (
        result.exit_code == 1
        and "ledger, lifecycle, trades, verify, ibkr, projection, web, cli or events" in result.output
    )
