"""Opening account groups (ALLUSE_RULES §2), pure: beside the lifecycle planners, a planner from the
requests and the ids reserved for them to the groups, sleeves and funding transfers to write.

A group is funded from the bank (a PRIMARY group) or from a forking sleeve (a fork's group); each of
its sleeves gets its share of the amount by the allocation, and the transfer that funds it has one
paying leg and one receiving leg per sleeve. A group over real brokerage accounts may open empty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import NamedTuple, Protocol

from alluse.domain.accounts import SLEEVES, AccountKind, Allocation, GroupKind
from alluse.domain.errors import InvalidInput
from alluse.domain.ledger import Leg, TransferKind, new_leg
from alluse.domain.money import format_usd


class Opening(Protocol):
    """What a request to open a group says (the service's `GroupOpening`)."""

    @property
    def amount_cents(self) -> int: ...
    @property
    def allocation(self) -> Allocation | None: ...
    @property
    def kind(self) -> GroupKind: ...
    @property
    def parent_group_id(self) -> int | None: ...
    @property
    def forked_from_account_id(self) -> int | None: ...


# Named tuples, not frozen dataclasses: a group opening makes four of them, and a frozen dataclass
# sets each field through object.__setattr__ in Python.
class SleevePlan(NamedTuple):
    account_id: int
    kind: AccountKind
    name: str
    cash_cents: int
    buffer_bps: int
    slot: int  # its place in the (Gen, Rev, Com) brokerage triple of the request


class GroupPlan(NamedTuple):
    group_id: int
    name: str
    kind: GroupKind
    parent_group_id: int | None
    forked_from_account_id: int | None
    allocation: Allocation
    amount_cents: int
    source_account_id: int  # the bank, or the forking sleeve
    sleeves: tuple[SleevePlan, ...]
    transfer_kind: TransferKind
    legs: tuple[Leg, ...]  # empty when the group opens empty


def sleeves_needed(openings: Sequence[Opening], default: Allocation) -> int:
    """How many account ids the openings need."""
    return sum(len((o.allocation or default).kinds()) for o in openings)


def plan_group_openings(
    openings: Sequence[Opening],
    names: Sequence[str],
    first_group_id: int,
    first_account_id: int,
    default: Allocation,
    buffers: Mapping[AccountKind, int],
    bank_id: int,
) -> list[GroupPlan]:
    """The groups the openings create, with consecutive ids from the reserved blocks. `buffers`: each
    sleeve kind's buffer under the portfolio's template."""
    plans = []
    next_account = first_account_id
    buffer_bps = (buffers[AccountKind.GEN], buffers[AccountKind.REV], buffers[AccountKind.COM])
    for i, (o, name) in enumerate(zip(openings, names, strict=True)):
        alloc = o.allocation or default
        source = o.forked_from_account_id or bank_id
        # Built with tuple.__new__: a named tuple's own __new__ is a Python call, and a group opening
        # makes eight of them.
        sleeves = []
        legs = [new_leg((source, -o.amount_cents))]
        for kind, suffix, cash, buffer, slot in _shares(alloc, o.amount_cents, buffer_bps):
            sleeves.append(_new(SleevePlan, (next_account, kind, name + suffix, cash, buffer, slot)))
            legs.append(new_leg((next_account, cash)))
            next_account += 1
        plans.append(
            _new(
                GroupPlan,
                (
                    first_group_id + i,
                    name,
                    o.kind,
                    o.parent_group_id,
                    o.forked_from_account_id,
                    alloc,
                    o.amount_cents,
                    source,
                    tuple(sleeves),
                    TransferKind.GROUP_OPEN if source == bank_id else TransferKind.FORK,
                    tuple(legs) if o.amount_cents else (),
                ),
            )
        )
    return plans


_new = tuple.__new__


@lru_cache(maxsize=256)
def _shares(
    alloc: Allocation, amount_cents: int, buffer_bps: tuple[int, int, int]
) -> tuple[tuple[AccountKind, str, int, int, int], ...]:
    """Each sleeve's (kind, name suffix, cash, buffer, brokerage slot) for an amount split by an
    allocation: kept, since groups are opened again and again with one amount and allocation."""
    kinds = alloc.kinds()
    split = alloc.split(amount_cents)
    if amount_cents and min(split[k] for k in kinds) <= 0:
        raise InvalidInput(f"{format_usd(amount_cents)} is too small to fund every sleeve of a group")
    return tuple((k, f"-{k.value}", split[k], buffer_bps[SLEEVES.index(k)], SLEEVES.index(k)) for k in kinds)


def paid_from(plans: Sequence[GroupPlan]) -> dict[int, int]:
    """What each paying account (the bank, a forking sleeve) pays in total, in first-use order."""
    out: dict[int, int] = {}
    for p in plans:
        out[p.source_account_id] = out.get(p.source_account_id, 0) + p.amount_cents
    return out
