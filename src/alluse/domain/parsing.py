"""The one parser for every number a person types: money, prices, quantities, percentages, deltas.

The CLI, the API (through the annotated types in `api/schemas/`), file imports (fills, marks) and
configuration all call these functions, so `1,50` means the same thing, and is refused the same
way, wherever it is typed. The accepted form (docs/accounts-and-ledger.md, "Typed numbers"):

- ASCII digits only: full-width, Arabic-Indic and other Unicode digits are refused, because
  Python's `Decimal` and `int` would read `١` as 1;
- an optional leading `$` on money and prices, an optional trailing `%` on percentages, and a
  leading `-` only where the field may be negative (a delta);
- thousands separators only in correct groups of three (`1,000.50` yes; `1,50`, `1,,000` no);
- no exponents, underscores, spaces inside the number, NaN or infinities;
- at most as many decimals as the field holds (money 2, prices 4, percentages 2, deltas 4), so
  nothing typed is ever rounded;
- a maximum magnitude per field (money $1 trillion, prices $10,000,000 a share, quantities one
  billion), checked on the digits before any arithmetic.

Binary floats are refused everywhere (a float has already lost the typed digits). Integers and
Decimals handed in by code go through the same rules as their text.
"""

from __future__ import annotations

import re
from decimal import Decimal

from alluse.domain.errors import InvalidInput, InvalidNumber

MAX_CENTS = 100_000_000_000_000  # $1 trillion: far past any real account, so bigger is a typo
MAX_PRICE = Decimal(10_000_000)
MAX_QUANTITY = 10**9
MAX_KEY_LENGTH = 200  # an idempotency key, as stored beside its audit entry

# Digits in correct groups of three, or plain digits; an optional fraction. ASCII only ([0-9], not \d).
_NUMBER = re.compile(r"(?P<int>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)?(?:\.(?P<frac>[0-9]+))?")

MONEY_FORM = "dollars like 1250, 1,250.50 or $1250.50 (at most 2 decimals)"
PRICE_FORM = "a price like 1.25, 180 or $1,025.5 (at most {places} decimals)"
QUANTITY_FORM = "a whole number like 5 or 1,000"
PERCENT_FORM = "a percentage like 5, 37.5 or 30% (at most 2 decimals, 0 to 100)"
DELTA_FORM = "a delta like 0.30 or .45 (at most 4 decimals, between {low} and 1)"


def _text(value: object, field: str, form: str) -> str:
    """The characters to parse: text as typed, or the exact text of an int/Decimal handed in by code."""
    if isinstance(value, bool) or isinstance(value, float):
        raise InvalidNumber(field, form, "binary floats are refused: give the number as text")
    if isinstance(value, int | Decimal):
        value = str(value)  # a Decimal's own text: an exponent in it is refused like a typed one
    if not isinstance(value, str):
        raise InvalidNumber(field, form, f"expected text, got {type(value).__name__}")
    return value.strip(" \t")


def _decimal(raw: str, original: object, field: str, form: str, places: int, max_int_digits: int) -> Decimal:
    m = _NUMBER.fullmatch(raw)
    if not raw or m is None or (m["int"] is None and m["frac"] is None):
        raise InvalidNumber(field, form, f"{original!r} is not in that form")
    digits = (m["int"] or "0").replace(",", "")
    frac = m["frac"] or ""
    if len(frac) > places:
        raise InvalidNumber(field, form, f"{original!r} has more than {places} decimals")
    if len(digits.lstrip("0")) > max_int_digits:  # before any arithmetic: no billion-digit ints
        raise InvalidNumber(field, form, f"{original!r} is too large")
    return Decimal(f"{digits}.{frac}" if frac else digits)


def parse_money(text: object, *, field: str = "amount", allow_zero: bool = False) -> int:
    """A positive dollar amount as integer cents, exactly ("1,250.50" → 125050)."""
    raw = _text(text, field, MONEY_FORM).removeprefix("$")
    value = _decimal(raw, text, field, MONEY_FORM, 2, 13)
    cents = int(value * 100)
    if cents > MAX_CENTS:
        raise InvalidNumber(field, MONEY_FORM, f"{text!r} is above the maximum of $1,000,000,000,000.00")
    if cents == 0 and not allow_zero:
        raise InvalidNumber(field, MONEY_FORM, "must be more than zero")
    return cents


def parse_price(text: object, *, field: str = "price", places: int = 4) -> Decimal:
    """A non-negative price per share with at most `places` decimals ("1.25" → Decimal("1.25"))."""
    form = PRICE_FORM.format(places=places)
    raw = _text(text, field, form).removeprefix("$")
    value = _decimal(raw, text, field, form, places, 8)
    if value > MAX_PRICE:
        raise InvalidNumber(field, form, f"{text!r} is above the maximum of $10,000,000")
    return value


def parse_quantity(text: object, *, field: str = "quantity", allow_zero: bool = False) -> int:
    """A whole number of shares or contracts, at most one billion ("1,000" → 1000)."""
    raw = _text(text, field, QUANTITY_FORM)
    value = _decimal(raw, text, field, QUANTITY_FORM, 0, 10)
    if "." in raw:
        raise InvalidNumber(field, QUANTITY_FORM, f"{text!r} is not a whole number")
    n = int(value)
    if n > MAX_QUANTITY:
        raise InvalidNumber(field, QUANTITY_FORM, f"{text!r} is above the maximum of 1,000,000,000")
    if n == 0 and not allow_zero:
        raise InvalidNumber(field, QUANTITY_FORM, "must be more than zero")
    return n


def parse_percent(text: object, *, field: str = "percentage") -> int:
    """A percentage from 0 to 100 as integer basis points, exactly ("37.5" → 3750)."""
    raw = _text(text, field, PERCENT_FORM).removesuffix("%").rstrip(" ")
    value = _decimal(raw, text, field, PERCENT_FORM, 2, 3)
    if value > 100:
        raise InvalidNumber(field, PERCENT_FORM, f"{text!r} is above 100")
    return int(value * 100)


def parse_delta(text: object, *, field: str = "delta", signed: bool = False) -> Decimal:
    """An option delta: 0 to 1, or -1 to 1 when `signed` (a put's delta as a broker shows it)."""
    form = DELTA_FORM.format(low=-1 if signed else 0)
    raw = _text(text, field, form)
    negative = signed and raw.startswith("-")
    value = _decimal(raw.removeprefix("-") if negative else raw, text, field, form, 4, 1)
    if value > 1:
        raise InvalidNumber(field, form, f"{text!r} is outside {'-1' if signed else '0'} to 1")
    return -value if negative else value


def validate_key(key: str) -> str:
    """An idempotency key as given (surrounding blanks dropped), 1 to MAX_KEY_LENGTH characters."""
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(f"idempotency key must be 1–{MAX_KEY_LENGTH} characters")
    return key
