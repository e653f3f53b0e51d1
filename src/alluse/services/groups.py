"""Opening PRIMARY account groups: three sleeves, their buffers, brokerage mapping, initial funding."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.brokers.refs import BrokerageRef, parse_brokerage_ref
from alluse.domain.accounts import SLEEVES, Allocation, GroupKind, check_allocation_for
from alluse.domain.errors import Conflict, InvalidInput
from alluse.domain.ledger import BANK, Leg, TransferKind
from alluse.domain.money import format_usd
from alluse.domain.rules import template_rules
from alluse.services.brokers import map_brokerage
from alluse.store import prepared
from alluse.store.repo import JournalEntry, allocate_ids, external_account, insert_journal
from alluse.store.schema import account_config, account_groups, accounts, portfolios
from alluse.store.uow import IN_CHUNK, Request, Tx, write

GROUP_NAME_RE = re.compile(r"^[A-Z][A-Z0-9]{0,19}$")

_GROUP_INSERT = prepared.insert(account_groups)
_ACCOUNT_INSERT = prepared.insert(accounts)
_CONFIG_INSERT = prepared.insert(account_config)
_PORTFOLIO_DEFAULTS = prepared.Prepared(
    sa.select(
        portfolios.c.template, portfolios.c.alloc_gen_bps, portfolios.c.alloc_rev_bps, portfolios.c.alloc_com_bps
    ).where(portfolios.c.id == sa.bindparam("pid"))
)
_NAME_TAKEN = prepared.Prepared(
    sa.select(account_groups.c.name).where(
        account_groups.c.portfolio_id == sa.bindparam("pid"), account_groups.c.name == sa.bindparam("name")
    )
)
_PRIMARY_COUNT = prepared.Prepared(
    sa.select(sa.func.count()).where(
        account_groups.c.portfolio_id == sa.bindparam("pid"), account_groups.c.kind == "PRIMARY"
    )
)
_PAY_OUT = prepared.Prepared(
    accounts.update()
    .where(accounts.c.id == sa.bindparam("aid"))
    .values(cash_cents=accounts.c.cash_cents - sa.bindparam("paid", type_=sa.BigInteger))
)


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

    def payload(self) -> dict[str, Any]:
        return {
            "amount_cents": self.amount_cents,
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
) -> list[dict[str, Any]]:
    """Open PRIMARY groups, all in one unit of work (all or none). One audit entry per group."""
    requests = [Request(key, o.payload()) for key, o in openings]
    by_key = dict(openings)

    def apply(tx: Tx, fresh: list[Request]) -> list[dict[str, Any]]:
        return _open(tx, [by_key[r.key] for r in fresh])

    return write(engine, portfolio, actor, "group.open", requests, apply)


def open_fork_groups(tx: Tx, openings: list[GroupOpening], seqs: list[int]) -> list[dict[str, Any]]:
    """Inside a lifecycle unit of work: open the groups forks create, each funded from its forking
    sleeve with one FORK transfer; `seqs` are the audit entries of the forks' requests."""
    return _open(tx, openings, seqs) if openings else []


def open_group(
    engine: Engine, actor: str, portfolio: str | int | None, key: str, opening: GroupOpening
) -> dict[str, Any]:
    return open_groups(engine, actor, portfolio, [(key, opening)])[0]


def _open(tx: Tx, openings: list[GroupOpening], seqs: list[int] | None = None) -> list[dict[str, Any]]:
    conn = tx.conn
    template, *alloc_bps = _PORTFOLIO_DEFAULTS.rows(conn, pid=tx.portfolio_id)[0]
    default_alloc = Allocation(*alloc_bps)
    rules = {k: template_rules(template, k) for k in SLEEVES}
    bank = external_account(conn, tx.portfolio_id, BANK, tx.now)

    names = _group_names(conn, tx.portfolio_id, openings)
    first_group = allocate_ids(conn, account_groups, len(openings))
    kinds = [(o.allocation or default_alloc).kinds() for o in openings]
    next_account = allocate_ids(conn, accounts, sum(len(k) for k in kinds))
    paid_from: dict[int, int] = {}
    group_rows, account_rows, config_rows, entries, wanted = [], [], [], [], []
    results = []
    for i, (o, name) in enumerate(zip(openings, names, strict=True)):
        alloc = o.allocation or default_alloc
        gid = first_group + i
        group_rows.append(
            {
                "id": gid,
                "portfolio_id": tx.portfolio_id,
                "name": name,
                "kind": o.kind.value,
                "status": "ACTIVE",
                "parent_group_id": o.parent_group_id,
                "forked_from_account_id": o.forked_from_account_id,
                "alloc_gen_bps": alloc.gen_bps,
                "alloc_rev_bps": alloc.rev_bps,
                "alloc_com_bps": alloc.com_bps,
                "opened_at": tx.now,
            }
        )
        split = alloc.split(o.amount_cents)
        if o.amount_cents and min(split[k] for k in kinds[i]) <= 0:
            raise InvalidInput(f"{format_usd(o.amount_cents)} is too small to fund every sleeve of a group")
        source = o.forked_from_account_id or bank
        paid_from[source] = paid_from.get(source, 0) + o.amount_cents
        legs = [Leg(source, -o.amount_cents)]
        sleeves = {}
        for kind in kinds[i]:
            j = SLEEVES.index(kind)
            aid = next_account
            next_account += 1
            account_rows.append(
                {
                    "id": aid,
                    "portfolio_id": tx.portfolio_id,
                    "group_id": gid,
                    "kind": kind.value,
                    "name": f"{name}-{kind.value}",
                    "status": "ACTIVE",
                    "forked_from_account_id": o.forked_from_account_id,
                    "buffer_bps": rules[kind].buffer_bps,
                    "cash_cents": split[kind],
                    "positions_value_cents": 0,
                    "collateral_cents": 0,
                    "earmarked_cents": 0,
                    "base_capital_cents": split[kind],
                    "opened_at": tx.now,
                }
            )
            config_rows.append(
                {
                    "account_id": aid,
                    "portfolio_id": tx.portfolio_id,
                    "template": template,
                    "overrides": "{}",
                }
            )
            legs.append(Leg(aid, split[kind]))
            wanted.append((aid, o.brokerage[j]))
            sleeves[kind.value] = {
                "account_id": aid,
                "name": f"{name}-{kind.value}",
                "cash_cents": split[kind],
            }
        transfer_kind = TransferKind.GROUP_OPEN if source == bank else TransferKind.FORK
        seq = seqs[i] if seqs else tx.seq(i)
        if o.amount_cents:
            entries.append(JournalEntry(transfer_kind, legs, seq, memo=f"open group {name}"))
        results.append({"group_id": gid, "name": name, "amount_cents": o.amount_cents, "accounts": sleeves})
    _GROUP_INSERT.many(conn, group_rows)
    _ACCOUNT_INSERT.many(conn, account_rows)
    _CONFIG_INSERT.many(conn, config_rows)
    refs = iter(map_brokerage(tx, wanted))
    for i, r in enumerate(results):
        for kind in kinds[i]:
            r["accounts"][kind.value]["brokerage_account"] = next(refs)
    transfer_ids = insert_journal(conn, tx.portfolio_id, tx.now, entries) if entries else []
    # The paying sleeve keeps its base capital (only the receiving legs of a FORK are capital).
    _PAY_OUT.many(conn, [{"aid": source, "paid": paid} for source, paid in paid_from.items()])
    for r, tid in zip([r for r in results if r["amount_cents"]], transfer_ids, strict=True):
        r["transfer_id"] = tid
    return results


def _group_names(conn: sa.Connection, portfolio_id: int, openings: list[GroupOpening]) -> list[str]:
    """Named groups keep their names; the rest are numbered A1, A2 ... after the existing PRIMARY
    groups, skipping any number a user already took as a name."""
    g = account_groups.c

    def taken(names: list[str]) -> set[str]:
        if len(names) == 1:  # one group per unit of work: the prepared statement
            return {r[0] for r in _NAME_TAKEN.rows(conn, pid=portfolio_id, name=names[0])}
        found: set[str] = set()
        for i in range(0, len(names), IN_CHUNK):
            q = sa.select(g.name).where(g.portfolio_id == portfolio_id, g.name.in_(names[i : i + IN_CHUNK]))
            found.update(conn.execute(q).scalars())
        return found

    wanted = [o.name for o in openings if o.name]
    clash = taken(wanted) | {n for n in wanted if wanted.count(n) > 1}
    if clash:
        raise Conflict(f"group name {sorted(clash)[0]} is already in use")
    if len(wanted) == len(openings):
        return wanted
    n = _PRIMARY_COUNT.rows(conn, pid=portfolio_id)[0][0]
    used = set(wanted)
    auto: list[str] = []
    while len(auto) < len(openings) - len(wanted):
        candidates = []
        while len(candidates) < len(openings) - len(wanted) - len(auto):
            n += 1
            if f"A{n}" not in used:
                candidates.append(f"A{n}")
        used.update(candidates)
        clash = taken(candidates)
        auto.extend(c for c in candidates if c not in clash)
    it = iter(auto)
    return [o.name or next(it) for o in openings]
