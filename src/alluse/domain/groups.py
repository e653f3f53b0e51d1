"""Opening account groups (ALLUSE_RULES §2), pure: beside the lifecycle planners, a planner from the
requests and the ids reserved for them to the groups, sleeves and funding transfers to write.

A group is funded from the bank (a PRIMARY group) or from a forking sleeve (a fork's group); each of
its sleeves gets its share of the amount by the allocation, and the transfer that funds it has one
paying leg and one receiving leg per sleeve. A group over real brokerage accounts may open empty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol

from alluse.domain.accounts import SLEEVES, AccountKind, Allocation, GroupKind
from alluse.domain.errors import InvalidInput
from alluse.domain.ledger import Leg, TransferKind
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
    # A batch opens many groups of one amount and allocation: split each such pair once.
    shares: dict[tuple[Allocation, int], list[tuple[AccountKind, str, int, int, int]]] = {}
    for i, (o, name) in enumerate(zip(openings, names, strict=True)):
        alloc = o.allocation or default
        share = shares.get((alloc, o.amount_cents))
        if share is None:
            kinds = alloc.kinds()
            split = alloc.split(o.amount_cents)
            if o.amount_cents and min(split[k] for k in kinds) <= 0:
                raise InvalidInput(f"{format_usd(o.amount_cents)} is too small to fund every sleeve of a group")
            share = shares[(alloc, o.amount_cents)] = [
                (k, k.value, split[k], buffers[k], SLEEVES.index(k)) for k in kinds
            ]
        source = o.forked_from_account_id or bank_id
        sleeves = []
        for kind, suffix, cash, buffer, slot in share:
            sleeves.append(SleevePlan(next_account, kind, f"{name}-{suffix}", cash, buffer, slot))
            next_account += 1
        legs = (Leg(source, -o.amount_cents), *(Leg(s.account_id, s.cash_cents) for s in sleeves))
        plans.append(
            GroupPlan(
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
                legs if o.amount_cents else (),
            )
        )
    return plans


def paid_from(plans: Sequence[GroupPlan]) -> dict[int, int]:
    """What each paying account (the bank, a forking sleeve) pays in total, in first-use order."""
    out: dict[int, int] = {}
    for p in plans:
        out[p.source_account_id] = out.get(p.source_account_id, 0) + p.amount_cents
    return out
