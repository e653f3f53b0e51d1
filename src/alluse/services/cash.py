"""Moving cash: deposits (split by the group's allocation), withdrawals, internal transfers, reversals.

Every cash-out intent passes the buffer rule against the state left by the requests before it in the
same unit of work, so a batch is checked exactly as if its requests had come one by one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, NotRequired, TypedDict, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.domain.accounts import (
    AccountKind,
    AccountStatus,
    Allocation,
    check_cash_may_leave,
    check_cash_out,
)
from alluse.domain.audit import json_string, json_strings
from alluse.domain.errors import Conflict, InvalidInput, NotFound
from alluse.domain.ledger import BANK, REVERSIBLE, Leg, TransferKind, new_leg
from alluse.domain.money import Cents
from alluse.services.alerts import check_buffer
from alluse.store.prepared import deferred
from alluse.store.repo import (
    AccountRow,
    JournalEntry,
    apply_cash,
    load_accounts,
    load_with_external,
    new_journal_entry,
    resolve_account,
    resolve_group,
    transfer_by_number,
    write_journal,
)
from alluse.store.schema import account_groups, accounts, postings, transfers
from alluse.store.uow import Request, Tx, collector_paused, write


class CashMovePayload(TypedDict):
    """A cash move as the audit record stores it."""

    kind: str
    amount_cents: Cents
    source: str | int | None
    to: str | int | None
    to_group: bool | None
    memo: str


class LegPosted(TypedDict):
    account: str
    amount_cents: Cents


class CashMoved(TypedDict):
    """One cash move, as its audit entry stores it."""

    kind: str
    amount_cents: Cents
    legs: list[LegPosted]
    transfer_id: int
    transfer_number: int
    replayed: NotRequired[bool]


# A CashMoved as canonical JSON (domain.audit.canonical_json: keys in order, texts as its encoder
# spells them), for the results of a unit of work (`moved_texts`).
_MOVED = '{"amount_cents":%d,"kind":%s,"legs":[%s],"transfer_id":%d,"transfer_number":%d}'
_LEG = '{"account":%s,"amount_cents":%d}'


def moved_texts(results: list[CashMoved]) -> list[str]:
    """`canonical_json` of each result, spelled with the shape known: a tenth of the generic encoder's
    work on a result in a batch, half of it on a single one (tests/unit/test_cash_texts.py compares
    the two)."""
    text = json_strings() if len(results) > 1 else json_string

    return [
        _MOVED
        % (
            r["amount_cents"],
            text(r["kind"]),
            ",".join([_LEG % (text(leg["account"]), leg["amount_cents"]) for leg in r["legs"]]),
            r["transfer_id"],
            r["transfer_number"],
        )
        for r in results
    ]


# A CashMovePayload as canonical JSON, for the input digests of a batch (`payload_texts`).
_PAYLOAD = '{"amount_cents":%d,"kind":%s,"memo":%s,"source":%s,"to":%s,"to_group":%s}'
_FLAG = {None: "null", True: "true", False: "false"}
# The types of a reference and of `to_group` whose spelling `payload_texts` knows.
_REF_TYPES = frozenset({int, str, type(None)})
_FLAG_TYPES = frozenset({bool, type(None)})


def payload_texts(moves: list[CashMove]) -> list[str | None]:
    """`canonical_json` of each move's payload, spelled with the shape known (as `moved_texts`): half
    the generic encoder's work on a payload (tests/unit/test_cash_texts.py compares the two). None for
    a move holding a value of a type the payload does not declare (the generic encoder spells it)."""
    text = json_strings() if len(moves) > 1 else json_string

    out: list[str | None] = []
    for m in moves:
        amount, source, to, to_group, memo = m.amount_cents, m.source, m.to, m.to_group, m.memo
        if (
            type(amount) is not int
            or type(memo) is not str
            or type(source) not in _REF_TYPES
            or type(to) not in _REF_TYPES
            or type(to_group) not in _FLAG_TYPES
        ):
            out.append(None)
            continue
        out.append(
            _PAYLOAD
            % (
                amount,
                text(str(m.kind)),
                text(memo),
                "null" if source is None else text(source) if type(source) is str else source,
                "null" if to is None else text(to) if type(to) is str else to,
                _FLAG[to_group],
            )
        )
    return out


class Reversed(TypedDict):
    """A reversal, as its audit entry stores it."""

    transfer_id: int
    transfer_number: int
    reverses_transfer_id: int
    reverses_transfer_number: int
    replayed: NotRequired[bool]


@dataclass(frozen=True, slots=True)
class CashMove:
    """One intent. `kind` DEPOSIT takes `to` (an account, or a group when `to_group`); WITHDRAWAL takes
    `source`; TRANSFER takes both. References are account ids or names."""

    kind: TransferKind
    amount_cents: int
    source: str | int | None = None
    to: str | int | None = None
    to_group: bool | None = False  # None: a group if no account has that name
    memo: str = ""

    def __post_init__(self) -> None:
        if self.amount_cents <= 0:
            raise InvalidInput("amount must be positive")
        if len(self.memo) > 200:
            raise InvalidInput("memo must be at most 200 characters")

    def payload(self) -> CashMovePayload:
        return {
            "kind": str(self.kind),
            "amount_cents": Cents(self.amount_cents),
            "source": self.source,
            "to": self.to,
            "to_group": self.to_group,
            "memo": self.memo,
        }


def deposit(target: str | int, amount_cents: int, *, group: bool | None = None, memo: str = "") -> CashMove:
    return CashMove(TransferKind.DEPOSIT, amount_cents, to=target, to_group=group, memo=memo)


def withdrawal(source: str | int, amount_cents: int, memo: str = "") -> CashMove:
    return CashMove(TransferKind.WITHDRAWAL, amount_cents, source=source, memo=memo)


def transfer(source: str | int, to: str | int, amount_cents: int, memo: str = "") -> CashMove:
    return CashMove(TransferKind.TRANSFER, amount_cents, source=source, to=to, memo=memo)


def move_cash(
    engine: Engine,
    actor: str,
    portfolio: str | int | None,
    moves: list[tuple[str, CashMove]],
    override_reason: str | None = None,
) -> list[CashMoved]:
    """Apply cash moves in one unit of work, all or none. `override_reason` (admin) lets cash-out
    intents eat into the buffer; it is recorded in the audit log."""
    if override_reason is not None and not override_reason.strip():
        raise InvalidInput("an override needs a written reason")
    by_key = dict(moves)

    def apply(tx: Tx, fresh: list[Request]) -> list[CashMoved]:
        return _apply(tx, [by_key[r.key] for r in fresh], override_reason is not None)

    # `lower` of the kind itself: a StrEnum's `.value` is a Python-level property.
    action = "cash.move" if len({m.kind for _, m in moves}) != 1 else f"cash.{moves[0][1].kind.lower()}"
    with collector_paused(len(moves)):
        # Typed by annotation, not `cast`: a call of Python's and two generic aliases made per unit of work.
        payloads: list[Any] = [m.payload() for _k, m in moves]
        texts = payload_texts([m for _k, m in moves])
        requests = list(map(Request, [k for k, _m in moves], payloads, texts))
        moved: list[Any] = write(engine, portfolio, actor, action, requests, apply, override_reason)
        return moved


# The enum members a move compares with, as module constants: read off its class, a member is looked
# up through the enum's metaclass (a thousand instructions), and a single move compares nine.
_DEPOSIT, _WITHDRAWAL = TransferKind.DEPOSIT, TransferKind.WITHDRAWAL
_EXT, _ACTIVE = AccountKind.EXT, AccountStatus.ACTIVE


def _apply(tx: Tx, moves: list[CashMove], override: bool) -> list[CashMoved]:
    conn, pid = tx.conn, tx.portfolio_id
    # Keyed by the references as given: the constructors set the ones each kind needs.
    ids: dict[str | int | None, int] = {}
    groups: dict[str | int | None, tuple[Allocation, dict[AccountKind, int]]] = {}
    moves = [_with_target_kind(conn, pid, m, ids) for m in moves]
    for m in moves:
        for ref in (m.source, None if m.to_group else m.to):
            if ref is not None and ref not in ids:
                ids[ref] = int(ref) if isinstance(ref, int) else resolve_account(conn, pid, ref)
        if m.to_group and m.to not in groups:
            groups[m.to] = _group_sleeves(conn, pid, m.to)  # type: ignore[arg-type]
    wanted = {*ids.values()}
    for _alloc, sleeves in groups.values():
        wanted.update(sleeves.values())
    bank, state = load_with_external(conn, pid, sorted(wanted), BANK, tx.now)
    touched: set[int] = set()

    entries: list[JournalEntry] = []
    written = 0  # rows of the journal
    for i, m in enumerate(moves):
        if m.kind is _DEPOSIT:
            if m.to_group:
                alloc, sleeves = groups[m.to]
                split = {sleeves[k]: v for k, v in alloc.split(m.amount_cents).items() if v and k in sleeves}
            else:
                split = {ids[m.to]: m.amount_cents}
            for aid in split:
                _require_active(state[aid], "deposit")
            legs = [new_leg((bank, -m.amount_cents)), *map(new_leg, split.items())]
        else:
            src = state[ids[m.source]]
            action = "withdrawal" if m.kind is _WITHDRAWAL else "transfer"
            _require_active(src, action)
            check_cash_may_leave(src.kind, src.label, action)
            check_cash_out(src.snapshot, m.amount_cents, action, override=override)
            if m.kind is _WITHDRAWAL:
                legs = [new_leg((src.id, -m.amount_cents)), new_leg((bank, m.amount_cents))]
            else:
                dst = state[ids[m.to]]
                if dst.id == src.id:
                    raise InvalidInput("a transfer needs two different accounts")
                _require_active(dst, "transfer")
                legs = [new_leg((src.id, -m.amount_cents)), new_leg((dst.id, m.amount_cents))]
        for aid, amount in legs:
            # Base capital follows money put in or taken out of a sleeve (ALLUSE_RULES §5).
            state[aid].add_cash(amount, amount if aid != bank else 0)
            touched.add(aid)
        entries.append(new_journal_entry((m.kind, legs, tx.seq(i), m.memo, None)))
        written += len(legs) + 1
    with deferred(conn, written + len(touched)):  # one wait for the writes
        results: list[CashMoved] = [
            {
                "kind": str(m.kind),  # the plain text: a StrEnum's `.value` is a Python-level property
                "amount_cents": Cents(m.amount_cents),
                "legs": [{"account": state[aid].name, "amount_cents": Cents(amount)} for aid, amount in e.legs],
                "transfer_id": t.id,
                "transfer_number": t.number,
            }
            for m, e, t in zip(moves, entries, write_journal(conn, pid, tx.now, entries), strict=True)
        ]
        # Spelled before the cash is written back: a bulk journal may still be going in (a COPY sent
        # from a thread of its own, store/prepared.behind), and the write-back waits for it.
        if all(type(m.amount_cents) is int for m in moves):  # else the generic encoder spells an amount
            tx.result_texts = moved_texts(results)
        apply_cash(conn, [state[a] for a in touched])
    _recheck_buffers(tx, [state[a] for a in sorted(touched)], "a cash move")
    return results


def _recheck_buffers(tx: Tx, changed: list[AccountRow], cause: str) -> None:
    """A deposit ends a breach, an overridden withdrawal may start one: the alerts follow the cash."""
    for acc in changed:
        if acc.kind is not _EXT:
            check_buffer(tx, acc, cause)


def _with_target_kind(conn: sa.Connection, pid: int, m: CashMove, ids: dict[str | int | None, int]) -> CashMove:
    """A deposit target given without saying whether it is a group or an account: an account name wins
    (and its id, found here, goes into `ids`, so it is not looked up again)."""
    if m.to_group is not None:
        return m
    try:
        ids[m.to] = resolve_account(conn, pid, m.to)  # type: ignore[arg-type]
        return replace(m, to_group=False)
    except NotFound:
        return replace(m, to_group=True)


def _require_active(acc: AccountRow, action: str) -> None:
    if acc.kind is _EXT:
        raise InvalidInput(f"{acc.name} is an external counter-account, not a sleeve")
    if acc.status is not _ACTIVE:
        raise InvalidInput(f"{action} refused: {acc.label} is {acc.status.value}, not ACTIVE")


def _group_sleeves(conn: sa.Connection, pid: int, ref: str | int) -> tuple[Allocation, dict[AccountKind, int]]:
    gid = resolve_group(conn, pid, ref)
    g = conn.execute(
        sa.select(
            account_groups.c.alloc_gen_bps,
            account_groups.c.alloc_rev_bps,
            account_groups.c.alloc_com_bps,
            account_groups.c.status,
        ).where(account_groups.c.portfolio_id == pid, account_groups.c.id == gid)
    ).one()
    if g.status != "ACTIVE":
        raise InvalidInput(f"deposit refused: group {ref} is {g.status}")
    a = accounts.c
    rows = conn.execute(sa.select(a.id, a.kind).where(a.portfolio_id == pid, a.group_id == gid)).all()
    return Allocation(g.alloc_gen_bps, g.alloc_rev_bps, g.alloc_com_bps), {AccountKind(k): i for i, k in rows}


def reverse(
    engine: Engine,
    actor: str,
    portfolio: str | int | None,
    transfer_id: int | None,
    reason: str,
    key: str,
    override_reason: str | None = None,
    *,
    number: int | None = None,
) -> Reversed:
    """Correct a deposit, withdrawal or transfer with a reversing entry (nothing is edited in place).
    The transfer is named by its id or by its number in the portfolio (`number`, what `alluse journal`
    shows). Money leaving an account through the reversal passes the buffer rule like any other intent."""
    if not reason.strip():
        raise InvalidInput("a reversal needs a reason")
    if (transfer_id is None) == (number is None):
        raise InvalidInput("name the transfer to reverse by its id or by its number, not both")

    def apply(tx: Tx, _reqs: list[Request]) -> list[Reversed]:
        conn, pid = tx.conn, tx.portfolio_id
        tid_old = transfer_by_number(conn, pid, number) if number is not None else transfer_id
        t = conn.execute(
            sa.select(transfers.c.id, transfers.c.kind, transfers.c.number).where(
                transfers.c.id == tid_old, transfers.c.portfolio_id == pid
            )
        ).first()
        if t is None:
            raise NotFound(f"no transfer {transfer_id} in this portfolio")
        if TransferKind(t.kind) not in REVERSIBLE:
            raise InvalidInput(
                f"transfer #{t.number} is a {t.kind}; only deposits, withdrawals and transfers can be reversed"
            )
        t_ = transfers.c
        if conn.execute(sa.select(t_.id).where(t_.portfolio_id == pid, t_.reverses_transfer_id == tid_old)).first():
            raise Conflict(f"transfer #{t.number} has already been reversed")
        legs = [
            Leg(a, -amt)
            for a, amt in conn.execute(
                sa.select(postings.c.account_id, postings.c.amount_cents).where(
                    postings.c.portfolio_id == pid, postings.c.transfer_id == tid_old
                )
            )
        ]
        state = load_accounts(conn, pid, [leg.account_id for leg in legs])
        for leg in legs:
            acc = state[leg.account_id]
            if leg.amount_cents < 0 and acc.kind is not AccountKind.EXT:
                check_cash_out(acc.snapshot, -leg.amount_cents, "reversal", override=override_reason is not None)
            acc.add_cash(leg.amount_cents, 0 if acc.kind is AccountKind.EXT else leg.amount_cents)
        ((tid, tid_number),) = write_journal(
            conn,
            pid,
            tx.now,
            [
                JournalEntry(
                    TransferKind.REVERSAL,
                    legs,
                    tx.seq(0),
                    memo=reason[:200],
                    reverses_transfer_id=tid_old,
                )
            ],
        )
        apply_cash(conn, list(state.values()))
        _recheck_buffers(tx, list(state.values()), "a reversal")
        return [
            {
                "transfer_id": tid,
                "transfer_number": tid_number,
                "reverses_transfer_id": t.id,
                "reverses_transfer_number": t.number,
            }
        ]

    payload: dict[str, int | str | None] = {"transfer_id": transfer_id, "reason": reason}
    if number is not None:
        payload = {"transfer_number": number, "reason": reason}
    reversed_ = write(engine, portfolio, actor, "cash.reverse", [Request(key, payload)], apply, override_reason)[0]
    return cast(Reversed, reversed_)
