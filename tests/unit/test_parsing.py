"""The one parser for typed numbers: accepted forms, refused forms, and round trips of what alluse prints."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alluse.api.schemas import usd
from alluse.domain.errors import InvalidNumber
from alluse.domain.instruments import E4, price_text
from alluse.domain.money import format_bps, format_usd
from alluse.domain.parsing import (
    MAX_CENTS,
    MAX_QUANTITY,
    parse_delta,
    parse_money,
    parse_percent,
    parse_price,
    parse_quantity,
)

# (kind, typed text): every one must be refused. Shared with the CLI and API tests.
BAD_INPUTS: list[tuple[str, str]] = [
    ("money", "1,50"),
    ("money", "1,,,2"),
    ("money", "1_000"),
    ("money", "1e3"),
    ("money", "1E+3"),
    ("money", "1E+999999999"),
    ("money", "1E-999999999"),
    ("money", "１"),  # full-width one
    ("money", "١"),  # Arabic-Indic one
    ("money", "۱۰۰"),  # Persian digits
    ("money", "१००"),  # Devanagari digits
    ("money", "NaN"),
    ("money", "nan"),
    ("money", "Infinity"),
    ("money", "-inf"),
    ("money", "-5"),
    ("money", "+5"),
    ("money", "0"),
    ("money", "0.00"),
    ("money", "1.001"),
    ("money", "1."),
    ("money", "."),
    ("money", ""),
    ("money", "$"),
    ("money", "$$5"),
    ("money", "5$"),
    ("money", "1 000"),
    ("money", "1,000,00"),
    ("money", "1000,000"),
    ("money", ",100"),
    ("money", "100,"),
    ("money", "12,34.5"),
    ("money", "1.000,50"),
    ("money", "0x10"),
    ("money", "1/2"),
    ("money", "abc"),
    ("money", "10 USD"),
    ("money", "1000000000001"),
    ("money", "99999999999999999999"),
    ("money", "1.5.0"),
    ("money", "--5"),
    ("price", "1.00001"),
    ("price", "1_5"),
    ("price", "2e2"),
    ("price", "-1"),
    ("price", "１.25"),
    ("price", "inf"),
    ("price", "10000001"),
    ("price", "1,5"),
    ("quantity", "1.5"),
    ("quantity", "1,0"),
    ("quantity", "1_000"),
    ("quantity", "1e3"),
    ("quantity", "٣"),
    ("quantity", "-2"),
    ("quantity", "+3"),
    ("quantity", "1000000001"),
    ("percent", "101"),
    ("percent", "1.234"),
    ("percent", "１0"),
    ("percent", "5e1"),
    ("percent", "-5"),
    ("percent", "NaN"),
    ("delta", "1E+999999999"),
    ("delta", "1E-999999999"),
    ("delta", "1.5"),
    ("delta", "0.123456"),
    ("delta", "٠.٣"),
    ("delta", "nan"),
    ("delta", "0,3"),
]

PARSERS = {
    "money": parse_money,
    "price": parse_price,
    "quantity": parse_quantity,
    "percent": parse_percent,
    "delta": parse_delta,
}


def test_the_bad_input_table_is_broad() -> None:
    assert len(BAD_INPUTS) >= 50 and len(set(BAD_INPUTS)) == len(BAD_INPUTS)


@pytest.mark.parametrize(("kind", "text"), BAD_INPUTS)
def test_bad_inputs_are_refused_naming_field_and_form(kind: str, text: str) -> None:
    with pytest.raises(InvalidNumber) as info:
        PARSERS[kind](text, field="the_field")
    message = str(info.value)
    assert message.startswith("the_field: ") and "; expected " in message
    assert info.value.code == "invalid-number"


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("250000", 25_000_000),
        ("1,250.50", 125_050),
        ("$75000", 7_500_000),
        ("$1,000", 100_000),
        ("0.01", 1),
        (".5", 50),
        (" 12.3 ", 1_230),
        ("1,000,000.00", 100_000_000),
        ("007", 700),
        ("1000000000000", MAX_CENTS),
    ],
)
def test_money_accepted_forms(text: str, cents: int) -> None:
    assert parse_money(text) == cents


def test_other_fields_accepted_forms() -> None:
    assert parse_price("1.2345") == Decimal("1.2345") and parse_price("$1,025.5") == Decimal("1025.5")
    assert parse_price("0") == 0 and parse_price("12.5", places=2) == Decimal("12.5")
    assert parse_quantity("1,000") == 1000 and parse_quantity("0", allow_zero=True) == 0
    assert parse_quantity(str(MAX_QUANTITY)) == MAX_QUANTITY
    assert parse_percent("37.5") == 3750 and parse_percent("5%") == 500 and parse_percent("5 %") == 500
    assert parse_percent("100") == 10_000 and parse_percent("0") == 0
    assert parse_delta("0.45") == Decimal("0.45") and parse_delta(".3") == Decimal("0.3")
    assert parse_delta("-0.3", signed=True) == Decimal("-0.3")
    assert parse_money(0, allow_zero=True) == 0 and parse_money(Decimal("12.50")) == 1250


def test_binary_floats_and_non_text_are_refused() -> None:
    for value in (0.1, 5.0, True, None, [1]):
        with pytest.raises(InvalidNumber, match="amount: "):
            parse_money(value)
    with pytest.raises(InvalidNumber):
        parse_money(Decimal("1E+3"))  # a Decimal's own text, exponent and all, like a typed one
    with pytest.raises(InvalidNumber, match="more than 4 decimals"):
        parse_price("1.00001")
    with pytest.raises(InvalidNumber, match="more than 2 decimals"):
        parse_price("1.001", places=2)


def test_a_negative_delta_only_where_signed() -> None:
    with pytest.raises(InvalidNumber, match="between 0 and 1"):
        parse_delta("-0.3")
    with pytest.raises(InvalidNumber, match="between -1 and 1"):
        parse_delta("-1.5", signed=True)


cents = st.integers(min_value=1, max_value=MAX_CENTS)


@given(cents)
def test_every_printed_amount_parses_back_to_itself(value: int) -> None:
    # The CLI prints format_usd ("$1,234.56"); the API and CSV reports print plain decimals ("1234.56").
    assert parse_money(format_usd(value)) == value
    assert parse_money(usd(value)) == value
    assert parse_money(f"{Decimal(value) / 100:.2f}") == value


@given(st.integers(min_value=0, max_value=10_000_000 * E4))
def test_every_printed_price_parses_back_to_itself(price_e4: int) -> None:
    assert parse_price(price_text(price_e4)) * E4 == price_e4


@given(st.integers(min_value=0, max_value=10_000))
def test_every_printed_percentage_parses_back_to_itself(bps: int) -> None:
    assert parse_percent(format_bps(bps)) == bps
    assert parse_percent(f"{Decimal(bps) / 100:g}") == bps
