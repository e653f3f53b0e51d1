"""Exact money. Amounts are integer cents; rates are integer basis points.

Rounding to cents happens in exactly one place, `round_half_even`. Everything that turns a Decimal
or a rate into cents goes through it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NewType

# An amount of integer cents. Results mark their money fields with it, so an entrypoint can find
# them by type (the API shows them as decimal-string dollars) rather than by a field name's suffix.
Cents = NewType("Cents", int)

BPS_PER_UNIT = 10_000
# Guard rail for user input: a trillion dollars is far past any real account; bigger means a typo.
MAX_CENTS = 100_000_000_000_000  # the same bound as domain/parsing.MAX_CENTS


def round_half_even(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded to an integer, ties to even: the one rounding point."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    q, r = divmod(numerator, denominator)  # floor division: 0 <= r < denominator
    twice = 2 * r
    if twice > denominator or (twice == denominator and q % 2 == 1):
        q += 1
    return q


def to_cents(value: Decimal) -> int:
    """A dollar Decimal (any precision, e.g. a price × quantity) as integer cents, half-even."""
    num, den = (value * 100).as_integer_ratio()
    return round_half_even(num, den)


def apply_bps(cents: int, bps: int) -> int:
    """`cents` × `bps`/10,000, rounded half-even to the cent (integer arithmetic: hot path)."""
    return round_half_even(cents * bps, BPS_PER_UNIT)


def cents_to_decimal(cents: int) -> Decimal:
    return Decimal(cents) / 100


def format_usd(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}${whole:,}.{frac:02d}"


def format_bps(bps: int) -> str:
    return f"{Decimal(bps) / 100:g} %"
