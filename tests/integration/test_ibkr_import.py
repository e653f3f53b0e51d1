"""IBKR Flex statements: import exactly once, reconcile to zero, refuse bad files without writing."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from alluse.domain.errors import InvalidInput, RuleViolation
from alluse.services import groups
from alluse.services.statements import import_statement, reconcile_statement
from alluse.services.trades import Fill, FillAction, record_fills
from alluse.services.verify import verify
from alluse.store.schema import accounts, broker_rows, instruments, lots
from tests.conftest import db_state

DATA = Path(__file__).parents[1] / "data" / "ibkr"
SAMPLE = (DATA / "flex_statement.xml").read_bytes()
OVERLAP = (DATA / "flex_overlap.xml").read_bytes()
MALFORMED = (DATA / "flex_malformed.xml").read_bytes()
ACCOUNTS = ["IBKR:U9100001", "IBKR:U9100002", "IBKR:U9100003"]


@pytest.fixture
def mapped(engine: sa.Engine, portfolio: str) -> sa.Engine:
    """A group opened over the three IBKR accounts with no capital of its own."""
    groups.open_group(engine, "t", portfolio, "g-ibkr", groups.group_opening(0, ACCOUNTS))
    return engine


def _by_account(report: dict) -> dict[str, tuple[int, int]]:
    return {a["brokerage_account"]: (a["added"], a["already_present"]) for a in report["accounts"]}


def _cash(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        q = sa.select(accounts.c.name, accounts.c.cash_cents).where(accounts.c.kind != "EXT")
        return {name: cash for name, cash in conn.execute(q)}


def test_import_reconcile_reimport_overlap(mapped: sa.Engine) -> None:
    report = import_statement(mapped, "t", "main", SAMPLE)
    assert _by_account(report) == {ACCOUNTS[0]: (12, 0), ACCOUNTS[1]: (11, 0), ACCOUNTS[2]: (6, 0)}
    assert report["reconciliation"]["differences"] == 0
    com = report["accounts"][2]
    assert com["unsupported"] == {"positions in EUR": 1, "trades in EUR": 1}
    assert report["not_read"] == {"CorporateActions": 1}
    assert report["ignored_attributes"] == {}  # the Trade attribute ibflex does not know is never handed to it
    # Ending cash of every account, to the cent, and the deposits are their base capital.
    assert _cash(mapped) == {"A1-GEN": 10063909, "A1-REV": 6687850, "A1-COM": 5950449}
    with mapped.connect() as conn:
        q = sa.select(accounts.c.name, accounts.c.base_capital_cents).where(accounts.c.kind != "EXT")
        base = {name: cents for name, cents in conn.execute(q)}
    assert base == {"A1-GEN": 10000000, "A1-REV": 7450000, "A1-COM": 7500000}

    before = db_state(mapped)
    again = import_statement(mapped, "t", "main", SAMPLE)
    assert _by_account(again) == {ACCOUNTS[0]: (0, 12), ACCOUNTS[1]: (0, 11), ACCOUNTS[2]: (0, 6)}
    assert db_state(mapped) == before

    overlap = import_statement(mapped, "t", "main", OVERLAP)
    assert _by_account(overlap) == {ACCOUNTS[0]: (2, 1), ACCOUNTS[1]: (1, 3)}
    assert overlap["reconciliation"]["differences"] == 0
    # The first statement still reconciles as of its own end date.
    assert reconcile_statement(mapped, "main", SAMPLE)["differences"] == 0
    with mapped.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(broker_rows)).scalar_one()
    assert n == 12 + 11 + 6 + 3 - 3  # each of the 3 assignments books its two broker rows as one
    assert verify(mapped).problems == []


def test_assignment_books_like_a_typed_assign(mapped: sa.Engine) -> None:
    import_statement(mapped, "t", "main", SAMPLE)
    # The same put sold and assigned, typed by hand in a paper group.
    groups.open_group(mapped, "t", "main", "g-paper", groups.group_opening(10_000_000))
    put = "ABC   261023P00039000"
    record_fills(
        mapped,
        "t",
        "main",
        [
            ("p1", Fill("A2-REV", FillAction.STO, put, 2, "0.80", 130, _d("2026-10-19"))),
            ("p2", Fill("A2-REV", FillAction.ASSIGN, put, 2, trade_date=_d("2026-10-23"))),
        ],
    )
    with mapped.connect() as conn:
        q = (
            sa.select(accounts.c.name, lots.c.quantity, lots.c.open_cash_cents, lots.c.opened_on)
            .join(accounts, (accounts.c.portfolio_id == lots.c.portfolio_id) & (accounts.c.id == lots.c.account_id))
            .join(
                instruments,
                (instruments.c.portfolio_id == lots.c.portfolio_id) & (instruments.c.id == lots.c.instrument_id),
            )
            .where(instruments.c.symbol == "ABC", lots.c.side == "LONG")
        )
        got = {name: (qty, cash, on) for name, qty, cash, on in conn.execute(q)}
    assert got["A1-REV"] == got["A2-REV"] == (200, -764130, _d("2026-10-23"))


def test_malformed_file_names_the_row_and_writes_nothing(mapped: sa.Engine) -> None:
    before = db_state(mapped)
    with pytest.raises(InvalidInput, match=r"tradeID=4100010 .*quantity"):
        import_statement(mapped, "t", "main", MALFORMED)
    with pytest.raises(InvalidInput, match="not well-formed XML"):
        import_statement(mapped, "t", "main", SAMPLE[: len(SAMPLE) // 2])
    assert db_state(mapped) == before


def test_unmapped_accounts_are_all_listed_and_nothing_is_imported(engine: sa.Engine, portfolio: str) -> None:
    groups.open_group(engine, "t", portfolio, "g", groups.group_opening(0, [ACCOUNTS[0], "IBKR:U1", "IBKR:U2"]))
    before = db_state(engine)
    with pytest.raises(InvalidInput, match="unmapped IBKR accounts: IBKR:U9100002, IBKR:U9100003"):
        import_statement(engine, "t", "main", SAMPLE)
    assert db_state(engine) == before


def test_a_fact_refused_mid_import_rolls_back_every_row(mapped: sa.Engine) -> None:
    # An uncovered call in Com-Acc's statement: the rows booked before it (deposits, other accounts) go too.
    bad = SAMPLE.replace(b'symbol="DEF   261016C00130000"', b'symbol="DEF   261016C00130000"', 1).replace(
        b'tradeID="4300001"', b'tradeID="4300001" ', 1
    )
    bad = bad.replace(
        b'quantity="100" tradePrice="120" tradeMoney="12000" proceeds="-12000"',
        b'quantity="10" tradePrice="120" tradeMoney="1200" proceeds="-1200"',
    ).replace(b'netCash="-12001"', b'netCash="-1201"')
    before = db_state(mapped)
    with pytest.raises(RuleViolation, match="calls must be covered"):
        import_statement(mapped, "t", "main", bad)
    assert db_state(mapped) == before


def test_fractions_of_a_cent_are_refused_not_rounded(mapped: sa.Engine) -> None:
    bad = SAMPLE.replace(b'ibCommission="-1.3"', b'ibCommission="-1.3042"', 1).replace(
        b'netCash="248.7"', b'netCash="248.6958"', 1
    )
    before = db_state(mapped)
    with pytest.raises(InvalidInput, match=r"trade 4100001: ibCommission=-1.3042 has fractions of a cent"):
        import_statement(mapped, "t", "main", bad)
    assert db_state(mapped) == before


def test_reconcile_reports_differences(mapped: sa.Engine) -> None:
    # Nothing imported yet: every cash balance and position differs from the statement.
    rec = reconcile_statement(mapped, "main", SAMPLE)
    gen = rec["accounts"][0]
    assert gen["differences"][0] == {"what": "cash", "broker_cents": 10063909, "alluse_cents": 0}
    quantity = {"what": "quantity", "symbol": "XYZ   261106P00050000", "broker_quantity": -1, "alluse_quantity": 0}
    assert quantity in gen["differences"]
    assert rec["differences"] == 2 + 2 + 3  # cash and every position of each account


def _d(text: str):  # type: ignore[no-untyped-def]
    from datetime import date

    return date.fromisoformat(text)


def test_the_benchmark_statement_imports_and_reconciles(engine: sa.Engine, portfolio: str) -> None:
    from alluse.bench.ibkr import ACCOUNT, flex_statement

    groups.open_group(engine, "t", portfolio, "g", groups.group_opening(0, [f"IBKR:{ACCOUNT}", "IBKR:U2", "IBKR:U3"]))
    report = import_statement(engine, "t", "main", flex_statement(40))
    assert report["accounts"][0]["added"] == 41 and report["reconciliation"]["differences"] == 0
    assert _cash(engine)["A1-GEN"] == 100_000_000 - 40 * 100  # the round trips cost their commissions


def test_imported_deposits_are_flows_on_their_own_date(mapped: sa.Engine) -> None:
    from alluse.services.history import nav_series

    import_statement(mapped, "t", "main", SAMPLE)
    with mapped.connect() as conn:
        pid, gen = conn.execute(
            sa.select(accounts.c.portfolio_id, accounts.c.id).where(accounts.c.name == "A1-GEN")
        ).one()
        days = {d.on: d for d in nav_series(conn, pid, gen, _d("2026-09-30"), _d("2026-10-30"))}
    # The deposit of Oct 1 is a capital flow of Oct 1 (not of the day it was imported); interest is a result.
    assert days[_d("2026-10-01")].flow == 10_000_000
    assert days[_d("2026-10-30")].nav == 10_063_909 - 8_500  # ending cash, less the short put at its mark
    assert sum(d.flow for d in days.values()) == 10_000_000
