"""Double-entry postings (ALLUSE_RULES §3): every movement is a balanced set of legs."""

from __future__ import annotations

import functools
from enum import StrEnum
from typing import NamedTuple

from alluse.domain.errors import InvalidInput


class TransferKind(StrEnum):
    GROUP_OPEN = "GROUP_OPEN"
    DEPOSIT = "DEPOSIT"
    WITHDRAWAL = "WITHDRAWAL"
    TRANSFER = "TRANSFER"
    REVERSAL = "REVERSAL"
    # Results of trading, not capital flows: base capital is unchanged by them.
    TRADE = "TRADE"
    ASSIGNMENT = "ASSIGNMENT"
    DIVIDEND = "DIVIDEND"
    FEE = "FEE"
    TAX_PAYMENT = "TAX_PAYMENT"
    INTEREST = "INTEREST"  # broker interest received (+) or paid (−)
    FORK = "FORK"  # a Gen-Acc or Rev-Acc fork funds the sleeves of a new group
    MERGE = "MERGE"  # a FORK group hands its cash to the spawning group's Com-Acc


REVERSIBLE = frozenset({TransferKind.DEPOSIT, TransferKind.WITHDRAWAL, TransferKind.TRANSFER})

# Transfers that change what a sleeve was funded with (its base capital), as opposed to its results.
CAPITAL_FLOWS = frozenset(
    {
        TransferKind.GROUP_OPEN,
        TransferKind.DEPOSIT,
        TransferKind.WITHDRAWAL,
        TransferKind.TRANSFER,
        TransferKind.REVERSAL,
    }
)

# Lifecycle moves add to the receiving sleeve's base capital, while the giving sleeve keeps its own:
# a forking parent keeps its base capital (§5.1), and a merged sleeve keeps the record of what it was
# funded with. So only the positive legs of these transfers are capital.
CAPITAL_INFLOWS = frozenset({TransferKind.FORK, TransferKind.MERGE})


# External counter-accounts: the named other side of money entering or leaving the structure.
BANK = "ext:bank"
MARKET = "ext:market"  # the other side of purchases, sales, premiums and assignments
FEES = "ext:fees"  # commissions and fees
DIVIDENDS = "ext:dividends"
# The counter-accounts a broker fact posts to (domain/booking.py).
COUNTER_ACCOUNTS = (MARKET, FEES, DIVIDENDS)
TAX = "ext:tax"  # estimated tax paid, and tax withheld at source by a broker
INTEREST = "ext:interest"  # broker interest received and paid


class Leg(NamedTuple):
    account_id: int
    amount_cents: int  # positive: cash into the account; negative: cash out


# A leg from an (account_id, amount_cents) tuple, built in C: calling the named tuple runs its own
# Python `__new__`, and the hot paths (a move, a group opening, a fill's booking) make several each.
new_leg = functools.partial(tuple.__new__, Leg)


def balanced(legs: list[Leg]) -> list[Leg]:
    """Validate a transfer's legs: non-empty, no zero leg, summing to exactly zero."""
    if len(legs) < 2:
        raise InvalidInput("a transfer needs at least two legs")
    # One plain loop: a bulk unit of work checks every one of its transfers here.
    total = 0
    for _account, amount in legs:
        if amount == 0:
            raise InvalidInput("a transfer leg may not be zero")
        total += amount
    if total != 0:
        raise InvalidInput(f"transfer legs must sum to zero, got {total} cents")
    return legs
