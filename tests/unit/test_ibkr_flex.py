"""The Flex reader alone (no database): rows to facts, exact cents, and refusals that name the row."""

from __future__ import annotations

from pathlib import Path

import pytest

from alluse.brokers.ibkr import read_flex
from alluse.domain.errors import InvalidInput

SAMPLE = (Path(__file__).parents[1] / "data" / "ibkr" / "flex_statement.xml").read_bytes()


def _gen(data: bytes = SAMPLE):  # type: ignore[no-untyped-def]
    return read_flex(data).statements[0]


def test_rows_become_facts_in_time_order() -> None:
    gen = _gen()
    assert [(f.key, f.action) for f in gen.facts][:5] == [
        ("cash:7100001", "DEPOSIT"),
        ("cash:7100002", "INTEREST"),
        ("cash:7100003", "FEE"),
        ("trade:4100001", "STO"),
        ("trade:4100002", "EXPIRE"),
    ]
    assign = next(f for f in gen.facts if f.key == "trade:4100004")
    # The option row and the stock row of the assignment: one fact, the strike × shares in cash.
    assert (assign.action, assign.symbol, assign.quantity, assign.cash_cents, assign.rows) == (
        "ASSIGN",
        "XYZ   261016P00051000",
        1,
        -510000,
        2,
    )
    assert gen.ending_cash_cents == 10063909 and gen.eae_rows == 5


def test_a_trade_id_twice_is_refused() -> None:
    twice = SAMPLE.replace(b'tradeID="4100003"', b'tradeID="4100001"', 1)
    with pytest.raises(InvalidInput, match="trade 4100001 appears twice"):
        read_flex(twice)


def test_an_expiry_without_its_trade_row_is_refused() -> None:
    row = SAMPLE.rindex(b"<Trade ", 0, SAMPLE.index(b'tradeID="4100002"'))  # the trade row, not the EAE row
    end = SAMPLE.index(b"/>", row) + 2
    without = SAMPLE[:row] + SAMPLE[end:]
    with pytest.raises(InvalidInput, match="Expiration of XYZ   261009P00050000 on 2026-10-09 has no trade row"):
        read_flex(without)


def test_netcash_must_add_up_and_exercises_are_unsupported() -> None:
    wrong = SAMPLE.replace(b'netCash="248.7"', b'netCash="248.79"', 1)
    with pytest.raises(InvalidInput, match="trade 4100001: netCash=248.79 is not proceeds"):
        read_flex(wrong)
    exercised = SAMPLE.replace(b'notes="Ep"', b'notes="Ex"', 1).replace(
        b'transactionType="Expiration"', b'transactionType="Exercise"', 1
    )
    assert _gen(exercised).unsupported == {"option exercises": 1}


def test_not_xml_and_not_flex() -> None:
    with pytest.raises(InvalidInput, match="not well-formed XML"):
        read_flex(b"<FlexQueryResponse")
    with pytest.raises(InvalidInput, match="root element is <html>"):
        read_flex(b"<html></html>")
    with pytest.raises(InvalidInput, match="holds no FlexStatement"):
        read_flex(b'<FlexQueryResponse><FlexStatements count="0"></FlexStatements></FlexQueryResponse>')


def test_attributes_alluse_does_not_read_cannot_break_a_statement() -> None:
    # A value ibflex cannot convert, in an attribute alluse does not read: the statement still reads.
    odd = SAMPLE.replace(b'orderType="LMT"', b'orderType="PEGGED-TO-NEW-THING" newAttribute="x"')
    assert [f.key for f in _gen(odd).facts] == [f.key for f in _gen().facts]
    # The same value in an attribute alluse reads is an error that names the row.
    bad = SAMPLE.replace(b'openCloseIndicator="O"', b'openCloseIndicator="X"', 1)
    with pytest.raises(InvalidInput, match=r"<Trade accountId=U9100001 tradeID=4100001 .*openCloseIndicator"):
        read_flex(bad)
