"""The command line as a newcomer and a script meet it: one-line errors at any width, unwrapped
tables in pipes, a quiet end on a closed pipe, `--json` on every read, suggestions for typos, refused
nonsense, the journal and per-portfolio transfer numbers, year ranges, lifecycle settings, and the
parent group named in the tree."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from alluse.cli.common import BROKEN_PIPE_EXIT
from alluse.store.schema import audit_log
from tests.conftest import db_state

PUT = "XYZ   270108P00050000"


@pytest.fixture
def cli(cli_db):  # type: ignore[no-untyped-def]
    cli_db("group", "open", "250000")
    return cli_db


def alluse_process(db: str, *args: str, columns: int = 40, **kw):  # type: ignore[no-untyped-def]
    """The real command in its own process, stdout and stderr pipes (not a terminal)."""
    env = {**os.environ, "COLUMNS": str(columns), "ALLUSE_DATABASE_URL": db, "ALLUSE_PORTFOLIO": ""}
    code = "from alluse.cli.main import app; app(prog_name='alluse')"
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, **kw)


def db_url(cli) -> str:  # type: ignore[no-untyped-def]
    return cli.engine.url.render_as_string(hide_password=False)


# --- scripts and pipes ---------------------------------------------------------------------------


def test_errors_and_tables_are_never_wrapped_whatever_the_width(cli) -> None:  # type: ignore[no-untyped-def]
    p = alluse_process(db_url(cli), "withdraw", "A1-REV", "75000.01", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 1
    lines = err.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "holds only $75,000.00 cash" in lines[0]
    p = alluse_process(db_url(cli), "accounts", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    row = [line for line in out.decode().splitlines() if "A1-GEN" in line]
    assert len(row) == 1 and "$100,000.00" in row[0] and "$95,000.00" in row[0] and "PAPER:" in row[0]


def test_a_closed_pipe_ends_the_command_quietly(cli) -> None:  # type: ignore[no-untyped-def]
    from alluse.services import cash

    moves = [(f"d{i}", cash.deposit("A1-GEN", 100 + i)) for i in range(400)]
    cash.move_cash(cli.engine, "test", "main", moves)
    p = alluse_process(db_url(cli), "journal", "--json", "--per-page", "1000", stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)  # fmt: skip
    assert p.stdout is not None and p.stdout.read(100)
    p.stdout.close()  # the reader stops early, like `| head`
    assert p.wait(timeout=60) == BROKEN_PIPE_EXIT == 141
    assert p.stderr is not None and p.stderr.read() == b""


def test_every_read_command_named_in_the_issue_has_json(cli) -> None:  # type: ignore[no-untyped-def]
    assert json.loads(cli("lifecycle", "earmarks", "--json").output) == []
    brokers = json.loads(cli("broker", "list", "--json").output)
    assert {b["mapped_to"] for b in brokers} == {"Gen-Acc A1-GEN", "Rev-Acc A1-REV", "Com-Acc A1-COM"}
    assert set(brokers[0]) == {"brokerage_account", "mapped_to", "status", "has_credentials"}
    assert json.loads(cli("alerts", "--json").output) == []
    cli("fill", "A1-GEN", "STO", PUT, "2", "--price", "1.25", "--date", "2027-01-07")
    cli("fill", "A1-GEN", "EXPIRE", PUT, "2")
    s = json.loads(cli("tax", "surplus", "A1-GEN", "--as-of", "2027-01-31", "--json").output)
    assert s["account"] == "A1-GEN" and s["as_of"] == "2027-01-31"
    assert s["nav_cents"] == 10_025_000 and s["base_capital_cents"] == 10_000_000
    assert s["unpaid_tax_on_realized_cents"] == 7_500 and s["post_tax_surplus_cents"] == 17_500
    # A breach (a fill is a fact, recorded even below the buffer) shows in the alerts' JSON.
    cli("fill", "A1-REV", "BTO", "ABC", "740", "--price", "100", "--date", "2027-01-08")
    (alert,) = json.loads(cli("alerts", "--json").output)
    assert alert["account"] == "A1-REV" and alert["kind"] == "BUFFER_BREACH" and alert["raised_at"].endswith("+00:00")


# --- help for mistakes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("deposit", "A1-GNE", "10"), "no account group 'A1-GNE' in this portfolio; did you mean A1-GEN"),
        (("withdraw", "A1-RVE", "10"), "no account 'A1-RVE' in this portfolio; did you mean A1-REV"),
        (("-p", "mian", "accounts"), "no portfolio 'mian'; did you mean main?"),
        (("report", "monthly", "--year", "27"), "year must be a four-digit year between 1901 and 2999, got 27"),
        (("report", "quarterly", "--year", "20270"), "got 20270"),
        (("report", "weekly", "--from", "2027-03-01", "--to", "2027-01-01"), "--from 2027-03-01 is after --to"),
        (("report", "tax-year", "--years", "2030-2027"), "runs backwards"),
        (("report", "tax-year", "--year", "2027", "--years", "2027-2028"), "--year or --years, not both"),
        (("fill", "A1-GEN", "BTO", "ABC", "1", "--price", "1", "--date", "2214-01-07"), "pass --future"),
        (("journal", "--kind", "DEPOSITS"), "unknown transfer kind 'DEPOSITS'"),
        (("journal", "--per-page", "0"), "per page must be between 1 and 1000"),
        (("config", "set", "portfolio", "gen_fork_split", "60/30"), "gen_fork_split: allocation must sum to 100 %"),
        (("config", "set", "portfolio", "rev_fork_amount", "600000"), "may not exceed its threshold"),
        (
            ("config", "set", "portfolio", "merge_threshold", "--", "-5"),
            "merge_threshold: '-5' is not in that form; expected dollars",
        ),
        (("config", "set", "portfolio", "tax_reserve_pct", "35"), "alluse tax rates"),
    ],
)
def test_mistakes_are_named_one_line_and_change_nothing(cli, args, message) -> None:  # type: ignore[no-untyped-def]
    before = db_state(cli.engine)
    result = cli(*args, ok=False)
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("error: ")
    assert message in result.output
    assert db_state(cli.engine) == before


def test_a_far_future_fill_needs_future(cli) -> None:  # type: ignore[no-untyped-def]
    out = cli("fill", "A1-GEN", "BTO", "ABC", "1", "--price", "1", "--date", "2214-01-07", "--future").output
    assert "fill #1 BTO 1 ABC" in out


# --- the journal and transfer numbers ------------------------------------------------------------


def test_journal_numbers_transfers_per_portfolio_and_reverse_uses_them(cli) -> None:  # type: ignore[no-untyped-def]
    cli("deposit", "A1", "20000")
    assert "transfer #3" in cli("transfer", "A1-GEN", "A1-COM", "5000").output
    cli("init", "--name", "second")  # now the default portfolio; its numbers start at 1
    cli("group", "open", "1000")
    assert "transfer #2" in cli("deposit", "A1-GEN", "7").output
    assert "transfer #2 reversed by transfer #3" in cli("reverse", "2", "--reason", "typo").output
    cli("use", "main")
    assert "transfer #3 reversed by transfer #4" in cli("reverse", "3", "--reason", "wrong account").output
    j = json.loads(cli("journal", "--json").output)
    assert j["total"] == 4 and [t["number"] for t in j["transfers"]] == [1, 2, 3, 4]
    t3, t4 = j["transfers"][2], j["transfers"][3]
    assert (t3["kind"], t3["reversed_by"], t4["kind"], t4["reverses"]) == ("TRANSFER", 4, "REVERSAL", 3)
    assert t3["legs"] == [
        {"account": "A1-GEN", "amount_cents": -500_000},
        {"account": "A1-COM", "amount_cents": 500_000},
    ]
    assert t4["memo"] == "wrong account" and t4["amount_cents"] == 500_000
    assert "has already been reversed" in cli("reverse", "3", "--reason", "again", ok=False).output
    # Filters and pages.
    only = json.loads(cli("journal", "--kind", "deposit,reversal", "--json").output)
    assert [t["number"] for t in only["transfers"]] == [2, 4]
    page = json.loads(cli("journal", "--account", "A1-REV", "--per-page", "1", "--page", "2", "--json").output)
    assert page["total"] == 2 and [t["number"] for t in page["transfers"]] == [2]
    assert json.loads(cli("journal", "--from", "2999-01-01", "--json").output)["total"] == 0
    table = cli("journal").output
    assert "reverses #3: wrong account" in table and "4 transfers" in table


# --- reports over ranges -------------------------------------------------------------------------


def test_tax_year_and_realized_over_a_range_of_years(cli) -> None:  # type: ignore[no-untyped-def]
    cli("fill", "A1-GEN", "STO", PUT, "2", "--price", "1.25", "--date", "2027-01-07")
    cli("fill", "A1-GEN", "EXPIRE", PUT, "2")  # +$250 short-term in 2027
    cli("fill", "A1-COM", "BTO", "ABC", "100", "--price", "20", "--date", "2027-02-01")
    cli(
        "fill", "A1-COM", "STC", "ABC", "100", "--price", "19", "--date", "2028-03-01", "--future"
    )  # −$100 long-term in 2028
    r = json.loads(cli("report", "tax-year", "--years", "2026-2028", "--json").output)
    assert (r["from_year"], r["to_year"]) == (2026, 2028) and [y["year"] for y in r["years"]] == [2026, 2027, 2028]
    assert [y["short_term"]["net_cents"] for y in r["years"]] == [0, 25_000, 0]
    assert [y["long_term"]["net_cents"] for y in r["years"]] == [0, 0, -10_000]  # held over a year
    assert r["total"]["short_term"] == {"gains_cents": 25_000, "losses_cents": 0, "net_cents": 25_000, "closes": 1}
    assert r["total"]["long_term"] == {"gains_cents": 0, "losses_cents": -10_000, "net_cents": -10_000, "closes": 1}
    assert r["total"]["estimated_tax_cents"] == sum(y["estimated_tax_cents"] for y in r["years"]) == 7_500
    one = json.loads(cli("report", "tax-year", "--year", "2027", "--json").output)
    assert one["short_term"]["net_cents"] == 25_000
    assert "total" in cli("report", "tax-year", "--years", "2027-2028").output
    rows = list(csv.DictReader(io.StringIO(cli("report", "realized", "--years", "2027-2028").output)))
    assert [(row["date_sold"], row["gain"]) for row in rows] == [("2027-01-08", "250.00"), ("2028-03-01", "-100.00")]


# --- settings and the tree -----------------------------------------------------------------------


def test_lifecycle_settings_are_per_portfolio_shown_audited_and_used(cli) -> None:  # type: ignore[no-untyped-def]
    shown = json.loads(cli("config", "show", "portfolio", "--json").output)
    assert shown["lifecycle"]["gen_fork_threshold"] == "$50,000.00" and shown["tax_reserve_pct"] == "30"
    assert shown["lifecycle"]["gen_fork_split"] == "50/50" and shown["overridden"] == []
    cli("fill", "A1-GEN", "STO", PUT, "2", "--price", "1.25", "--date", "2026-12-01")
    cli("fill", "A1-GEN", "EXPIRE", PUT, "2", "--date", "2026-12-02")  # surplus $175 after the tax reserve
    before = json.loads(cli("lifecycle", "plan", "--as-of", "2026-12-31", "--json").output)
    assert all(r["rule"] != "GEN_FORK" for r in before)  # $175 is far below the method's $50,000
    cli("config", "set", "portfolio", "gen_fork_threshold", "100")
    cli("config", "set", "portfolio", "gen_fork_split", "60/40")
    table = cli("config", "show", "portfolio").output
    assert "$100.00 (override)" in table and "60/40 (override)" in table
    with cli.engine.connect() as conn:
        actions = conn.execute(sa.select(audit_log.c.action).where(audit_log.c.action == "config.set")).all()
    assert len(actions) == 2
    plan = json.loads(cli("lifecycle", "plan", "--as-of", "2026-12-31", "--json").output)
    (fork,) = [r for r in plan if r["rule"] == "GEN_FORK"]
    assert fork["amount_cents"] == 17_500
    cli("lifecycle", "run", "--as-of", "2026-12-31")
    tree = json.loads(cli("accounts", "--json").output)
    child = next(g for g in tree["groups"] if g["kind"] == "FORK")
    assert child["parent_group"] == "A1"
    assert [a["cash_cents"] for a in child["accounts"]] == [10_500, 7_000]  # 60/40 of $175
    line = next(x for x in cli("accounts").output.splitlines() if child["name"] in x and "FORK" in x)
    assert line.split("│")[1].split() == [child["name"], "FORK", "←", "A1"]
    # Another portfolio keeps the method's defaults.
    cli("init", "--name", "other")
    other = json.loads(cli("config", "show", "portfolio", "--json").output)
    assert other["lifecycle"]["gen_fork_threshold"] == "$50,000.00"


def test_several_portfolios_without_a_default_name_the_way_out(cli) -> None:  # type: ignore[no-untyped-def]
    from alluse.services.portfolios import create_portfolio
    from alluse.store.schema import cli_defaults

    create_portfolio(cli.engine, "test", "other", "k-other")
    with cli.engine.begin() as conn:
        conn.execute(cli_defaults.delete())
    out = cli("accounts", ok=False).output
    assert "several portfolios exist (main, other): choose the default with `alluse use NAME`" in out


@pytest.mark.parametrize(
    ("args", "keys"),
    [
        (("report", "weekly", "--from", "2027-01-01", "--to", "2027-01-20"), {"weeks", "predicted_and_confirmed"}),
        (("report", "monthly", "--year", "2027"), {"year", "months", "tax_estimated_ytd_cents", "note"}),
        (("report", "quarterly", "--year", "2027"), {"year", "rows", "note"}),
        (("report", "performance", "--from", "2027-01-01", "--to", "2027-01-10"), {"start", "end", "accounts"}),
        (("tax", "pnl", "A1-GEN", "--from", "2027-01-01", "--to", "2027-12-31"), {"realized_cents", "post_tax_cents"}),
        (("week", "accuracy"), {"weeks", "correct", "by_predicted"}),
        (("positions",), {"as_of", "accounts"}),
        (("config", "show", "A1-GEN"), {"target", "template", "rules", "overridden"}),
    ],
)
def test_read_commands_answer_json(cli, args, keys) -> None:  # type: ignore[no-untyped-def]
    cli("fill", "A1-GEN", "STO", PUT, "2", "--price", "1.25", "--date", "2027-01-07")
    cli("week", "predict", "GREEN", "--week", "2027-01-04")
    cli("week", "confirm", "RED", "--week", "2027-01-08")
    assert keys <= set(json.loads(cli(*args, "--json").output))
