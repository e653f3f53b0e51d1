"""Every CLI command, good and bad input: one-line errors, exit 1, database unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from alluse.cli.main import app
from tests.conftest import db_state


@pytest.fixture
def cli(cli_db):  # type: ignore[no-untyped-def]
    cli_db("group", "open", "250,000", "-b", "IBKR:U1", "-b", "IBKR:U2", "-b", "IBKR:U3", "-k", "open")
    return cli_db


def test_init_is_idempotent_and_group_open_shows_split(cli) -> None:  # type: ignore[no-untyped-def]
    assert "replayed" in cli("init", "--name", "main").output
    out = cli("group", "open", "100000", "--allocation", "50/25/25").output
    assert "A2" in out and "$50,000.00" in out and "PAPER:" in out


def test_accounts_tree_and_json(cli) -> None:  # type: ignore[no-untyped-def]
    out = cli("accounts").output
    for text in ("A1-GEN", "Gen-Acc", "$100,000.00", "$5,000.00", "$95,000.00", "IBKR:U1", "$237,500.00"):
        assert text in out
    tree = json.loads(cli("accounts", "--json").output)
    assert tree["groups"][0]["accounts"][0]["deployable_cents"] == 9_500_000


def test_deposit_withdraw_transfer_reverse(cli) -> None:  # type: ignore[no-untyped-def]
    out = cli("deposit", "A1", "20000", "--memo", "savings").output
    assert "deposit $20,000.00" in out and "A1-GEN +$8,000.00" in out
    assert "withdrawal $2,500.00" in cli("withdraw", "A1-REV", "2500").output
    out = cli("transfer", "A1-GEN", "A1-COM", "1000.50").output
    assert "transfer $1,000.50" in out
    transfer_id = out.split("transfer #")[1].split()[0]
    assert "reversed by" in cli("reverse", transfer_id, "--reason", "oops").output
    assert "verified" in cli("verify").output


def test_idempotency_key_replays(cli) -> None:  # type: ignore[no-untyped-def]
    cli("deposit", "A1-GEN", "10", "--idempotency-key", "dep-1")
    assert "replayed" in cli("deposit", "A1-GEN", "10", "-k", "dep-1").output
    out = cli("deposit", "A1-GEN", "11", "-k", "dep-1", ok=False)
    assert out.exit_code == 1 and "already used for a different request" in out.output


def test_broker_and_config_commands(cli) -> None:  # type: ignore[no-untyped-def]
    assert "registered IBKR:U9" in cli("broker", "add", "IBKR:U9").output
    listing = cli("broker", "list").output
    assert "IBKR:U9" in listing and "POOL" in listing and "Rev-Acc A1-REV" in listing
    cli("config", "set", "A1-GEN", "delta_min", "0.42")
    shown = cli("config", "show", "A1-GEN").output
    assert "0.42" in shown and "override" in shown
    assert "40/30/30" in cli("config", "show", "A1").output
    assert "moderate" in cli("config", "show", "portfolio").output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("withdraw", "A9-GEN", "10"), "no account 'A9-GEN'"),
        (("withdraw", "--", "A1-GEN", "-10"), "amount: '-10' is not in that form"),
        (("withdraw", "A1-GEN", "ten"), "expected dollars like 1250"),
        (("deposit", "A1", "10.001"), "more than 2 decimals"),
        (("withdraw", "A1-COM", "10"), "Com-Acc never allows withdrawals"),
        (("withdraw", "A1-GEN", "100000.01"), "A1-GEN holds only $100,000.00 cash"),
        (
            ("group", "open", "1000", "-b", "IBKR:U2", "-b", "IBKR:U7", "-b", "IBKR:U8"),
            "already mapped to Rev-Acc A1-REV",
        ),
        (("group", "open", "1000", "-b", "IBKR:U7"), "three brokerage accounts"),
        (("broker", "add", "IBKR:U1"), "already registered"),
        (("broker", "add", "not-a-ref"), "BROKER:NUMBER"),
        (("config", "set", "A1-GEN", "delta_min", "lots"), "delta_min: 'lots' is not in that form; expected a delta"),
        (("transfer", "A1-GEN", "A1-GEN", "5"), "two different accounts"),
        (("reverse", "999", "--reason", "x"), "no transfer #999"),
        (("deposit", "A1", "0"), "amount: must be more than zero"),
    ],
)
def test_bad_input_is_one_line_exit_1_and_changes_nothing(cli, args, message) -> None:  # type: ignore[no-untyped-def]
    before = db_state(cli.engine)
    result = cli(*args, ok=False)
    assert result.exit_code == 1
    assert message in result.output.replace("\n", " ")
    assert result.output.strip().startswith("error:") and "Traceback" not in result.output
    assert db_state(cli.engine) == before


def test_init_makes_the_new_portfolio_the_default_and_use_changes_it(cli) -> None:  # type: ignore[no-untyped-def]
    cli("init", "--name", "second")
    assert "Portfolio second" in cli("accounts").output
    assert "A1-GEN" in cli("--portfolio", "main", "accounts").output
    assert "portfolio main" in cli("use", "main").output
    assert "A1-GEN" in cli("accounts").output
    result = cli("use", "secnod", ok=False)
    assert result.exit_code == 1 and "did you mean second?" in result.output


def test_demo_then_verify(tmp_path: Path) -> None:
    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    out = runner.invoke(app, ["--db", url, "demo"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "Com-Acc never allows withdrawals" in out.output and "A3-COM" in out.output
    again = runner.invoke(app, ["--db", url, "demo"], env={"COLUMNS": "200"})
    assert again.output == out.output  # fixed keys: the second run replays, nothing doubles
    verified = runner.invoke(app, ["--db", url, "-p", "demo", "verify"])
    assert verified.exit_code == 0 and "verified" in verified.output


def test_verify_fails_on_tampering(cli) -> None:  # type: ignore[no-untyped-def]
    from alluse.store.schema import accounts

    with cli.engine.begin() as conn:
        conn.execute(sa.update(accounts).where(accounts.c.name == "A1-REV").values(cash_cents=1))
    result = cli("verify", ok=False)
    assert result.exit_code == 1 and "A1-REV" in result.output and "discrepancies" in result.output


def test_bench_refuses_unknown_database_clearly(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("bench", "--db", "mysql", ok=False)
    assert result.exit_code == 1
    assert "--db must be sqlite, postgres or citus" in result.output


def test_bench_postgres_needs_a_postgres_url(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("bench", "--db", "postgres", "--url", "sqlite:///x.db", ok=False)
    assert result.exit_code == 1
    assert "needs a PostgreSQL URL" in result.output and "Traceback" not in result.output


@pytest.mark.postgres
def test_bench_lifecycle_on_postgres_prints_the_sweep_metrics(pg_engine: sa.Engine) -> None:
    url = pg_engine.url.render_as_string(hide_password=False)
    args = ["bench", "--quick", "--only", "lifecycle", "--db", "postgres", "--url", url]
    result = CliRunner().invoke(app, args, env={"ALLUSE_PORTFOLIO": ""})
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert all(r["db"] == "postgres" for r in rows)
    by_key = {(r["metric"], r.get("workers", 1)): r for r in rows}
    assert set(by_key) == {
        ("lifecycle_accounts_per_s", 1),
        ("lifecycle_sweep_s", 1),
        ("raw_lifecycle_accounts_per_s", 1),
        ("lifecycle_vs_raw", 1),
        ("lifecycle_accounts_per_s", 4),
        ("lifecycle_sweep_s", 4),
        ("lifecycle_workers_vs_one", 4),
    }
    one = by_key[("lifecycle_accounts_per_s", 1)]
    assert one["accounts"] == 10_002 and one["acting"] == 102 and one["value"] > 0
    assert by_key[("raw_lifecycle_accounts_per_s", 1)]["value"] > 0
    assert by_key[("lifecycle_accounts_per_s", 4)]["acting"] == 102
    # One worker process and four in turn, three pairs even with --quick: the ratio is of their medians.
    vs_one = by_key[("lifecycle_workers_vs_one", 4)]
    assert vs_one["pairs"] == 3
    four_s = by_key[("lifecycle_sweep_s", 4)]["value"]
    assert vs_one["value"] == pytest.approx(vs_one["one_worker_s"] / four_s, rel=0.01)
    # Every run sweeps its own copy of the template database; the copies are dropped afterwards.
    with pg_engine.connect() as conn:
        copies = conn.execute(
            sa.text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
            {"p": f"{pg_engine.url.database}_bench_copy%"},
        ).all()
    assert copies == []


def test_schema_docs_writes_the_doc_and_refuses_sqlite_for_schema_sql(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    repo = Path(__file__).resolve().parents[2]
    (tmp_path / "docs").mkdir()
    (tmp_path / "deploy").mkdir()
    shutil.copy(repo / "docs" / "data-model.md", tmp_path / "docs" / "data-model.md")
    result = cli("schema-docs", "--root", str(tmp_path), ok=False)
    assert result.exit_code == 1 and "needs PostgreSQL" in result.output and "Traceback" not in result.output
    assert (tmp_path / "docs" / "data-model.md").read_text() == (repo / "docs" / "data-model.md").read_text()
    assert (tmp_path / "deploy" / "citus.sql").read_text() == (repo / "deploy" / "citus.sql").read_text()
    assert not (tmp_path / "deploy" / "schema.sql").exists()
