"""Exact money. Amounts are integer cents; rates are integer basis points.

Rounding to cents happens in exactly one place, `round_half_even`. Everything that turns a Decimal
or a rate into cents goes through it.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

BPS_PER_UNIT = 10_000
# Guard rail for user input: a trillion dollars is far past any real account; bigger means a typo.
MAX_CENTS = 100_000_000_000_000


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


def parse_usd(text: str | int | Decimal, *, allow_zero: bool = False) -> int:
    """Parse a user-given dollar amount ("1250", "1,250.50", "$75000") into cents.

    Refuses floats, negatives, more than two decimals and non-numbers with a message that says which.
    """
    from alluse.domain.errors import InvalidInput

    if isinstance(text, float):
        raise InvalidInput("amounts must be given as text or Decimal, not binary floats")
    raw = str(text).strip().replace(",", "").removeprefix("$")
    if not raw.isascii():  # Decimal() would read "١٢" or fullwidth digits as 12
        raise InvalidInput(f"not an amount: {text!r} (expected dollars like 1250 or 1250.50)")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise InvalidInput(f"not an amount: {text!r} (expected dollars like 1250 or 1250.50)") from None
    if not value.is_finite():
        raise InvalidInput(f"not an amount: {text!r}")
    if value.as_tuple().exponent < -2:  # type: ignore[operator]
        raise InvalidInput(f"amount {text!r} has more than two decimals; amounts are whole cents")
    # Checked on the exponent first: "1E+999999999" overflows Decimal arithmetic (or would build a
    # billion-digit int).
    if value < 0:
        raise InvalidInput(f"amount must be positive, got {text!r}")
    if value.adjusted() > 13 or value * 100 > MAX_CENTS:
        raise InvalidInput(f"amount {text!r} is implausibly large")
    cents = int(value * 100)
    if cents < 0 or (cents == 0 and not allow_zero):
        raise InvalidInput(f"amount must be positive, got {text!r}")
    return cents


def parse_pct_bps(text: str | int | Decimal) -> int:
    """Parse a percentage ("5", "37.5") into basis points, exactly (at most two decimals)."""
    from alluse.domain.errors import InvalidInput

    try:
        value = Decimal(str(text).strip().removesuffix("%"))
    except InvalidOperation:
        raise InvalidInput(f"not a percentage: {text!r}") from None
    if not value.is_finite() or value.as_tuple().exponent < -2:  # type: ignore[operator]
        raise InvalidInput(f"percentage {text!r} must have at most two decimals")
    if not 0 <= value <= 100:
        raise InvalidInput(f"percentage must be between 0 and 100, got {text!r}")
    return int(value * 100)


def cents_to_decimal(cents: int) -> Decimal:
    return Decimal(cents) / 100


def format_usd(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}${whole:,}.{frac:02d}"


def format_bps(bps: int) -> str:
    return f"{Decimal(bps) / 100:g} %"
