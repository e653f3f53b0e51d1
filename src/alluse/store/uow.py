"""The unit of work: one database transaction per use case, with idempotency and audit built in.

Every write goes through `write`. It locks the portfolio's audit head (which serialises writers of
one portfolio, so the buffer rule is always checked against committed state), replays requests whose
idempotency key it has already seen, lets the use case do its work while noting every row it writes
(store/rowlog.py), appends one audit entry per request — each MAC'd with the audit key and chained
to the one before, the last one carrying the manifest of the rows written — and commits, or, on any
error, rolls everything back.
"""

from __future__ import annotations

import gc
import json
import operator
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine

from alluse.domain.audit import (
    GENESIS,
    canonical_json,
    digest,
    digests,
    entry_signer,
    text_digest,
    text_digests,
    timestamp_text,
)
from alluse.domain.errors import Conflict, InvalidInput, NotFound
from alluse.domain.parsing import validate_key as validate_key
from alluse.security.audit_key import Signer, current_signer
from alluse.store import outbox, prepared, rowlog
from alluse.store.citus import on_citus
from alluse.store.db import IN_CHUNK, is_sqlite, writer_lock
from alluse.store.ids import IdPool, pool_head
from alluse.store.prepared import Prepared, insert, together
from alluse.store.repo import JOURNAL_HEAD_COLUMNS, JOURNAL_HEADS
from alluse.store.schema import audit_keys, audit_log, events, portfolios, system_audit
from alluse.store.scope import PortfolioRef, is_id, resolve_portfolio

TRANSIENT_RETRIES = 20
# From this many requests a unit of work is bulk: see `_collector_paused`.
BULK_REQUESTS = 256


def _head(dialect: str, by_name: bool = False) -> sa.Select[Any]:
    return (
        sa.select(
            portfolios.c.audit_seq,
            portfolios.c.audit_head,
            portfolios.c.event_seq,
            # Ids for the outbox rows this work will write (one per request foreseen; more are drawn
            # if needed) and whether the signing audit key is sealed already (ensure_sealed): all in
            # the same round trip.
            pool_head(events, dialect, sa.bindparam("n", type_=sa.BigInteger)),
            sa.select(audit_keys.c.key_id).where(audit_keys.c.key_id == sa.bindparam("kid")).scalar_subquery(),
            # SQLite: where the journal stands, for the unit of work's journal writes (repo.JOURNAL_HEADS).
            *(JOURNAL_HEAD_COLUMNS if dialect == "sqlite" else ()),
        )
        .where(portfolios.c.name == sa.bindparam("name") if by_name else portfolios.c.id == sa.bindparam("pid"))
        # A row lock on PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers.
        .with_for_update(of=portfolios)
    )


_HEAD = {"postgresql": Prepared(_head("postgresql")), "sqlite": Prepared(_head("sqlite"))}


# SQLite, a unit of work of one request: the head and the audit entry of its idempotency key, if
# there is one, in one statement (PostgreSQL sends the two reads together instead, see write_on).
def _head_seen(by_name: bool) -> Prepared:
    return Prepared(
        _head("sqlite", by_name)
        .add_columns(audit_log.c.input_digest, audit_log.c.result, portfolios.c.id)
        .outerjoin(
            audit_log,
            sa.and_(audit_log.c.portfolio_id == portfolios.c.id, audit_log.c.idempotency_key == sa.bindparam("key")),
        )
    )


_HEAD_SEEN = _head_seen(False)
# The same, of the portfolio of a given name: a unit of work of one request that names its portfolio
# (what the API and the command line do) finds it with this read instead of a lookup of its own.
_HEAD_SEEN_NAMED = _head_seen(True)
# PostgreSQL, sent with the head of a unit of work of one request: plan each of its statements once
# per connection (they are prepared after a few runs) instead of at every run. With the default
# setting the server plans anew every time a statement reads a hash-partitioned table or draws
# `generate_series(1, :n)` ids (its generic plan looks dearer than a custom one): 0.04-0.18 ms a
# statement on this machine, for the head, the key lookup and the journal's ids of every single move.
# Transaction-local. Not for more requests: a generic plan knows nothing of an array parameter's
# values, and the one of the lookup of many idempotency keys (`= ANY(:keys)`) read every entry of the
# portfolio and compared it with every key, 1.5 s instead of 10 ms for 5,000 keys. Not on Citus,
# whose coordinator plans its distributed statements itself.
_GENERIC_PLANS = Prepared(sa.select(sa.func.set_config("plan_cache_mode", "force_generic_plan", True)))


_SEEN_ONE = Prepared(
    sa.select(audit_log.c.idempotency_key, audit_log.c.input_digest, audit_log.c.result).where(
        audit_log.c.portfolio_id == sa.bindparam("pid"), audit_log.c.idempotency_key == sa.bindparam("key")
    )
)
_SEEN_NAMES = [f"k{i}" for i in range(IN_CHUNK)]
_SEEN_MANY = Prepared(
    sa.select(audit_log.c.idempotency_key, audit_log.c.input_digest, audit_log.c.result).where(
        audit_log.c.portfolio_id == sa.bindparam("pid"),
        audit_log.c.idempotency_key.in_([sa.bindparam(n, type_=sa.String) for n in _SEEN_NAMES]),
    )
)
_SEEN_SOME = sa.select(audit_log.c.idempotency_key, audit_log.c.input_digest, audit_log.c.result).where(
    audit_log.c.portfolio_id == sa.bindparam("pid"),
    audit_log.c.idempotency_key.in_(sa.bindparam("keys", expanding=True)),
)
_SEEN_ANY = Prepared(
    sa.select(audit_log.c.idempotency_key, audit_log.c.input_digest, audit_log.c.result).where(
        audit_log.c.portfolio_id == sa.bindparam("pid"),
        audit_log.c.idempotency_key == sa.any_(sa.bindparam("keys", type_=postgresql.ARRAY(sa.String))),
    )
)
# The columns of an audit row as `signed_entries` builds it; audit_log adds the portfolio before them.
AUDIT_COLUMNS = ["seq", "at", "actor", "action", "idempotency_key", "input_digest", "result", "override_reason",
                 "prev_hash", "hash", "key_id", "rows"]  # fmt: skip
_AUDIT_INSERT = insert(audit_log, ["portfolio_id", *AUDIT_COLUMNS])
_HEAD_UPDATE = Prepared(
    portfolios.update()
    .where(portfolios.c.id == sa.bindparam("pid"))
    .values(audit_seq=sa.bindparam("seq"), audit_head=sa.bindparam("head"), event_seq=sa.bindparam("events"))
)


class Request(NamedTuple):
    """One write as the caller asked for it: its idempotency key and the input that is digested.
    `text`: the payload's `canonical_json`, when the caller spelled it with its shape known. (A named
    tuple: a frozen dataclass sets each field through a Python-level `object.__setattr__`.)"""

    key: str
    payload: dict[str, Any]
    text: str | None = None


@dataclass(slots=True)
class Tx:
    """What a use case sees inside its unit of work."""

    conn: sa.Connection
    portfolio_id: int
    now: datetime
    first_seq: int
    # The portfolio's last outbox sequence number when the unit of work began (read with the lock).
    event_seq: int = 0
    event_ids: IdPool | None = None
    # Outbox events beyond the one each request announces by default (docs/events.md).
    events: list[outbox.Pending] = field(default_factory=list)
    # False when the use case announces its requests itself (the lifecycle's own event kinds).
    announce: bool = True
    # The results as canonical JSON, one per request, when the use case spelled them itself (a batch
    # of thousands, where the generic encoder costs more than the rest of a result): each must be
    # exactly `canonical_json` of its result, which its audit entry stores and its event carries.
    result_texts: list[str] | None = None

    def seq(self, index: int) -> int:
        """Audit sequence number of the index-th new request of this unit of work."""
        return self.first_seq + index

    def emit(self, index: int | None, kind: str, data: Mapping[str, Any], account_id: int | None = None,
             action_id: int | None = None) -> None:  # fmt: skip
        """Add an event for the index-th new request (None: the last one), committed with it."""
        seq = None if index is None else self.seq(index)
        self.events.append(outbox.Pending(seq, kind, canonical_json(data), account_id, action_id))


# A use case's results: plain dicts (or TypedDicts) that the audit record stores as JSON.
Apply = Callable[[Tx, list[Request]], Sequence[Mapping[str, Any]]]


def write_connection(engine: Engine) -> sa.Connection:
    return engine.connect().execution_options(alluse_write=True)


def _is_transient(exc: sa.exc.DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if code in ("40001", "40P01"):  # serialization failure, deadlock detected
        return True
    return "database is locked" in str(exc.orig)


def write(
    engine: Engine,
    portfolio: PortfolioRef,
    actor: str,
    action: str,
    requests: Sequence[Request],
    apply: Apply,
    override_reason: str | None = None,
) -> list[dict[str, Any]]:
    """Run `apply` on the requests not seen before and return one result per request, in order.

    A request whose key was already used returns the stored result of the first time (marked
    `"replayed": true`); the same key with a different input is a conflict. Transient database
    conflicts (serialization failures, deadlocks, a busy SQLite file) are retried from the start.
    """
    with collector_paused(len(requests)):
        # Checked and digested before the writer lock is taken: nothing here needs the database.
        fixed = _checked(requests)
        digests = _digests(fixed)

        def decide(_conn: sa.Connection, _pid: int) -> tuple[list[Request], Apply]:
            return fixed, apply

        bulk = len(fixed) >= BULK_REQUESTS
        return _run(engine, portfolio, actor, action, decide, override_reason, False, bulk, digests, len(fixed) == 1)


Decide = Callable[[sa.Connection, int], tuple[list[Request], Apply]]


def write_planned(
    engine: Engine, portfolio: PortfolioRef, actor: str, action: str, decide: Decide
) -> list[dict[str, Any]]:
    """`write` for work whose requests can only be decided from locked, current state (a lifecycle
    sweep plans its actions, then applies them, in one transaction): `decide` runs after the
    portfolio lock is taken and returns the requests and their `apply`. Nothing decided, nothing written."""
    with _collector_paused(True):
        return _run(engine, portfolio, actor, action, decide, None, True, True)


def _run(
    engine: Engine,
    portfolio: PortfolioRef,
    actor: str,
    action: str,
    decide: Decide,
    override_reason: str | None,
    lock_first: bool,
    bulk: bool,
    digests: dict[str, str] | None = None,
    named_ok: bool = False,
) -> list[dict[str, Any]]:
    """`named_ok`: `decide` needs no portfolio id and returns one request, so a portfolio named by its
    name may be found by the head read (`write_on`'s `named`)."""

    def unit(conn: sa.Connection, commit: bool) -> list[dict[str, Any]]:
        named = _named(conn, portfolio) if named_ok else None
        pid = 0 if named is not None else resolve_portfolio(conn, portfolio)
        if bulk:
            fresh_plans(conn)
            fast_compression(conn)
        if lock_first and _HEAD[conn.dialect.name].first(conn, pid=pid, kid="", n=0) is None:
            raise NotFound(f"no portfolio with id {pid}")
        requests, apply = decide(conn, pid)
        if not requests:
            return []
        if digests is None:
            requests = _checked(requests)
        return write_on(
            conn, pid, actor, action, requests, apply, override_reason, digests, commit=commit, single=not bulk,
            named=named,
        )  # fmt: skip

    # Grouped: SQLite's small units of work, when the pool hands every thread the same database
    # (a file; not an in-memory database, one per thread).
    if not bulk and isinstance(engine.pool, sa.pool.QueuePool) and is_sqlite(engine):
        if not getattr(_inside, "unit", False):
            return _group(engine).run(unit)
    return _alone(engine, unit)


def _named(conn: sa.Connection, portfolio: PortfolioRef) -> str | None:
    """The name a portfolio is referred to by, when the head read may find it by that name (SQLite;
    elsewhere the lookup also scopes the transaction)."""
    if conn.dialect.name != "sqlite" or not isinstance(portfolio, str):
        return None
    text = portfolio.strip()
    return text if text and not is_id(text) else None


Unit = Callable[[sa.Connection, bool], list[dict[str, Any]]]
# Whether this thread runs a unit of work now: one started from inside another runs alone, in its
# own transaction, as before (in a group it would wait for itself).
_inside = threading.local()


def _alone(engine: Engine, unit: Unit, kept: Callable[[], _KeptConnection] | None = None) -> list[dict[str, Any]]:
    """One unit of work in its own transaction, retried from the start on a transient conflict.
    `kept`: the group's connection to use (the group's leader holds the writer lock); else one from
    the pool, under the writer lock taken here."""
    outer = getattr(_inside, "unit", False)
    _inside.unit = True
    try:
        for attempt in range(TRANSIENT_RETRIES):
            try:
                if kept is not None:
                    return _by_hand(kept(), unit)
                # The connection is taken from the pool before the writer lock and returned after it:
                # the lock is held from BEGIN to COMMIT only (SQLite has one writer; every other one waits).
                with write_connection(engine) as conn, writer_lock(engine), conn.begin():
                    return unit(conn, True)
            except sa.exc.DBAPIError as exc:
                if not _is_transient(exc) or attempt == TRANSIENT_RETRIES - 1:
                    raise
                time.sleep(0.001 * (attempt + 1))
        raise AssertionError("unreachable")
    finally:
        _inside.unit = outer


class _KeptCursor(sqlite3.Cursor):
    def close(self) -> None:
        """Kept for the next statement, which resets this one's (store/prepared.OwnCursor)."""


class _KeptConnection(prepared.OwnCursor):
    """The group's kept connection (SQLite). Its transactions are the unit of work's, begun and ended
    on the driver (`_by_hand`): SQLAlchemy begins none of its own on it (no autobegin), so a
    statement sent through SQLAlchemy runs in the unit of work's, and a `begin()` sends a BEGIN that
    SQLite refuses inside a transaction. It is in a transaction when the driver is: after a failed
    statement SQLAlchemy rolls back only outside one, and this one is the unit of work's to end."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine, _allow_autobegin=False)
        self.execution_options(alluse_write=True)
        # Out of the pool for good: closing it closes it (back in a pool, a disposed one even, it
        # would stay open, and with it the database's WAL).
        self.detach()
        # The driver's connection and the one cursor of its statements, BEGIN and COMMIT included,
        # found once (a new one is made when this one is lost: `_Group._kept`).
        raw: Any = self.connection.dbapi_connection
        self.raw, self.own = raw, raw.cursor(_KeptCursor)
        self.dbapi_error: type[Exception] = self.dialect.loaded_dbapi.Error

    def in_transaction(self) -> bool:
        if super().in_transaction():
            return True
        return not self.closed and not self.invalidated and bool(self.raw.in_transaction)


def _by_hand(conn: _KeptConnection, work: Unit) -> list[dict[str, Any]]:
    """`work` in one transaction begun and ended on the driver's connection: the group's kept
    connection (SQLite, the writer lock held), on which SQLAlchemy begins and ends none of its own.
    SQLAlchemy's transaction objects cost a single move about 50 k instructions. Whatever fails,
    COMMIT included, rolls the whole transaction back before the error goes on."""
    dbapi_error = conn.dbapi_error
    try:
        conn.own.execute("BEGIN IMMEDIATE")
    except dbapi_error as exc:  # as a statement's error: a busy database is retried (`_alone`)
        raise sa.exc.DBAPIError.instance("BEGIN IMMEDIATE", None, exc, dbapi_error) from exc
    try:
        result = work(conn, True)
        try:
            conn.own.execute("COMMIT")
        except dbapi_error as exc:
            raise sa.exc.DBAPIError.instance("COMMIT", None, exc, dbapi_error) from exc
    except BaseException:
        try:
            conn.raw.rollback()  # nothing to do when the transaction is over already
        except BaseException:
            # Closing the driver's connection drops the transaction; `_kept` makes a new one.
            conn.close()
        raise
    return result


class _Job:
    __slots__ = ("unit", "done", "lead", "result", "error")

    def __init__(self, unit: Unit) -> None:
        self.unit = unit
        self.done: threading.Event | None = None  # only a unit of work that waits for another thread
        self.lead = False
        self.result: list[dict[str, Any]] | None = None
        self.error: BaseException | None = None

    def outcome(self) -> list[dict[str, Any]]:
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


class _Group:
    """Group commit (SQLite): the small units of work that threads of one process start while another
    one runs are run together, in one transaction, by one of those threads (the leader), each in its
    own savepoint. SQLite has one writer, so they would run one after the other anyway; together
    they take the writer lock, BEGIN and COMMIT once. Each keeps everything it has alone: its own
    idempotency check, the buffer rule checked against the state the ones before it left, its own
    audit entry with the manifest of its own rows, its outbox events. One that fails is rolled back
    to its savepoint, so the database is as if it had never run, and its caller gets its error; a
    database error, or a failed COMMIT, rolls the whole transaction back and each unit of work is
    run again alone. Nobody gets an answer before the COMMIT.

    The leader writes through one connection kept for the purpose: the writer lock admits one
    writer of this engine at a time, so it is never wanted twice at once, and a unit of work skips
    the pool's checkout and checkin."""

    def __init__(self, engine: Engine) -> None:
        self._engine = weakref.ref(engine)
        self._mutex = threading.Lock()
        self._queue: list[_Job] = []
        self._leading = False
        self._conn: _KeptConnection | None = None
        self._conn_pid = 0  # the process that opened it
        self._writers = writer_lock(engine)  # the engine's, found once
        # engine.dispose() closes the pool's connections, and so this one: the database file may be
        # replaced or the process forked next (a SQLite connection must not cross a fork).
        sa.event.listen(engine, "engine_disposed", self._let_go)

    def _let_go(self, _engine: Engine) -> None:
        with self._mutex:
            conn, busy = self._conn, self._leading
            if busy:  # a group writes through it now: it is let go at its next use
                self._conn_pid = -1
                return
            self._conn = None
        if conn is not None and self._conn_pid == os.getpid() and not conn.closed:
            conn.close()

    def run(self, unit: Unit) -> list[dict[str, Any]]:
        job = _Job(unit)
        with self._mutex:
            self._queue.append(job)
            lead, self._leading = not self._leading, True
            if not lead:
                job.done = threading.Event()
        if job.done is not None:
            job.done.wait()
            if not job.lead:
                return job.outcome()
        self._lead()
        return job.outcome()

    def _lead(self) -> None:
        """Take the writer lock, run what has queued by then (this thread's own unit of work with
        it), then hand the lead on to the first thread that queued meanwhile, or give it up. What
        queues while the leader waits for the lock (another process holds it) joins its group."""
        engine = self._engine()
        assert engine is not None
        batch: list[_Job] = []
        try:
            _inside.unit = True
            with self._writers:
                with self._mutex:
                    batch, self._queue = self._queue, []
                if len(batch) == 1:
                    self._alone(engine, batch[0])
                else:
                    self._together(engine, batch)
        except BaseException as exc:  # interrupted: every unit of work not done yet gets the error
            if not batch:
                with self._mutex:
                    batch, self._queue = self._queue, []
            for job in batch:
                if job.result is None and job.error is None:
                    job.error = exc
        finally:
            _inside.unit = False
            with self._mutex:
                if self._queue:
                    nxt = self._queue[0]
                    nxt.lead = True
                    assert nxt.done is not None
                    nxt.done.set()
                else:
                    self._leading = False
            for job in batch:
                if job.done is not None:
                    job.done.set()

    def _kept(self) -> _KeptConnection:
        """The kept connection (called with the writer lock held), made anew if an error lost it, the
        engine was disposed of while it was in use, or this is a forked process (whose parent's
        connection is left alone, never closed here: closing it could checkpoint the parent's file)."""
        conn, pid = self._conn, os.getpid()
        if conn is None or conn.closed or conn.invalidated or self._conn_pid != pid:
            if conn is not None and not conn.closed and self._conn_pid in (pid, -1):
                conn.close()
            engine = self._engine()
            assert engine is not None
            conn = self._conn = _KeptConnection(engine)
            self._conn_pid = pid
        return conn

    def _alone(self, engine: Engine, job: _Job) -> None:
        try:
            job.result = _alone(engine, job.unit, self._kept)
        except BaseException as exc:
            job.error = exc

    def _together(self, engine: Engine, batch: list[_Job]) -> None:
        """Called with the writer lock held."""

        def each(conn: sa.Connection, _commit: bool) -> list[dict[str, Any]]:
            assert isinstance(conn, _KeptConnection)
            raw = conn.raw
            # What says the transaction itself may be lost: the whole group is run again, alone.
            fatal = (sa.exc.SQLAlchemyError, conn.dbapi_error)
            for job in batch:
                raw.execute("SAVEPOINT unit")
                try:
                    job.result = job.unit(conn, False)
                except fatal:
                    raise
                except Exception as exc:
                    raw.execute("ROLLBACK TO unit")
                    job.error = exc
                raw.execute("RELEASE unit")
            return []

        try:
            _by_hand(self._kept(), each)
        except BaseException as exc:
            # Nothing of the group was committed: no result stands. Closing the kept connection
            # rolls back whatever a failed COMMIT left open (the pool resets it).
            if self._conn is not None:
                self._conn.close()
            for job in batch:
                job.result = job.error = None
            if not isinstance(exc, Exception):  # interrupted
                raise
            for job in batch:
                self._alone(engine, job)


_GROUP_LOCK = threading.Lock()


def _group(engine: Engine) -> _Group:
    # Kept on the engine itself, not in a module-level map: the kept connection refers to its
    # engine, so a map's entry would keep an engine nobody disposes of (and its connection, and
    # with it the database's WAL) alive for good; on the engine it is garbage with the engine.
    group: _Group | None = getattr(engine, "_alluse_group", None)
    if group is None:
        with _GROUP_LOCK:
            group = getattr(engine, "_alluse_group", None)
            if group is None:
                group = _Group(engine)
                setattr(engine, "_alluse_group", group)  # noqa: B010 (Engine declares no such attribute)
    return group


def _checked(requests: Sequence[Request]) -> list[Request]:
    """The requests with their idempotency keys validated; keys within one unit of work must differ."""
    # A key that validation leaves as it is keeps its request: no new object per request of a batch.
    checked = [r if (k := validate_key(r.key)) is r.key else Request(k, r.payload, r.text) for r in requests]
    if len(checked) > 1 and len({r.key for r in checked}) != len(checked):
        raise InvalidInput("idempotency keys within one request must differ")
    return checked


def _digests(requests: Sequence[Request]) -> dict[str, str]:
    """Each request's input digest, by its key: what its audit entry stores and a replay is compared with."""
    if len(requests) == 1:  # a unit of work of one request: no lists to build
        key, payload, text = requests[0]
        return {key: digest(payload) if text is None else text_digest(text)}
    texts = [r.text for r in requests]
    if None in texts:
        found = digests([r.payload for r in requests])
    else:
        found = text_digests(cast(list[str], texts))
    return dict(zip([r.key for r in requests], found, strict=True))


def fresh_plans(conn: sa.Connection) -> None:
    """PostgreSQL: have the plans this connection cached made again at their next use (DISCARD PLANS),
    before a bulk unit of work. The server checks every foreign key of every row it writes with a
    query planned once per connection, at the first check; planned while the referenced table was
    nearly empty and had no statistics (a young database, before autovacuum's first ANALYZE), that
    query may look the key up through another index on `portfolio_id` and read every row of the
    portfolio per check, which makes a bulk write quadratic (docs/benchmarks.md: 100,000 postings
    did not finish in fifteen minutes). Planned again inside the bulk unit of work, it sees the
    tables as they are. Each cached plan costs one new planning (tens of microseconds); the unit of
    work writes hundreds of rows or more. Not on Citus, whose foreign keys are checked on the workers."""
    if conn.dialect.name == "postgresql" and not on_citus(conn):
        conn.connection.dbapi_connection.execute("DISCARD PLANS")  # type: ignore[union-attr]


_LZ4: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()


def fast_compression(conn: sa.Connection) -> None:
    """PostgreSQL: store the long texts of a bulk unit of work compressed with lz4 instead of the
    default pglz (SET LOCAL default_toast_compression; read back the same either way). Its row
    manifest is one text of megabytes (23.4 MB for 50,000 moves), which pglz took 1.47 s of the
    server's time to compress and lz4 0.47 s (docs/benchmarks.md); 30 ms against 9 ms for the
    1.4 MB of 2,000 moves. Only where the server was built with lz4 (asked once per engine); not on
    Citus, whose workers store the rows."""
    if conn.dialect.name != "postgresql" or on_citus(conn):
        return
    engine = conn.engine
    if engine not in _LZ4:
        q = "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        _LZ4[engine] = conn.exec_driver_sql(q).scalar() is True
    if _LZ4[engine]:
        conn.connection.dbapi_connection.execute("SET LOCAL default_toast_compression = lz4")  # type: ignore[union-attr]


_gc_lock = threading.Lock()
_gc_pauses = [0, False]  # units of work under way that paused the collector; whether it was enabled


def collector_paused(requests: int) -> AbstractContextManager[None]:
    """`write` pauses the cyclic garbage collector for a bulk unit of work (see `_collector_paused`);
    a use case that builds its requests from many inputs pauses it from there on (`requests`: how
    many), so building them is covered too."""
    return _collector_paused(True) if requests >= BULK_REQUESTS else _NOT_PAUSED


# What a small unit of work enters instead: one object for all, no generator made per unit of work.
_NOT_PAUSED = nullcontext()


@contextmanager
def _collector_paused(bulk: bool) -> Iterator[None]:
    """A bulk unit of work builds hundreds of thousands of short-lived rows, none in a reference cycle;
    meanwhile the cyclic garbage collector would walk the whole heap again and again (a third of the
    CPU time of a 50,000-move batch, docs/benchmarks.md). It is paused while such units of work run
    (process-wide, so counted across threads) and resumes after; reference counting frees the rows as
    usual either way."""
    if not bulk:
        yield
        return
    with _gc_lock:
        if _gc_pauses[0] == 0:
            _gc_pauses[1] = gc.isenabled()
            gc.disable()
        _gc_pauses[0] += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses[0] -= 1
            if _gc_pauses[0] == 0 and _gc_pauses[1]:
                gc.enable()


def write_on(
    conn: sa.Connection,
    portfolio_id: int,
    actor: str,
    action: str,
    requests: Sequence[Request],
    apply: Apply,
    override_reason: str | None,
    digests: dict[str, str] | None = None,
    commit: bool = False,
    single: bool = False,
    named: str | None = None,
) -> list[dict[str, Any]]:
    """`write` inside a transaction the caller already holds (used when the portfolio itself is new).
    `digests`: the requests' input digests, when the caller computed them before taking the lock.
    `commit`: the caller commits right after, so the COMMIT may go with the last writes (`deferred`).
    `single`: the caller's statements may be planned once per connection (`_GENERIC_PLANS`), if
    there is one request. `named` (SQLite, one request): the portfolio is the one of this name, found
    by the head read itself; `portfolio_id` is then not used."""
    if named is not None and (conn.dialect.name != "sqlite" or len(requests) != 1):
        portfolio_id, named = resolve_portfolio(conn, named), None
    signer = current_signer()
    keys = [r.key for r in requests]
    head_read = (_HEAD[conn.dialect.name], {"pid": portfolio_id, "kid": signer.key.key_id, "n": len(requests)})
    if conn.dialect.name == "postgresql":
        # The lock and the lookup of the keys in one round trip; the lookup runs after the lock is
        # granted, on a fresh snapshot, so it sees every entry committed before.
        reads = [head_read, _seen_read(portfolio_id, keys)]
        if single and len(requests) == 1 and not on_citus(conn):
            reads.insert(0, (_GENERIC_PLANS, {}))
        *_, heads, found = together(conn, *reads)
        seen = {k: (d, res) for k, d, res in found}
    elif len(keys) == 1:
        heads = []
        if named is not None:
            heads = _HEAD_SEEN_NAMED.rows(conn, name=named, kid=signer.key.key_id, n=1, key=keys[0])
            # None of that name: the lookup's own error (with the names that come close).
            portfolio_id = heads[0][10] if heads else resolve_portfolio(conn, named)
        if not heads:
            heads = _HEAD_SEEN.rows(conn, pid=portfolio_id, kid=signer.key.key_id, n=1, key=keys[0])
        seen = {keys[0]: (heads[0][8], heads[0][9])} if heads and heads[0][8] is not None else {}
    else:
        heads = head_read[0].rows(conn, **head_read[1])
        seen = _seen(conn, portfolio_id, keys)
    if not heads:
        raise NotFound(f"no portfolio with id {portfolio_id}")
    seq, prev_hash, event_seq, event_ids, sealed = heads[0][:5]
    journal = (conn, portfolio_id, list(heads[0][5:8])) if conn.dialect.name == "sqlite" else None

    if digests is None:
        digests = _digests(requests)
    fresh: list[Request] = []
    for r in requests:
        if r.key not in seen:
            fresh.append(r)
        elif seen[r.key][0] != digests[r.key]:
            raise Conflict(f"idempotency key {r.key!r} was already used for a different request")

    # TypedDicts are dicts at run time (typed by annotation: `cast` is a Python call).
    fresh_results: Sequence[Any] = ()
    if fresh:
        now = datetime.now(UTC)
        tx = Tx(conn, portfolio_id, now, seq + 1, event_seq, IdPool(events, event_ids))
        cap, recording = rowlog.start(conn, portfolio_id)
        try:
            token = JOURNAL_HEADS.set(journal)
            try:
                fresh_results = apply(tx, fresh)
            finally:
                JOURNAL_HEADS.reset(token)
            result_texts = tx.result_texts or list(map(canonical_json, fresh_results))
            # The outbox rows are facts of this unit of work too: written before the manifest is taken.
            # The writes from here on wait for the database once (PostgreSQL, small units of work);
            # the audit rows and the head are not recorded in the manifest (store/rowlog.py).
            with prepared.deferred(conn, len(tx.events) + 2 * len(fresh), cap.reads_back(), commit):
                entries = list(zip(range(seq + 1, seq + 1 + len(fresh)), result_texts, strict=True))
                event_seq = _write_events(conn, tx, action, entries)
                manifest = cap.manifest(dict(entries))
                if sealed is None:
                    ensure_sealed(conn, signer)
                rows, prev_hash = signed_entries(
                    conn, signer, seq, prev_hash, now, actor, action, fresh, result_texts, digests, override_reason,
                    manifest, (portfolio_id,),
                )  # fmt: skip
                if conn.dialect.name == "sqlite":
                    # The last entry apart: it alone carries the manifest, so the others' statement
                    # writes that column as NULL (store/prepared.Insert.tuples).
                    if len(rows) > 1:
                        _AUDIT_INSERT.tuples(conn, rows[:-1])
                    _AUDIT_INSERT.tuples(conn, rows[-1:])
                else:
                    # One statement (a bulk one's COPY carries the manifest like any value): apart,
                    # the last entry was a statement and a round trip of its own.
                    _AUDIT_INSERT.tuples(conn, rows)
                _HEAD_UPDATE.run(conn, pid=portfolio_id, seq=seq + len(fresh), head=prev_hash, events=event_seq)
        finally:
            rowlog.stop(recording)
    if len(fresh) == len(requests):  # nothing replayed: the results in the requests' order
        return list(fresh_results)
    results = dict(zip([r.key for r in fresh], fresh_results, strict=True))
    return [results[r.key] if r.key in results else {**json.loads(seen[r.key][1]), "replayed": True} for r in requests]


def _write_events(conn: sa.Connection, tx: Tx, action: str, entries: list[tuple[int, str]]) -> int:
    """Every committed request (audit seq, result text) becomes an event of kind `action` carrying its
    result, followed by the events the use case emitted for it; all in one batched insert. Returns
    the portfolio's new last event sequence number."""
    last = entries[-1][0]
    rows = [e if e.audit_seq is not None else e._replace(audit_seq=last) for e in tx.events] if tx.events else []
    if tx.announce:
        own = outbox.pending_of_kind(action, entries)
        # Stable: a request's own event first (the use case's own are already in request order).
        rows = sorted(own + rows, key=_audit_seq) if rows else own
    return outbox.flush(conn, tx.portfolio_id, tx.now, rows, tx.event_seq, tx.event_ids)


_audit_seq = operator.itemgetter(0)


def _seen_read(portfolio_id: int, keys: list[str]) -> tuple[Prepared, dict[str, Any]]:
    """PostgreSQL: the read of the audit entries of these keys."""
    if len(keys) == 1:
        return _SEEN_ONE, {"pid": portfolio_id, "key": keys[0]}
    # All the keys as one array parameter: one statement however many, where IN lists of
    # IN_CHUNK would each be built, sent and planned anew (56 for a 50,000-request batch).
    return _SEEN_ANY, {"pid": portfolio_id, "keys": keys}


def _seen(conn: sa.Connection, portfolio_id: int, keys: list[str]) -> dict[str, tuple[str, str]]:
    """SQLite: the audit entries of these keys."""
    if len(keys) == 1:
        return {k: (d, res) for k, d, res in _SEEN_ONE.rows(conn, pid=portfolio_id, key=keys[0])}
    found: dict[str, tuple[str, str]] = {}
    for i in range(0, len(keys), IN_CHUNK):
        chunk = keys[i : i + IN_CHUNK]
        if len(chunk) == IN_CHUNK:  # full chunks of a bulk batch: one prepared statement serves them all
            rows = _SEEN_MANY.rows(conn, pid=portfolio_id, **dict(zip(_SEEN_NAMES, chunk, strict=True)))
        else:  # a short one binds only its own keys (padded to IN_CHUNK it took twice as long for 3)
            rows = [tuple(r) for r in conn.execute(_SEEN_SOME, {"pid": portfolio_id, "keys": chunk})]
        for key, d, result in rows:
            found[key] = (d, result)
    return found


def signed_entries(
    conn: sa.Connection,
    signer: Signer,
    seq: int,
    prev_hash: str,
    now: datetime,
    actor: str,
    action: str,
    fresh: Sequence[Request],
    result_texts: Sequence[str],
    digests: dict[str, str],
    override_reason: str | None,
    manifest: dict[str, Any],
    lead: tuple[Any, ...] = (),
) -> tuple[list[tuple[Any, ...]], str]:
    """The audit rows of one unit of work, each MAC'd and chained to the one before, as tuples:
    `lead` (audit_log's portfolio id), then AUDIT_COLUMNS. The manifest of the rows the unit of work
    wrote goes on its last entry (one digest per unit of work, not per row)."""
    key_id = signer.key.key_id
    mac_of = entry_signer(signer.key.secret, key_id, timestamp_text(now), actor, action, override_reason)
    rows_text = canonical_json(manifest) if manifest else None
    last = len(fresh) - 1
    out = []
    for i, (r, result_text) in enumerate(zip(fresh, result_texts, strict=True)):
        d = digests[r.key]
        entry_rows = rows_text if i == last else None
        mac = mac_of(prev_hash, seq + 1 + i, r.key, d, result_text, entry_rows)
        out.append(
            (*lead, seq + 1 + i, now, actor, action, r.key, d, result_text, override_reason, prev_hash, mac, key_id,
             entry_rows)
        )  # fmt: skip
        prev_hash = mac
    return out, prev_hash


_KEY_KNOWN = Prepared(sa.select(audit_keys.c.key_id).where(audit_keys.c.key_id == sa.bindparam("kid")))
_KEY_INSERT = insert(audit_keys)


def ensure_sealed(conn: sa.Connection, signer: Signer) -> None:
    """Keep the signing audit key, sealed with the keyring, beside the entries it signs. Every unit of
    work checks (with its head read), so a database rebuilt under a running process still gets it."""
    if _KEY_KNOWN.first(conn, kid=signer.key.key_id) is None:
        _KEY_INSERT.run(conn, key_id=signer.key.key_id, sealed=signer.keyring.encrypt(signer.key.secret))


# --- the system chain: writes that belong to no portfolio (users) ---------------------------------

_SYSTEM_HEAD = Prepared(sa.select(system_audit.c.seq, system_audit.c.hash).order_by(system_audit.c.seq.desc()).limit(1))
_SYSTEM_SEEN = Prepared(
    sa.select(system_audit.c.input_digest, system_audit.c.result).where(
        system_audit.c.idempotency_key == sa.bindparam("key")
    )
)
_SYSTEM_INSERT = insert(system_audit, AUDIT_COLUMNS)
SYSTEM_LOCK = 0x616C6C75  # "allu": the PostgreSQL advisory lock that serialises the system chain


def write_system(
    engine: Engine, actor: str, action: str, request: Request, apply: Callable[[Tx], Mapping[str, Any]]
) -> dict[str, Any]:
    """`write` for one request that touches no portfolio, recorded in the system chain."""
    key = validate_key(request.key)
    d = digest(request.payload)
    with writer_lock(engine), write_connection(engine) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(SYSTEM_LOCK))).all()
        seen = _SYSTEM_SEEN.first(conn, key=key)
        if seen is not None:
            if seen[0] != d:
                raise Conflict(f"idempotency key {key!r} was already used for a different request")
            return {**json.loads(seen[1]), "replayed": True}
        head = _SYSTEM_HEAD.first(conn)
        seq, prev_hash = head if head is not None else (0, GENESIS)
        now = datetime.now(UTC)
        with rowlog.recording(conn, None) as cap:
            result = apply(Tx(conn, 0, now, seq + 1))
            manifest = cap.manifest()
        signer = current_signer()
        ensure_sealed(conn, signer)
        rows, _head = signed_entries(
            conn,
            signer,
            seq,
            prev_hash,
            now,
            actor,
            action,
            [Request(key, request.payload)],
            [canonical_json(result)],
            {key: d},
            None,
            manifest,
        )
        _SYSTEM_INSERT.tuples(conn, rows)
        return cast(dict[str, Any], result)  # TypedDicts are dicts at run time
