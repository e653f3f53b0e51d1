"""Opening PRIMARY account groups: three sleeves, their buffers, brokerage mapping, initial funding."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import NotRequired, TypedDict, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.brokers.refs import BrokerageRef, parse_brokerage_ref
from alluse.domain.accounts import SLEEVES, AccountKind, Allocation, GroupKind, check_allocation_for
from alluse.domain.audit import json_string
from alluse.domain.errors import Conflict, InvalidInput
from alluse.domain.groups import paid_from, plan_group_openings, sleeves_needed
from alluse.domain.ledger import BANK
from alluse.domain.money import Cents
from alluse.domain.rules import template_rules
from alluse.services.brokers import map_brokerage
from alluse.store import groups as store
from alluse.store.repo import JournalEntry, allocate_blocks, external_account, insert_journal
from alluse.store.schema import account_groups, accounts, brokerage_accounts
from alluse.store.uow import Request, Tx, collector_paused, write

GROUP_NAME_RE = re.compile(r"^[A-Z][A-Z0-9]{0,19}$")


class SleeveOpened(TypedDict):
    account_id: int
    name: str
    cash_cents: Cents
    brokerage_account: str


class GroupOpened(TypedDict):
    """An opened group, as its audit entry stores it."""

    group_id: int
    name: str
    amount_cents: Cents
    accounts: dict[str, SleeveOpened]
    transfer_id: NotRequired[int]
    replayed: NotRequired[bool]


class GroupOpeningPayload(TypedDict):
    """A group opening as the audit record stores it."""

    amount_cents: Cents
    brokerage: list[str | None]  # Gen, Rev, Com
    allocation: list[int] | None  # Gen, Rev, Com basis points
    name: str | None


@dataclass(frozen=True, slots=True)
class GroupOpening:
    amount_cents: int
    brokerage: tuple[BrokerageRef | None, BrokerageRef | None, BrokerageRef | None] = (None, None, None)
    allocation: Allocation | None = None
    name: str | None = None
    # Set by the lifecycle's forks: the group is funded from a sleeve instead of the bank.
    kind: GroupKind = GroupKind.PRIMARY
    parent_group_id: int | None = None
    forked_from_account_id: int | None = None

    def payload(self) -> GroupOpeningPayload:
        return {
            "amount_cents": Cents(self.amount_cents),
            "brokerage": [str(b) if b else None for b in self.brokerage],
            "allocation": None
            if self.allocation is None
            else [self.allocation.gen_bps, self.allocation.rev_bps, self.allocation.com_bps],
            "name": self.name,
        }


def group_opening(
    amount_cents: int,
    brokerage: list[str] | None = None,
    allocation: Allocation | None = None,
    name: str | None = None,
) -> GroupOpening:
    """Validate a user's request to open a group (brokerage names in Gen, Rev, Com order)."""
    refs: list[BrokerageRef | None] = [None, None, None]
    if brokerage:
        if len(brokerage) != 3:
            raise InvalidInput("name three brokerage accounts (Gen, Rev, Com) or none for paper accounts")
        refs = [parse_brokerage_ref(b) for b in brokerage]
    if name is not None:
        name = name.strip().upper()
        if not GROUP_NAME_RE.match(name):
            raise InvalidInput("group name must be a letter followed by up to 19 letters or digits")
    if allocation is not None:
        check_allocation_for(GroupKind.PRIMARY, allocation)
    # A group over real brokerage accounts may start empty: their statements' deposits fund it.
    real = all(r is not None and r.broker != "PAPER" for r in refs)
    if amount_cents < 0 or (amount_cents == 0 and not real):
        raise InvalidInput(
            "a group must be opened with a positive amount (or 0 over three named real brokerage accounts)"
        )
    return GroupOpening(amount_cents, (refs[0], refs[1], refs[2]), allocation, name)


def open_groups(
    engine: Engine, actor: str, portfolio: str | int | None, openings: list[tuple[str, GroupOpening]]
) -> list[GroupOpened]:
    """Open PRIMARY groups, all in one unit of work (all or none). One audit entry per group."""
    by_key = dict(openings)

    def apply(tx: Tx, fresh: list[Request]) -> list[GroupOpened]:
        results = _open(tx, [by_key[r.key] for r in fresh])
        tx.result_texts = opened_texts(results)
        return results

    with collector_paused(len(openings)):
        requests = [Request(key, dict(o.payload())) for key, o in openings]
        return cast(list[GroupOpened], write(engine, portfolio, actor, "group.open", requests, apply))


# A GroupOpened as canonical JSON (keys sorted), for its audit entry (`opened_texts`).
_OPENED = '{"accounts":{%s},"amount_cents":%d,"group_id":%d,"name":%s%s}'
_SLEEVE_OPENED = '%s:{"account_id":%d,"brokerage_account":%s,"cash_cents":%d,"name":%s}'


def opened_texts(results: list[GroupOpened]) -> list[str]:
    """`canonical_json` of each result, spelled with the shape known: about half the generic
    encoder's work on a group's result (tests/unit/test_group_texts.py compares the two)."""
    return [
        _OPENED
        % (
            ",".join(
                [
                    _SLEEVE_OPENED
                    % (
                        json_string(kind),
                        s["account_id"],
                        json_string(s["brokerage_account"]),
                        s["cash_cents"],
                        json_string(s["name"]),
                    )
                    for kind, s in sorted(r["accounts"].items())
                ]
            ),
            r["amount_cents"],
            r["group_id"],
            json_string(r["name"]),
            f',"transfer_id":{r["transfer_id"]:d}' if "transfer_id" in r else "",
        )
        for r in results
    ]


def open_fork_groups(tx: Tx, openings: list[GroupOpening], seqs: list[int]) -> list[GroupOpened]:
    """Inside a lifecycle unit of work: open the groups forks create, each funded from its forking
    sleeve with one FORK transfer; `seqs` are the audit entries of the forks' requests."""
    return _open(tx, openings, seqs) if openings else []


def open_group(engine: Engine, actor: str, portfolio: str | int | None, key: str, opening: GroupOpening) -> GroupOpened:
    return open_groups(engine, actor, portfolio, [(key, opening)])[0]


def _open(tx: Tx, openings: list[GroupOpening], seqs: list[int] | None = None) -> list[GroupOpened]:
    # Load ...
    conn, pid = tx.conn, tx.portfolio_id
    defaults = store.portfolio_defaults(conn, pid, BANK, [o.name for o in openings])
    template, default_alloc = defaults.template, defaults.allocation
    buffers = _sleeve_buffers(template)
    bank, first_ids = defaults.bank_id, defaults.first_ids
    if bank is None:
        # Its first use creates the bank's account: ids read with the defaults are then stale.
        bank, first_ids = external_account(conn, pid, BANK, tx.now), None
    names = _group_names(conn, pid, openings, defaults.primary_groups, defaults.name_taken)
    # Each sleeve gets a brokerage account (named, or a new paper one): its id block too.
    if first_ids is None:
        n_sleeves = sleeves_needed(openings, default_alloc)
        first_ids = allocate_blocks(
            conn, (account_groups, len(openings)), (accounts, n_sleeves), (brokerage_accounts, n_sleeves)
        )
    first_group, first_account, first_brokerage = first_ids
    # ... decide ...
    plans = plan_group_openings(openings, names, first_group, first_account, default_alloc, buffers, bank)
    # ... and apply.
    store.insert_groups(conn, pid, template, plans, tx.now)
    wanted = [(s.account_id, o.brokerage[s.slot]) for o, g in zip(openings, plans, strict=True) for s in g.sleeves]
    refs = iter(map_brokerage(tx, wanted, first_brokerage))
    # Cents marks the money fields for the type checker only (it returns its argument): the results
    # are typed once, as a whole, rather than through a Python call per amount.
    results = cast(
        list[GroupOpened],
        [
            {
                "group_id": g.group_id,
                "name": g.name,
                "amount_cents": g.amount_cents,
                "accounts": {
                    store.KIND_TEXT[s.kind]: {
                        "account_id": s.account_id,
                        "name": s.name,
                        "cash_cents": s.cash_cents,
                        "brokerage_account": next(refs),
                    }
                    for s in g.sleeves
                },
            }
            for g in plans
        ],
    )
    entries = [
        JournalEntry(g.transfer_kind, list(g.legs), seqs[i] if seqs else tx.seq(i), memo=f"open group {g.name}")
        for i, g in enumerate(plans)
        if g.legs
    ]
    transfer_ids = insert_journal(conn, pid, tx.now, entries) if entries else []
    for source, paid in paid_from(plans).items():
        # The paying sleeve keeps its base capital (only the receiving legs of a FORK are capital).
        store.debit_cash(conn, pid, source, paid)
    for r, tid in zip([r for r in results if r["amount_cents"]], transfer_ids, strict=True):
        r["transfer_id"] = tid
    return results


@lru_cache(maxsize=16)
def _sleeve_buffers(template: str) -> Mapping[AccountKind, int]:
    """Each sleeve kind's buffer under a template (the templates are constants)."""
    return MappingProxyType({k: template_rules(template, k).buffer_bps for k in SLEEVES})


def _group_names(
    conn: sa.Connection,
    portfolio_id: int,
    openings: list[GroupOpening],
    primary_groups: int | None,
    name_taken: bool | None,
) -> list[str]:
    """Named groups keep their names; the rest are numbered A1, A2 ... after the `primary_groups`
    existing PRIMARY groups (given unless every opening is named), skipping any number a user
    already took as a name. `name_taken`: for one opening, whether its name (unnamed: the next
    number's) is taken, read with the portfolio's defaults."""
    wanted = [o.name for o in openings if o.name]
    if name_taken is False:
        return wanted or [f"A{cast(int, primary_groups) + 1}"]
    if name_taken and wanted:
        raise Conflict(f"group name {wanted[0]} is already in use")
    clash = store.group_names_taken(conn, portfolio_id, wanted) | {n for n in wanted if wanted.count(n) > 1}
    if clash:
        raise Conflict(f"group name {sorted(clash)[0]} is already in use")
    if len(wanted) == len(openings):
        return wanted
    assert primary_groups is not None
    # The next number's name is taken when the defaults say so: start after it.
    n = primary_groups + 1 if name_taken else primary_groups
    used = set(wanted)
    auto: list[str] = []
    while len(auto) < len(openings) - len(wanted):
        candidates: list[str] = []
        while len(candidates) < len(openings) - len(wanted) - len(auto):
            n += 1
            if f"A{n}" not in used:
                candidates.append(f"A{n}")
        used.update(candidates)
        clash = store.group_names_taken(conn, portfolio_id, candidates)
        auto.extend(c for c in candidates if c not in clash)
    it = iter(auto)
    return [o.name or next(it) for o in openings]
