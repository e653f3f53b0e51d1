"""FIFO lot booking (ALLUSE_RULES §6), pure: which lots a closing quantity takes, and how the cash of
the opening and of the closing is shared among them to the cent.

A lot carries the cash its opening moved (`open_cash`: negative for a long lot bought, positive for
a short option's premium). Closing k of its remaining r units takes k/r of what is left of that cash,
so the parts of a lot always add back to the whole; a closing's own cash is split over the lots it
touches in proportion to their units, the last taking the remainder. Gain = open part + close part.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from alluse.domain.errors import RuleViolation
from alluse.domain.money import to_cents


class Term(StrEnum):
    """The holding period of a closed lot, for tax: one year or less is SHORT."""

    SHORT = "SHORT"
    LONG = "LONG"


class Side(StrEnum):
    """A lot is LONG (bought: stock, a LEAPS call) or SHORT (written: a put or a covered call)."""

    LONG = "LONG"
    SHORT = "SHORT"


@dataclass(slots=True)
class OpenLot:
    id: int
    opened_on: date
    remaining: int
    remaining_cash: int


class Take(NamedTuple):
    lot: OpenLot
    quantity: int
    open_cash: int
    close_cash: int

    @property
    def gain(self) -> int:
        return self.open_cash + self.close_cash


# Made from a tuple in C: calling the named tuple runs its own Python `__new__` (every closing makes one).
_new_take = functools.partial(tuple.__new__, Take)


def share(total: int, part: int, whole: int) -> int:
    """`total` × part/whole in cents, half-even; exact when part == whole."""
    if part == whole:
        return total
    if (total * part) % whole == 0:  # exact: nothing to round
        return total * part // whole
    return to_cents(Decimal(total) * part / whole / 100)


def split_pro_rata(total: int, weights: list[int]) -> list[int]:
    """Split `total` cents by weights; the parts sum to `total` exactly (the last takes the rest)."""
    out, left, w_left = [], total, sum(weights)
    for w in weights:
        part = share(left, w, w_left)
        out.append(part)
        left -= part
        w_left -= w
    return out


def take_fifo(open_lots: list[OpenLot], quantity: int, close_cash: int, what: Callable[[], str]) -> list[Take]:
    """Close `quantity` units from the oldest lots first. Mutates the lots' remaining figures (none
    when there are not enough). `what`: what is closed, for the error (spelled only then)."""
    picks: list[tuple[OpenLot, int]] = []
    left = quantity
    for lot in open_lots:
        if left == 0:
            break
        if lot.remaining == 0:
            continue
        k = left if left < lot.remaining else lot.remaining
        picks.append((lot, k))
        left -= k
    if left:  # every lot taken whole, and still short
        raise RuleViolation(f"cannot close {quantity} of {what()}: only {quantity - left} open")
    # One lot (the usual closing) takes the whole closing cash, as the split would give it.
    closes = [close_cash] if len(picks) == 1 else split_pro_rata(close_cash, [k for _, k in picks])
    takes = []
    for (lot, k), c in zip(picks, closes, strict=True):
        part = share(lot.remaining_cash, k, lot.remaining)
        lot.remaining -= k
        lot.remaining_cash -= part
        takes.append(_new_take((lot, k, part, c)))
    return takes


@functools.lru_cache(maxsize=4096)  # every closing of a long lot asks; an import repeats a few dates
def holding_term(opened_on: date, closed_on: date) -> str:
    """The IRS rule: the holding period starts the day after acquisition, and a lot is long-term when
    closed on or after that day plus one calendar year (a Feb 29 that does not exist is Mar 1)."""
    start = opened_on + timedelta(days=1)
    try:
        one_year = start.replace(year=start.year + 1)
    except ValueError:  # the period started on Feb 29
        one_year = date(start.year + 1, 3, 1)
    return Term.LONG if closed_on >= one_year else Term.SHORT
