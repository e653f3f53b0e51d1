"""Planning a group opening without a database."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from alluse.domain.accounts import AccountKind, Allocation, GroupKind
from alluse.domain.errors import InvalidInput
from alluse.domain.groups import paid_from, plan_group_openings, sleeves_needed
from alluse.domain.ledger import Leg, TransferKind

THIRDS = Allocation(3_333, 3_333, 3_334)
FORK = Allocation(5_000, 0, 5_000)
BUFFERS = {AccountKind.GEN: 500, AccountKind.REV: 1_000, AccountKind.COM: 1_500}
BANK = 7


@dataclass(frozen=True)
class Request:
    amount_cents: int
    allocation: Allocation | None = None
    kind: GroupKind = GroupKind.PRIMARY
    parent_group_id: int | None = None
    forked_from_account_id: int | None = None


def test_a_primary_group_splits_its_amount_exactly_over_three_sleeves_funded_from_the_bank() -> None:
    (g,) = plan_group_openings([Request(100_001)], ["A1"], 40, 100, THIRDS, BUFFERS, BANK)
    assert [(s.account_id, s.name, s.buffer_bps, s.slot) for s in g.sleeves] == [
        (100, "A1-GEN", 500, 0),
        (101, "A1-REV", 1_000, 1),
        (102, "A1-COM", 1_500, 2),
    ]
    assert sum(s.cash_cents for s in g.sleeves) == 100_001
    assert g.transfer_kind is TransferKind.GROUP_OPEN and g.legs[0] == Leg(BANK, -100_001)
    assert sum(leg.amount_cents for leg in g.legs) == 0


def test_a_fork_group_is_paid_by_its_sleeve_and_ids_run_on_across_groups() -> None:
    reqs = [Request(0), Request(50_000, FORK, GroupKind.FORK, 3, 55)]
    assert sleeves_needed(reqs, THIRDS) == 5
    a, b = plan_group_openings(reqs, ["A2", "A2F1"], 40, 100, THIRDS, BUFFERS, BANK)
    assert a.legs == () and (a.group_id, b.group_id) == (40, 41)
    assert [s.account_id for s in b.sleeves] == [103, 104] and [s.kind for s in b.sleeves] == [
        AccountKind.GEN,
        AccountKind.COM,
    ]
    assert b.transfer_kind is TransferKind.FORK and b.source_account_id == 55
    assert paid_from([a, b]) == {BANK: 0, 55: 50_000}


def test_an_amount_too_small_for_every_sleeve_is_refused() -> None:
    with pytest.raises(InvalidInput, match="too small"):
        plan_group_openings([Request(2)], ["A1"], 1, 1, THIRDS, BUFFERS, BANK)
