"""`alluse lifecycle plan | run | history | earmarks` and `alluse tree` from the command line."""

from __future__ import annotations

import json
from datetime import date

import pytest

from alluse.sim.trading import realize
from tests.conftest import db_state


@pytest.fixture
def cli(cli_db):  # type: ignore[no-untyped-def]
    cli_db("group", "open", "250,000", "-k", "open")
    realize(cli_db.engine, "t", "main", [("g", "A1-GEN", 7_500_000, date(2026, 12, 4)),  # type: ignore[attr-defined]
                                         ("r", "A1-REV", 4_000_000, date(2026, 12, 11))])  # fmt: skip
    return cli_db


def test_plan_changes_nothing_then_run_applies_once(cli) -> None:  # type: ignore[no-untyped-def]
    before = db_state(cli.engine)
    out = cli("lifecycle", "plan", "--as-of", "2026-12-31").output
    assert "GEN_FORK" in out and "$52,500.00" in out and "REINVEST" in out and "$28,000.00" in out
    assert "not tax advice" in out
    rows = json.loads(cli("lifecycle", "plan", "--as-of", "2026-12-31", "--json").output)
    assert {(r["rule"], r["amount_cents"]) for r in rows} == {("GEN_FORK", 5_250_000), ("REINVEST", 2_800_000)}
    assert db_state(cli.engine) == before

    out = cli("lifecycle", "run", "--as-of", "2026-12-31").output
    assert "2 actions applied (1 gen_fork, 1 reinvest)" in out
    assert "0 actions applied" in cli("lifecycle", "run", "--as-of", "2026-12-31").output

    hist = json.loads(cli("lifecycle", "history", "--json").output)
    assert [(h["rule"], h["group"]) for h in hist] == [("REINVEST", None), ("GEN_FORK", "A1F1")]
    assert "A1F1" in cli("lifecycle", "history").output
    tree = json.loads(cli("tree", "--json").output)
    assert tree[0]["name"] == "A1" and tree[0]["children"][0]["forked_from"] == "A1-GEN"
    assert "A1F1 FORK ACTIVE NAV $52,500.00 forked from A1-GEN" in cli("tree").output
    out = cli("lifecycle", "earmarks").output
    assert "TAX_RESERVE" in out and "$12,000.00" in out and "$21,000.00" in out
    assert "verified" in cli("verify").output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lifecycle", "plan", "--as-of", "2026-13-01"], "--as-of must be a date like 2026-12-31"),
        (["lifecycle", "run", "--as-of", "yesterday"], "--as-of must be a date like 2026-12-31"),
        (["-p", "nope", "lifecycle", "run", "--as-of", "2026-12-31"], "no portfolio 'nope'"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(cli, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    before = db_state(cli.engine)
    result = cli(*args, ok=False)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert db_state(cli.engine) == before


def test_run_takes_the_families_per_batch_it_is_given(cli, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from alluse.services import lifecycle

    given: list[int] = []
    real_run = lifecycle.run

    def run(*args, **kwargs):  # type: ignore[no-untyped-def]
        given.append(kwargs["families_per_batch"])
        return real_run(*args, **kwargs)

    monkeypatch.setattr(lifecycle, "run", run)
    out = cli("lifecycle", "run", "--as-of", "2026-12-31", "--families-per-batch", "1").output
    assert "2 actions applied" in out
    assert given == [1]
