"""The broker commands end to end, on SQLite and PostgreSQL: map three IBKR accounts, import the
sample, reconcile to zero, re-import (nothing added), the overlap (only new rows), the malformed
file (one-line error, nothing written), fetch from a local fake Flex service, and a paper order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from alluse.cli.main import app, state
from alluse.config import get_settings
from tests.conftest import _truncate_pg, db_state
from tests.flex_fake import FakeFlex, serve

DATA = Path(__file__).parents[1] / "data" / "ibkr"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def cli(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        engine = request.getfixturevalue("sqlite_engine")
    else:
        engine = request.getfixturevalue("pg_engine")  # `pg` is parametrized itself (PostgreSQL, Citus)
        _truncate_pg(engine)
    url = engine.url.render_as_string(hide_password=False)
    env = {
        "ALLUSE_DATABASE_URL": url,
        "ALLUSE_PORTFOLIO": "",
        "COLUMNS": "220",
        "ALLUSE_SECRET_KEY": Fernet.generate_key().decode(),
        "ALLUSE_IBKR_FLEX_POLL_SECONDS": "0.01",
    }
    runner = CliRunner()

    def run(*args: str, code: int = 0, env_extra: dict | None = None) -> str:
        state._engine = None
        get_settings.cache_clear()  # each invocation reads its environment, as a new process would
        result = runner.invoke(app, list(args), env={**env, **(env_extra or {})})
        get_settings.cache_clear()
        assert result.exit_code == code, result.output
        return result.output

    run.engine = engine  # type: ignore[attr-defined]
    yield run
    if state._engine is not None:
        state._engine.dispose()
    state._engine = None


def test_import_reconcile_reimport_overlap_malformed(cli) -> None:  # type: ignore[no-untyped-def]
    cli("init")
    cli("group", "open", "0", "-b", "IBKR:U9100001", "-b", "IBKR:U9100002", "-b", "IBKR:U9100003")
    sample, overlap = str(DATA / "flex_statement.xml"), str(DATA / "flex_overlap.xml")
    out = cli("reconcile", "ibkr", sample, code=3)
    assert "cash broker $100,639.09, alluse $0.00" in out and "7 differences" in out

    out = cli("import", "ibkr", sample)
    assert "IBKR:U9100001" in out and "positions in EUR: 1, trades in EUR: 1" in out
    assert "sections not imported: CorporateActions (1 rows)" in out
    assert out.count("reconciled") == 3 and "no differences" in out
    assert "no differences" in cli("reconcile", "ibkr", sample)

    report = json.loads(cli("import", "ibkr", sample, "--json"))
    assert [(a["added"], a["already_present"]) for a in report["accounts"]] == [(0, 12), (0, 11), (0, 6)]
    report = json.loads(cli("import", "ibkr", overlap, "--json"))
    assert [(a["added"], a["already_present"]) for a in report["accounts"]] == [(2, 1), (1, 3)]
    assert report["reconciliation"]["differences"] == 0

    before = db_state(cli.engine)
    out = cli("import", "ibkr", str(DATA / "flex_malformed.xml"), code=1)
    assert out.startswith("error: the Flex statement cannot be read: <Trade accountId=U9100001 tradeID=4100010")
    assert len(out.strip().splitlines()) == 1
    out = cli("import", "ibkr", str(DATA / "no-such.xml"), code=1)
    assert out.startswith("error: cannot read")
    assert db_state(cli.engine) == before
    assert "audit chain intact" in cli("verify")


def test_fetch_from_a_fake_flex_service_and_a_paper_order(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli("init")
    cli("group", "open", "0", "-b", "IBKR:U9100001", "-b", "IBKR:U9100002", "-b", "IBKR:U9100003")
    cli("broker", "flex-credentials", "IBKR:U9100001", "--query-id", "912345", "--token", "tok-123")
    assert "tok-123" not in cli("broker", "list")
    saved = tmp_path / "fetched.xml"
    with serve(FakeFlex("tok-123", "912345", (DATA / "flex_statement.xml").read_bytes())) as fake:
        out = cli(
            "broker", "fetch", "IBKR:U9100001", "--save", str(saved), env_extra={"ALLUSE_IBKR_FLEX_URL": fake.url}
        )
    assert "no differences" in out and saved.read_bytes() == (DATA / "flex_statement.xml").read_bytes()
    with serve(FakeFlex("other", "912345", b"")) as fake:
        out = cli("broker", "fetch", "IBKR:U9100001", code=1, env_extra={"ALLUSE_IBKR_FLEX_URL": fake.url})
    assert out.startswith("error: IBKR Flex SendRequest failed: error 1015: Token is invalid")

    # Orders: the IBKR-mapped accounts have no live order adapter; a paper group fills at the mark.
    out = cli("order", "A1-COM", "BTO", "DEF", "10", "--date", "2026-11-30", code=1)
    assert out.startswith("error: not built yet: live IBKR orders are not built")
    cli("group", "open", "100000")
    cli("fill", "A2-COM", "BTO", "DEF", "1", "--price", "125", "--date", "2026-11-27")
    cli("mark", "DEF", "126.10", "--date", "2026-11-27")
    out = cli("order", "A2-COM", "BTO", "DEF", "10", "--date", "2026-11-30")
    assert "FILLED by PAPER: BTO 10 DEF at 126.1, commission $0.05, cash -$1,261.05" in out
    out = cli("order", "A2-COM", "BTO", "DEF", "10", "--date", "2026-12-01", code=1)
    assert "entry day TUE" in out and "REFUSED (recorded)" in out
    with cli.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT status FROM order_intents ORDER BY id")).scalars().all()
    assert rows == ["FILLED", "REFUSED"]
