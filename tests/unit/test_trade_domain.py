"""Pure pieces: OCC symbols, prices, FIFO splitting, holding periods, IRS-style netting."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alluse.domain.errors import InvalidInput
from alluse.domain.instruments import option, parse_price, parse_symbol, price_text, value_cents
from alluse.domain.lots import Term, holding_term, split_pro_rata
from alluse.domain.tax import TaxRates, YearFigures, estimate


def test_occ_symbols_parse_and_produce() -> None:
    o = parse_symbol("AAPL  251219P00180000")
    assert (o.underlying, o.put_call, o.strike_e4, o.expiry, o.multiplier) == (
        "AAPL",
        "P",
        1_800_000,
        date(2025, 12, 19),
        100,
    )
    assert option("aapl", date(2025, 12, 19), "put", "180").symbol == "AAPL  251219P00180000"
    assert parse_symbol("SPY251219C00612500").symbol == "SPY   251219C00612500"
    assert parse_symbol("SPY   251219C00612500").strike_e4 == 6_125_000
    assert parse_symbol("brk.b").symbol == "BRK.B"
    for bad in ("AAPL  251340P00180000", "AAPL 25 P", "", "TOOLONGX"):
        with pytest.raises(InvalidInput):
            parse_symbol(bad)


def test_prices_are_exact_to_four_places() -> None:
    assert parse_price("1.2345") == 12_345 and price_text(12_345) == "1.2345" and price_text(1_800_000) == "180"
    for bad in ("1.23456", "-1", "abc", "nan"):
        with pytest.raises(InvalidInput):
            parse_price(bad)
    with pytest.raises(InvalidInput, match="floats"):
        parse_price(1.5)  # type: ignore[arg-type]
    # 3 shares at 0.0050 = 1.5 cents → 2 cents (half-even); 5 at 0.0050 = 2.5 → 2.
    assert value_cents(3, 50, 1) == 2 and value_cents(5, 50, 1) == 2 and value_cents(2, 12_345, 100) == 24_690


@given(st.integers(-(10**12), 10**12), st.lists(st.integers(1, 10**6), min_size=1, max_size=20))
def test_pro_rata_parts_always_sum_to_the_whole(total: int, weights: list[int]) -> None:
    assert sum(split_pro_rata(total, weights)) == total


@pytest.mark.parametrize(
    ("opened", "closed", "term"),
    [
        ("2024-02-29", "2025-02-28", Term.SHORT),
        ("2024-02-29", "2025-03-01", Term.LONG),
        ("2023-02-28", "2024-02-29", Term.SHORT),
        ("2023-02-28", "2024-03-01", Term.LONG),
        ("2024-02-28", "2025-02-28", Term.SHORT),
        ("2024-02-28", "2025-03-01", Term.LONG),
        ("2023-06-15", "2024-06-15", Term.SHORT),
        ("2023-06-15", "2024-06-16", Term.LONG),
        ("2025-03-03", "2026-03-03", Term.SHORT),
        ("2025-03-03", "2026-03-04", Term.LONG),
        ("2023-12-31", "2024-12-31", Term.SHORT),
        ("2023-12-31", "2025-01-01", Term.LONG),
    ],
)
def test_holding_period_by_the_irs_rule(opened: str, closed: str, term: Term) -> None:
    assert holding_term(date.fromisoformat(opened), date.fromisoformat(closed)) == term


def test_irs_style_netting() -> None:
    r = TaxRates()
    assert estimate(YearFigures(7_500_000, 0, 0), r).tax == 2_250_000  # §5.1 worked example
    assert estimate(YearFigures(-200_000, 500_000, 0), r).tax == 45_000  # ST loss offsets LT gain
    lia = estimate(YearFigures(1_000_000, -400_000, 10_000), r)  # LT loss offsets ST gain; dividends apart
    assert (lia.taxable_short_term, lia.tax) == (600_000, 180_000 + 1_500)
    lia = estimate(YearFigures(-300_000, 100_000, 0), r)
    assert (lia.tax, lia.net_capital_loss) == (0, 200_000)
    assert estimate(YearFigures(100_000, 100_000, 0), TaxRates(3700, 2000, 2000)).tax == 37_000 + 20_000
