from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alluse.domain.errors import InvalidInput
from alluse.domain.money import apply_bps, format_usd, round_half_even, to_cents
from alluse.domain.parsing import parse_money, parse_percent


@pytest.mark.parametrize(
    ("text", "cents"),
    [("250000", 25_000_000), ("1,250.50", 125_050), ("$75000", 7_500_000), ("0.01", 1), (" 12.3 ", 1_230)],
)
def test_parse_usd(text: str, cents: int) -> None:
    assert parse_money(text) == cents


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-5", "not in that form"),
        ("0", "more than zero"),
        ("abc", "not in that form"),
        ("1.001", "more than 2 decimals"),
        ("NaN", "not in that form"),
        ("Infinity", "not in that form"),
        ("1e30", "not in that form"),
        ("1" + "0" * 30, "above the maximum|too large"),
    ],
)
def test_parse_usd_refuses(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_money(text)


def test_parse_usd_refuses_binary_floats() -> None:
    with pytest.raises(InvalidInput, match="floats"):
        parse_money(0.1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("num", "den", "out"),
    [(5, 10, 0), (15, 10, 2), (25, 10, 2), (-5, 10, 0), (-15, 10, -2), (14, 10, 1), (16, 10, 2), (-16, 10, -2)],
)
def test_round_half_even(num: int, den: int, out: int) -> None:
    assert round_half_even(num, den) == out


@given(st.decimals(min_value=-(10**9), max_value=10**9, places=6, allow_nan=False))
def test_to_cents_matches_decimal_quantize(value: Decimal) -> None:
    from decimal import ROUND_HALF_EVEN

    assert to_cents(value) == int((value * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def test_apply_bps_worked_buffers() -> None:
    assert apply_bps(10_000_000, 500) == 500_000  # $100,000 → $5,000
    assert apply_bps(7_500_000, 500) == 375_000  # $75,000 → $3,750
    assert apply_bps(2_625_000, 500) == 131_250  # $26,250 → $1,312.50
    assert apply_bps(250, 500) == 12 and apply_bps(270, 500) == 14  # ties go to even


def test_formatting_and_percentages() -> None:
    assert format_usd(123_456_789) == "$1,234,567.89" and format_usd(-5) == "-$0.05"
    assert parse_percent("37.5") == 3750 and parse_percent("5%") == 500
    with pytest.raises(InvalidInput):
        parse_percent("101")
    with pytest.raises(InvalidInput):
        parse_percent("1.234")
