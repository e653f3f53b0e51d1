"""Instruments and prices (ALLUSE_RULES §6): shares and equity options, OCC symbols, exact prices.

Prices are Decimals with at most 4 places, carried as integers in ten-thousandths (`*_e4`) so both
databases store them exactly. Turning a price × quantity into cents goes through `money.to_cents`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from alluse.domain import parsing
from alluse.domain.errors import InvalidInput
from alluse.domain.money import to_cents

E4 = 10_000
OPTION_MULTIPLIER = 100
LEAPS_MIN_DAYS = 365
_OCC = re.compile(r"^([A-Z][A-Z0-9.]{0,5}) *(\d{6})([PC])(\d{8})$")
_TICKER = re.compile(r"^[A-Z][A-Z0-9.]{0,5}$")


class InstrumentKind(StrEnum):
    STOCK = "STOCK"
    OPTION = "OPTION"


def parse_price(text: str | int | Decimal, *, field: str = "price") -> int:
    """A non-negative price with at most 4 decimals ("1.25", "180") as ten-thousandths."""
    return int(parsing.parse_price(text, field=field) * E4)


def price_text(price_e4: int) -> str:
    return f"{Decimal(price_e4) / E4:f}".rstrip("0").rstrip(".") if price_e4 % E4 else str(price_e4 // E4)


def value_cents(quantity: int, price_e4: int, multiplier: int) -> int:
    """quantity × price × multiplier in cents, rounded half-even at the one rounding point."""
    hundredths = quantity * price_e4 * multiplier  # in 1/10,000 dollars = 1/100 cents
    if hundredths % 100 == 0:  # whole cents: nothing to round (the common case, kept off Decimal)
        return hundredths // 100
    return to_cents(Decimal(hundredths) / E4)


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    kind: InstrumentKind
    underlying: str
    put_call: str | None = None  # "P" or "C"
    strike_e4: int | None = None
    expiry: date | None = None
    multiplier: int = 1

    @property
    def is_option(self) -> bool:
        return self.kind is InstrumentKind.OPTION

    @property
    def is_put(self) -> bool:
        return self.put_call == "P"

    @property
    def is_call(self) -> bool:
        return self.put_call == "C"

    def strike_notional(self, contracts: int) -> int:
        """strike × multiplier × contracts in cents: a short put's collateral, an assignment's cash."""
        assert self.strike_e4 is not None
        return value_cents(contracts, self.strike_e4, self.multiplier)

    def days_to_expiry(self, on: date) -> int:
        assert self.expiry is not None
        return (self.expiry - on).days


def occ_symbol(underlying: str, expiry: date, put_call: str, strike_e4: int) -> str:
    """The OCC symbol: root padded to 6, YYMMDD, P/C, strike × 1000 in 8 digits."""
    if strike_e4 % 10:
        raise InvalidInput("OCC strikes have at most 3 decimals")
    return f"{underlying:<6}{expiry:%y%m%d}{put_call}{strike_e4 // 10:08d}"


def stock(ticker: str) -> Instrument:
    t = ticker.strip().upper()
    if not _TICKER.match(t):
        raise InvalidInput(f"not a ticker: {ticker!r}")
    return Instrument(t, InstrumentKind.STOCK, t)


def option(underlying: str, expiry: date, put_call: str, strike: str | Decimal, multiplier: int = 100) -> Instrument:
    root = stock(underlying).symbol
    pc = put_call.strip().upper()[:1]
    if pc not in ("P", "C"):
        raise InvalidInput(f"option right must be P or C (put or call), got {put_call!r}")
    strike_e4 = parse_price(strike, field="strike")
    if strike_e4 <= 0:
        raise InvalidInput("strike must be positive")
    if multiplier <= 0:
        raise InvalidInput("multiplier must be positive")
    return Instrument(
        occ_symbol(root, expiry, pc, strike_e4), InstrumentKind.OPTION, root, pc, strike_e4, expiry, multiplier
    )


@functools.lru_cache(maxsize=4096)  # an import names a few symbols many times; Instrument is frozen
def parse_symbol(text: str, multiplier: int = OPTION_MULTIPLIER) -> Instrument:
    """A ticker ("AAPL") or an OCC option symbol ("AAPL  251219P00180000", spaces optional)."""
    raw = text.strip().upper()
    m = _OCC.match(raw)
    if m is None:
        if " " in raw or any(c.isdigit() for c in raw[1:]) and len(raw) > 6:
            raise InvalidInput(f"not a ticker or OCC option symbol: {text!r} (e.g. AAPL or 'AAPL  251219P00180000')")
        return stock(raw)
    root, ymd, pc, strike = m.groups()
    try:
        expiry = date(2000 + int(ymd[:2]), int(ymd[2:4]), int(ymd[4:]))
    except ValueError:
        raise InvalidInput(f"OCC symbol {text!r} has an impossible expiry date") from None
    strike_e4 = int(strike) * 10
    if strike_e4 <= 0:
        raise InvalidInput(f"OCC symbol {text!r} has a zero strike")
    return Instrument(
        occ_symbol(root, expiry, pc, strike_e4), InstrumentKind.OPTION, root, pc, strike_e4, expiry, multiplier
    )
