"""Accounts, groups, allocation and the cash buffer (ALLUSE_RULES §1, §4)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from alluse.domain.errors import BufferShortfall, InvalidInput, RuleViolation
from alluse.domain.money import BPS_PER_UNIT, apply_bps, format_bps, format_usd


class AccountKind(StrEnum):
    GEN = "GEN"  # Gen-Acc, generator
    REV = "REV"  # Rev-Acc, revenue
    COM = "COM"  # Com-Acc, compounding
    EXT = "EXT"  # external counter-account (bank, premiums, fees ...): the other side of outside flows


SLEEVES = (AccountKind.GEN, AccountKind.REV, AccountKind.COM)

SLEEVE_LABEL = {AccountKind.GEN: "Gen-Acc", AccountKind.REV: "Rev-Acc", AccountKind.COM: "Com-Acc"}


class AccountStatus(StrEnum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    MERGED = "MERGED"
    CLOSED = "CLOSED"


class GroupKind(StrEnum):
    PRIMARY = "PRIMARY"
    FORK = "FORK"


class GroupStatus(StrEnum):
    """A group is active until its accounts merge into the spawning group's Com-Acc, or it closes."""

    ACTIVE = "ACTIVE"
    MERGED = "MERGED"
    CLOSED = "CLOSED"


DEFAULT_BUFFER_BPS = 500


@dataclass(frozen=True, slots=True)
class Allocation:
    """How new capital splits across a group's sleeves, in basis points summing to 10,000."""

    gen_bps: int = 4000
    rev_bps: int = 3000
    com_bps: int = 3000

    def __post_init__(self) -> None:
        parts = (self.gen_bps, self.rev_bps, self.com_bps)
        if any(p < 0 for p in parts):
            raise InvalidInput("allocation shares must not be negative")
        if sum(parts) != BPS_PER_UNIT:
            raise InvalidInput(
                "allocation must sum to 100 %, got "
                + " + ".join(format_bps(p) for p in parts)
                + f" = {format_bps(sum(parts))}"
            )

    def bps(self, kind: AccountKind) -> int:
        return {AccountKind.GEN: self.gen_bps, AccountKind.REV: self.rev_bps, AccountKind.COM: self.com_bps}[kind]

    def split(self, amount_cents: int) -> dict[AccountKind, int]:
        """Split exactly: Gen and Rev are rounded half-even, Com-Acc takes the residue so the parts
        always add back to the amount (a cent never appears or vanishes)."""
        gen = apply_bps(amount_cents, self.gen_bps)
        rev = apply_bps(amount_cents, self.rev_bps)
        return {AccountKind.GEN: gen, AccountKind.REV: rev, AccountKind.COM: amount_cents - gen - rev}

    def kinds(self) -> tuple[AccountKind, ...]:
        """Sleeves that exist in a group with this allocation (a FORK group has no Rev-Acc)."""
        if self.gen_bps > 0 and self.rev_bps > 0 and self.com_bps > 0:  # every PRIMARY group
            return SLEEVES
        return tuple(k for k in SLEEVES if self.bps(k) > 0)


def check_allocation_for(kind: GroupKind, alloc: Allocation) -> None:
    """A PRIMARY group has all three sleeves; a FORK group has Gen and Com only."""
    if kind is GroupKind.PRIMARY and min(alloc.gen_bps, alloc.rev_bps, alloc.com_bps) == 0:
        raise InvalidInput("a PRIMARY group needs a share above 0 % for each of Gen, Rev and Com")


class CashSnapshot(NamedTuple):
    """The money of one account, all in cents, and the buffer rule over it: the one shape every rule
    reads an account's cash through. The others wrap it with what only their rule needs
    (docs/architecture.md, "One account, one vocabulary"): `store.repo.AccountRow` is the mutable row a
    unit of work changes and makes these from, `lifecycle.AccountState` adds the surplus figures and
    the group, `protocol.AccountView` the rules and holdings. (A NamedTuple: immutable, and cheap to
    build on the hot path.)"""

    label: str
    kind: AccountKind
    cash: int
    positions_value: int = 0
    collateral: int = 0
    earmarked: int = 0
    buffer_bps: int = DEFAULT_BUFFER_BPS

    @property
    def nav(self) -> int:
        return self.cash + self.positions_value

    @property
    def cash_buffer(self) -> int:
        return max(0, apply_bps(self.nav, self.buffer_bps))

    @property
    def deployable_cash(self) -> int:
        """Cash − required buffer − short-put collateral − earmarks (may be negative after a fact)."""
        return self.cash - self.cash_buffer - self.collateral - self.earmarked

    @property
    def buffer_breached(self) -> bool:
        return self.cash < self.cash_buffer


# A snapshot from a tuple of all its fields, built in C (calling the named tuple runs its Python `__new__`).
new_snapshot = functools.partial(tuple.__new__, CashSnapshot)


def after_cash_out(snapshot: CashSnapshot, amount_cents: int) -> CashSnapshot:
    """The account once `amount_cents` of cash has left it (its NAV falls by as much)."""
    label, kind, cash, positions_value, collateral, earmarked, buffer_bps = snapshot
    # From a tuple in C: `_replace` runs two Python frames, most of a single withdrawal's buffer check.
    return new_snapshot((label, kind, cash - amount_cents, positions_value, collateral, earmarked, buffer_bps))


def max_cash_out(snapshot: CashSnapshot) -> int:
    """The most cash one intent may take out: the largest amount after which the account still holds
    its buffer on what is left. Deployable cash after taking x falls by 1 or 0 per cent of x (the
    buffer shrinks with the NAV), so a binary search over [0, cash] finds it exactly."""
    if snapshot.cash <= 0 or after_cash_out(snapshot, 0).deployable_cash < 0:
        return 0
    lo, hi = 0, snapshot.cash  # deployable ≥ 0 after taking lo; find the largest such amount
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if after_cash_out(snapshot, mid).deployable_cash >= 0:
            lo = mid
        else:
            hi = mid - 1
    return lo


def check_cash_out(snapshot: CashSnapshot, amount_cents: int, action: str, *, override: bool = False) -> None:
    """Refuse an intent that would leave the account without its cash buffer.

    The rule is on the state the intent leaves: afterwards, deployable cash (cash − 5 % of the NAV
    then − collateral − earmarks) must not be negative. Because only the resulting state is judged,
    no sequence of intents can reach a state one intent could not: slicing a withdrawal gains nothing
    (docs/accounts-and-ledger.md, "The buffer rule for intents").
    """
    if amount_cents <= 0:
        raise InvalidInput("amount must be positive")
    if amount_cents > snapshot.cash:
        # Not even an admin can take out cash that is not there.
        raise RuleViolation(f"{action} refused: {snapshot.label} holds only {format_usd(snapshot.cash)} cash")
    after = after_cash_out(snapshot, amount_cents)
    if after.deployable_cash < 0 and not override:
        shortfall = amount_cents - max_cash_out(snapshot)
        raise BufferShortfall(snapshot.label, after.cash_buffer, shortfall, action)


# As module constants: a member read off its enum class is looked up through the enum's metaclass.
_COM, _EXT = AccountKind.COM, AccountKind.EXT


def check_cash_may_leave(kind: AccountKind, label: str, action: str) -> None:
    """Com-Acc compounds: no intent (withdrawal or transfer) may take its cash out. Only the
    lifecycle's merge moves a forked Com-Acc, in kind, into its parent's Com-Acc."""
    if kind is _COM:
        raise RuleViolation(f"{action} refused: {label} is a Com-Acc, and Com-Acc never allows withdrawals")
    if kind is _EXT:
        raise InvalidInput(f"{label} is an external counter-account, not a sleeve")
