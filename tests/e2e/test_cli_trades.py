"""The trading commands end to end through the CLI: one-line errors, exit codes, CSV and PNG files."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alluse.cli.main import app, state


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ALLUSE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setattr(state, "_engine", None)
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        r = runner.invoke(app, list(args))
        assert r.exit_code == code, r.output
        return r.output

    invoke("init")
    invoke("group", "open", "250000")
    return invoke


def test_fill_report_csv_and_png(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    put = "XYZ   270108P00050000"
    out = run("fill", "A1-GEN", "STO", put, "2", "--price", "1.25", "--commission", "1.30", "--date", "2027-01-07")
    assert "cash $248.70" in out
    assert "realized $248.70" in run("fill", "A1-GEN", "EXPIRE", put, "2")
    run("fill", "A1-COM", "BTO", "ABC", "100", "--price", "20", "--date", "2027-01-11")
    run("mark", "ABC", "21", "--date", "2027-01-15")
    assert "$100.00" in run("positions", "A1-COM")
    run("week", "predict", "GREEN", "--week", "2027-01-04")
    run("week", "confirm", "GREEN", "--week", "2027-01-08")
    png, wcsv = tmp_path / "w.png", tmp_path / "w.csv"
    run("report", "weekly", "--from", "2027-01-04", "--to", "2027-01-17", "--png", str(png), "--csv", str(wcsv))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    rows = list(csv.DictReader(wcsv.open()))
    assert rows[0]["income_cents"] == "24870" and rows[0]["correct"] == "True"
    mpng = tmp_path / "m.png"
    assert "estimate, not tax advice" in run("report", "monthly", "--year", "2027", "--png", str(mpng))
    assert mpng.stat().st_size > 10_000
    out = run("report", "realized", "--year", "2027")
    assert "XYZ   270108P00050000,SHORT,2,2027-01-07,2027-01-08,248.70,0.00,248.70,SHORT" in out
    assert "estimate, not tax advice" in run("report", "tax-year", "--year", "2027")
    assert "estimate, not tax advice" in run("tax", "surplus", "A1-GEN", "--as-of", "2027-03-31")
    out = run("tax", "pnl", "A1-GEN", "--from", "2027-01-01", "--to", "2027-03-31")
    assert "$248.70" in out and "$74.61" in out and "$174.09" in out  # 30 % short-term, estimate
    ppng = tmp_path / "p.png"
    run("report", "performance", "--from", "2027-01-01", "--to", "2027-01-31", "--png", str(ppng))
    assert ppng.stat().st_size > 10_000
    assert "verified" in run("verify")


def test_errors_are_one_line_and_check_trade_exits_1(run) -> None:  # type: ignore[no-untyped-def]
    out = run("fill", "A1-GEN", "STO", "XYZ   270108C00050000", "1", "--price", "1", "--date", "2027-01-07", code=1)
    assert out.startswith("error: calls must be covered") and "Traceback" not in out
    out = run("fill", "A1-GEN", "BTO", "XYZ", "1", "--price", "1.00001", code=1)
    assert "more than 4 decimals" in out
    out = run(
        "check-trade",
        "A1-GEN",
        "STO",
        "XYZ   270115P00050000",
        "1",
        "--price",
        "1",
        "--delta",
        "0.3",
        "--date",
        "2027-01-04",
        code=1,
    )
    assert "REFUSED" in out and "delta 0.3 is outside" in out
    out = run(
        "check-trade",
        "A1-GEN",
        "STO",
        "XYZ   270108P00050000",
        "1",
        "--price",
        "1",
        "--delta",
        "0.45",
        "--date",
        "2027-01-07",
    )
    assert out.startswith("OK")
    assert run("mark", "NOPE", "1", code=1).startswith("error: no instrument 'NOPE'")
