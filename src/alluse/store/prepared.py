"""Hot-path statements: SQLAlchemy Core statements compiled once per dialect and run on the
connection's own DBAPI cursor, inside the same transaction.

Why: SQLAlchemy's per-call execution machinery (statement coercion, cache keys, execution context)
costs ~50-100 µs a statement, several times the database's own time on SQLite, and a ledger write is
about ten statements. The SQL still comes from the one Core schema and the dialect's own type
processors; only the per-call bookkeeping is skipped. Everything off the hot path uses plain
`conn.execute`.
"""

from __future__ import annotations

import datetime as dt
import operator
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from alluse.store import rowlog


class _Compiled:
    __slots__ = ("sql", "names", "positional", "literals", "getter", "template", "slots", "processors", "tuple_order",
                 "order", "column_procs", "as_given")  # fmt: skip

    def __init__(self, stmt: sa.Executable, dialect: Dialect, order: tuple[str, ...] = ()) -> None:
        compiled: Any = stmt.compile(dialect=dialect)  # type: ignore[attr-defined]
        self.sql = str(compiled)
        self.positional = bool(compiled.positional)
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ()) if self.positional else tuple(compiled.binds)
        # Values written into the statement itself (a literal 0, 'EXT') travel as binds too.
        self.literals = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}
        self.getter = operator.itemgetter(*self.names) if len(self.names) > 1 else None
        # Positional with literals: the values in the statement's order with the literals in place,
        # and where each parameter given goes (merging the literals into the parameters and picking
        # every value out of that cost three times as much for a read with nine literals).
        self.template = [self.literals.get(n) for n in self.names]
        self.slots = [(i, n) for i, n in enumerate(self.names) if n not in self.literals]
        self.processors: list[tuple[int, str, Callable[[Any], Any]]] = []
        for i, name in enumerate(self.names):
            bind = compiled.binds[name]
            impl = bind.type.dialect_impl(dialect)
            proc = impl.bind_processor(dialect)
            if proc is not None:
                self.processors.append((i, name, _shared_memo(dialect.name, impl, proc)))
        # Rows given as tuples in `order` (see Prepared.tuples): where each bound value sits in them,
        # (None: in the statement's own order) and the type processors by tuple position.
        self.tuple_order = order
        self.order: list[int] | None = None
        self.column_procs: list[tuple[int, Callable[[Any], Any]]] = []
        if order:
            at = {name: i for i, name in enumerate(order)}
            if set(at) != set(self.names) or self.literals:
                raise ValueError(f"tuple order {order} does not name exactly the statement's parameters")
            placed = [at[n] for n in self.names]
            self.order = None if placed == list(range(len(placed))) else placed
            self.column_procs = [(at[name], proc) for _i, name, proc in self.processors]
        # Rows given as tuples go to the driver as they are (`from_tuples`).
        self.as_given = self.positional and not self.column_procs and self.order is None

    def convert(self, params: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        if self.literals:
            if self.positional:
                listed = self.template.copy()
                for i, name in self.slots:
                    listed[i] = params[name]
                for i, _name, proc in self.processors:
                    listed[i] = proc(listed[i])
                return listed
            params = {**self.literals, **params}
        if not self.positional:
            if not self.processors:
                return params
            out = dict(params)
            for _i, name, proc in self.processors:
                out[name] = proc(out[name])
            return out
        if self.getter is not None:
            values: Sequence[Any] = self.getter(params)
        else:  # one parameter, or none
            values = (params[self.names[0]],) if self.names else ()
        if not self.processors:
            return values
        listed = list(values)
        for i, _name, proc in self.processors:
            listed[i] = proc(listed[i])
        return listed

    def one(self, row: Sequence[Any]) -> Sequence[Any] | Mapping[str, Any]:
        """Driver parameters of one row given as a tuple in `order` (not `as_given`)."""
        if not self.positional:
            return self.convert(dict(zip(self.tuple_order, row, strict=True)))
        out = list(row)
        for i, proc in self.column_procs:
            out[i] = proc(out[i])
        return out if self.order is None else [out[i] for i in self.order]

    def from_tuples(self, rows: Sequence[Sequence[Any]]) -> Sequence[Any]:
        """Driver parameters of rows given as tuples in `order`: for a positional dialect the tuples
        themselves when no column needs converting, else converted row by row (a few rows) or column
        by column."""
        if self.as_given:
            return rows
        if not self.positional or len(rows) <= _ROW_BY_ROW:
            return list(map(self.one, rows))
        columns = list(zip(*rows, strict=True))
        for i, proc in self.column_procs:
            columns[i] = _converted(columns[i], proc)
        if self.order is not None:
            columns = [columns[i] for i in self.order]
        return list(zip(*columns, strict=True))

    def send(self, conn: sa.Connection, rows: Sequence[Sequence[Any]]) -> None:
        """Execute for rows given as tuples in `order` (at least one)."""
        own = isinstance(conn, OwnCursor)
        cur: Any = conn.own if own else driver(conn).cursor()  # type: ignore[attr-defined]
        args: Any = None
        try:
            if len(rows) == 1:  # one row: a plain execute (psycopg's executemany sets up a pipeline)
                args = rows[0] if self.as_given else self.one(rows[0])
                cur.execute(self.sql, args)
            else:
                args = self.from_tuples(rows)
                cur.executemany(self.sql, args)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise sa.exc.DBAPIError.instance(self.sql, args, exc, conn.dialect.loaded_dbapi.Error) from exc
        finally:
            if not own:  # the kept cursor is not closed (OwnCursor)
                cur.close()


# Up to this many rows (the few of a unit of work of one request) are converted row by row:
# gathering the columns and converting each distinct value once costs more than it saves there
# (3.7 µs against 0.7 µs for the three sleeves of a group, 10.6 µs against 6.1 µs for 32 rows).
_ROW_BY_ROW = 32


def _converted(column: Sequence[Any], proc: Callable[[Any], Any]) -> tuple[Any, ...]:
    """A column's values converted, each distinct object once: a batch's rows share a few (the unit of
    work's timestamp, a trade date), so the rest is two passes of C (no Python call per row). By
    identity, not equality, so equal values of different spellings (two time zones) stay apart."""
    distinct = dict(zip(map(id, column), column, strict=True))
    spelled = {k: proc(v) for k, v in distinct.items()}
    return tuple(map(spelled.__getitem__, map(id, column)))


def _last_value_memo(proc: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Bulk rows share values such as the unit of work's timestamp: convert each distinct one once."""
    last: list[tuple[Any, Any]] = [(object(), None)]

    def convert(value: Any) -> Any:
        seen = last[0]  # one read of one (value, converted) pair: safe between threads
        if value is not seen[0]:
            seen = last[0] = (value, proc(value))
        return seen[1]

    return convert


_MEMOS: dict[tuple[str, type, str], Callable[[Any], Any]] = {}


def _shared_memo(dialect: str, impl: Any, proc: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """One memo per dialect and column type, shared by every statement: a unit of work stamps the rows
    of all its tables with the same `now`, which is then converted once, not once per statement."""
    key = (dialect, type(impl), repr(impl))
    memo = _MEMOS.get(key)
    if memo is None:
        memo = _MEMOS[key] = _converter(dialect, impl, proc)
    return memo


# Dates spelled for SQLite are kept, at most this many (emptied when full, so a long-running process
# keeps a bounded number): the rows of many units of work share a few (a trade date, its week).
_DAY_TEXTS_MAX = 4096


class _DayTexts(dict[Any, Any]):
    """SQLite's text of each date spelled so far, by date: converting a date spelled before is one
    lookup, a C call (`__getitem__` is the converter); a value not found is spelled by `__missing__`,
    and kept when it is a `date`. A datetime never equals a date, so it is never taken for one."""

    def __init__(self, proc: Callable[[Any], Any]) -> None:
        super().__init__()
        self.proc = proc

    def __missing__(self, value: Any) -> Any:
        if type(value) is not dt.date:
            return self.proc(value)  # a datetime given for a date, a subclass, None
        if len(self) >= _DAY_TEXTS_MAX:
            self.clear()
        text = self[value] = value.isoformat()
        return text


def _converter(dialect: str, impl: Any, proc: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """SQLite stores dates and timestamps as text in SQLAlchemy's default storage formats, which its
    processors fill from a dict with `%` (about 6,000 instructions a value; a single fill writes
    four dates and a timestamp). A `date` is spelled by `isoformat` in C, once (`_DayTexts`), a
    `datetime` from its own fields; any other value (a datetime given for a date, a subclass, None)
    goes to SQLAlchemy's own processor. A column type with a storage format of its own keeps its
    processor."""
    if dialect != "sqlite":
        return _last_value_memo(proc)
    from sqlalchemy.dialects.sqlite import base as sqlite_types  # loaded with the dialect already

    if isinstance(impl, sqlite_types.DATETIME) and impl._storage_format == sqlite_types.DATETIME._storage_format:

        def timestamp(value: Any) -> Any:
            if type(value) is not dt.datetime:
                return proc(value)
            # The stored text leaves the zone out, as SQLAlchemy's format does (a unit of work's `now`
            # is in UTC). Spelled field by field: `replace` and `isoformat` parse their arguments,
            # most of their cost.
            return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031
                value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond
            )  # fmt: skip

        return _last_value_memo(timestamp)
    if isinstance(impl, sqlite_types.DATE) and impl._storage_format == sqlite_types.DATE._storage_format:
        return _DayTexts(proc).__getitem__
    return _last_value_memo(proc)


class OwnCursor(sa.Connection):
    """A connection whose prepared statements all run on one driver cursor of its own, `own` (the
    unit of work's kept SQLite connection, store/uow.py): a cursor made and closed per statement
    costs about 3,000 instructions, and a single move runs eleven. A statement's rows are fetched
    before the next statement runs, which resets it; `own.close()` does nothing, and the hot paths do
    not call it (a call of Python's per statement)."""

    own: Any


def driver(conn: sa.Connection) -> Any:
    """The connection's driver connection, once the COPYs handed over on it are done (`caught_up`)."""
    raw: Any = conn.connection.dbapi_connection
    if _BEHIND:
        caught_up(raw)
    return raw


class Prepared:
    """A Core statement whose parameters are all `sa.bindparam`s, executed without per-call overhead.
    `order`: the parameter names in the order of the tuples `tuples` takes."""

    __slots__ = ("stmt", "order", "_by_dialect", "_noted")

    def __init__(self, stmt: sa.Executable, order: Sequence[str] = ()) -> None:
        self.stmt = stmt
        self.order = tuple(order)
        self._by_dialect: dict[str, _Compiled] = {}
        # What the audit manifest makes of it (rowlog.classify), and the shape of its rows given as tuples
        # (rowlog.tuple_shape, found once here: its lookup cost each insert more than noting its rows).
        self._noted: tuple[str, Any, Any] | None = None

    def _compiled(self, conn: sa.Connection) -> _Compiled:
        name = conn.dialect.name
        c = self._by_dialect.get(name)
        if c is None:
            c = self._by_dialect[name] = _Compiled(self.stmt, conn.dialect, self.order)
        return c

    def _note(self, params: Any, many: bool, tuples: bool = False) -> None:
        """Tell the unit of work's row manifest about this write, if one is being recorded."""
        cap = rowlog.ACTIVE.get()
        if cap is not None:
            if self._noted is None:
                kind, table = rowlog.classify(self.stmt)
                shape = (
                    rowlog.tuple_shape(table, self.order)
                    if kind == "insert" and table is not None and self.order
                    else None
                )
                self._noted = (kind, table, shape)
            kind, table, shape = self._noted
            if not kind:
                return
            if tuples and kind == "insert":
                cap.inserted_tuples(table, self.order, params, shape)  # type: ignore[arg-type]
                return
            if tuples:
                params = [dict(zip(self.order, r, strict=True)) for r in params]
            rowlog.note(cap, self.stmt, kind, table, params if many else [params])  # type: ignore[arg-type]

    def _execute(self, conn: sa.Connection, params: Any, many: bool = False) -> Any:
        # Every statement of a unit of work comes through here: the steps are written out, not called
        # (a Python call costs about what the driver's own execute of a short read does).
        noted = self._noted
        if noted is None or noted[0]:  # once classified, a read is never noted
            self._note(params, many)
        c = self._by_dialect.get(conn.dialect.name) or self._compiled(conn)
        if many and len(params) == 1:  # one row: a plain execute (psycopg's executemany sets up a pipeline)
            many, params = False, params[0]
        args = [c.convert(r) for r in params] if many else c.convert(params)
        cur: Any = conn.own if isinstance(conn, OwnCursor) else driver(conn).cursor()
        try:
            (cur.executemany if many else cur.execute)(c.sql, args)
        except conn.dialect.loaded_dbapi.Error as exc:
            cur.close()
            # Same exception types as conn.execute raises (IntegrityError, OperationalError ...).
            raise sa.exc.DBAPIError.instance(c.sql, args, exc, conn.dialect.loaded_dbapi.Error) from exc
        return cur

    def rows(self, conn: sa.Connection, **params: Any) -> list[tuple[Any, ...]]:
        cur = self._execute(conn, params)
        if isinstance(conn, OwnCursor):  # kept, not closed: no call of Python's to its `close`
            return cur.fetchall()
        try:
            return cur.fetchall()
        finally:
            cur.close()

    def first(self, conn: sa.Connection, **params: Any) -> tuple[Any, ...] | None:
        cur = self._execute(conn, params)
        if isinstance(conn, OwnCursor):
            return cur.fetchone()
        try:
            return cur.fetchone()
        finally:
            cur.close()

    def run(self, conn: sa.Connection, **params: Any) -> int:
        """Execute once; returns the affected row count."""
        cur = self._execute(conn, params)
        n: int = cur.rowcount
        if not isinstance(conn, OwnCursor):
            cur.close()
        return n

    def many(self, conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self._execute(conn, rows, many=True).close()

    def tuples(self, conn: sa.Connection, rows: Sequence[Sequence[Any]]) -> None:
        """`many` for rows built as tuples in `order`: on SQLite they go to the driver as they are
        (only the columns whose type converts, dates and timestamps, are converted), where each
        dict row of `many` is taken apart per statement."""
        if not rows:
            return
        noted = self._noted
        if noted is None or noted[0]:  # as in _execute: a write the manifest leaves out is not noted again
            self._note(rows, True, tuples=True)
        (self._by_dialect.get(conn.dialect.name) or self._compiled(conn)).send(conn, rows)  # as in _execute


# Below this many rows a PostgreSQL COPY costs more than it saves (it is one extra round trip).
COPY_MIN_ROWS = 64


def deferred(
    conn: sa.Connection, rows: int, sqlalchemy_reads: bool = False, commit: bool = False
) -> AbstractContextManager[None]:
    """PostgreSQL: send the statements of the block without waiting for each one's answer (psycopg's
    pipeline mode), and wait once at its end; a read inside still waits for its rows. For the few
    writes at the end of a small unit of work, whose answers nobody reads (`rows`: how many rows the
    block writes at most; from COPY_MIN_ROWS on, the block runs as usual, since COPY cannot be
    pipelined; nor can reads through `conn.execute`, so a block with any runs as usual too). An
    error of any statement is raised at the end of the block at the latest, as the same SQLAlchemy
    exception a statement would raise.

    `commit`: the block is the end of the transaction, so its COMMIT goes in the same wait (when the
    block is pipelined; otherwise the caller's transaction commits as usual). The caller's
    `conn.begin()` then finds the driver's transaction over and its commit sends nothing; after an
    error the COMMIT is not applied (the server skips the rest of a failed pipeline) and the
    caller's rollback undoes the work as usual."""
    if conn.dialect.name != "postgresql" or rows >= COPY_MIN_ROWS or sqlalchemy_reads:
        return _AS_USUAL
    return _pipelined(conn, commit)


# A block run as usual (SQLite, every unit of work): one object for all, no generator made per block.
_AS_USUAL = nullcontext()


@contextmanager
def _pipelined(conn: sa.Connection, commit: bool) -> Iterator[None]:
    dbapi = conn.dialect.loaded_dbapi
    raw = driver(conn)
    try:
        with raw.pipeline():
            yield
            if commit:
                raw.execute("COMMIT")
    except dbapi.Error as exc:
        raise sa.exc.DBAPIError.instance(None, None, exc, dbapi.Error) from exc


def together(conn: sa.Connection, *reads: tuple[Prepared, Mapping[str, Any]]) -> list[list[tuple[Any, ...]]]:
    """The rows of each read, in order. PostgreSQL: sent together and answered in one round trip
    (a pipeline, read after its sync; the transaction's BEGIN, when it is still to be sent, goes
    with them); the server still runs them one after the other, each with a fresh snapshot, so a
    read after a locking one sees what was committed before the lock was granted. Elsewhere one
    after the other."""
    if conn.dialect.name != "postgresql":
        return [p.rows(conn, **params) for p, params in reads]
    dbapi = conn.dialect.loaded_dbapi
    raw = driver(conn)
    cursors: list[Any] = []
    sql = None
    try:
        with raw.pipeline():
            for p, params in reads:
                c = p._compiled(conn)
                sql = c.sql
                cursors.append(raw.cursor())
                cursors[-1].execute(sql, c.convert(params))
        return [list(cur.fetchall()) for cur in cursors]
    except dbapi.Error as exc:
        raise sa.exc.DBAPIError.instance(sql, None, exc, dbapi.Error) from exc
    finally:
        for cur in cursors:
            cur.close()


class Insert(Prepared):
    """A prepared INSERT whose bulk form is COPY on PostgreSQL."""

    __slots__ = ("table", "columns", "_nullable", "_with_nulls")

    def __init__(self, table: sa.Table, columns: list[str]) -> None:
        super().__init__(table.insert().values({c: sa.bindparam(c, type_=table.c[c].type) for c in columns}), columns)
        self.table = table
        self.columns = columns
        self._nullable = [i for i, c in enumerate(columns) if table.c[c].nullable]
        # By the columns a batch leaves NULL in every row: the statement that writes them as literals.
        self._with_nulls: dict[tuple[int, ...], tuple[Prepared, Callable[[Sequence[Any]], Any]]] = {}

    def _null_columns(self, rows: Sequence[Sequence[Any]]) -> tuple[int, ...]:
        """The positions of the nullable columns that are None in every row."""
        n = len(rows)
        first = rows[0]
        return tuple(
            i for i in self._nullable if first[i] is None and list(map(operator.itemgetter(i), rows)).count(None) == n
        )

    def _without(self, nulls: tuple[int, ...]) -> tuple[Prepared, Callable[[Sequence[Any]], Any]]:
        """This insert with the columns at `nulls` written as NULL in the statement, and what takes the
        other values out of a row."""
        found = self._with_nulls.get(nulls)
        if found is None:
            kept = [i for i in range(len(self.columns)) if i not in nulls]
            names = [self.columns[i] for i in kept]
            values: dict[str, Any] = {c: sa.bindparam(c, type_=self.table.c[c].type) for c in names}
            values.update({self.columns[i]: sa.null() for i in nulls})
            found = (Prepared(self.table.insert().values(values), names), operator.itemgetter(*kept))
            self._with_nulls[nulls] = found
        return found

    def many(self, conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        if conn.dialect.name == "postgresql" and len(rows) >= COPY_MIN_ROWS:
            self._note(rows, True)
            copy_rows(conn, self.table, [[r[c] for c in self.columns] for r in rows], self.columns)
        else:
            super().many(conn, rows)

    def tuples(self, conn: sa.Connection, rows: Sequence[Sequence[Any]]) -> None:
        """Rows as tuples in `columns` order."""
        if not rows:
            return
        dialect = conn.dialect.name
        if dialect == "postgresql" and len(rows) >= COPY_MIN_ROWS:
            self._note(rows, True, tuples=True)
            copy_rows(conn, self.table, rows, self.columns)
            return
        noted = self._noted
        if noted is None or noted[0]:  # as in Prepared.tuples
            self._note(rows, True, tuples=True)
        # sqlite3 binds a None parameter through its adapter lookup, two failed attribute lookups (an
        # exception made and dropped) each time: 3,300 instructions, more than the rest of a row's
        # binding. A column a batch leaves NULL in every row is written in the statement (a single
        # row's check would cost about what it saves).
        if dialect == "sqlite" and len(rows) > 1 and self._nullable and (nulls := self._null_columns(rows)):
            variant, kept = self._without(nulls)
            variant._compiled(conn).send(conn, list(map(kept, rows)))
        else:
            (self._by_dialect.get(dialect) or self._compiled(conn)).send(conn, rows)


def insert(table: sa.Table, columns: Iterable[str] | None = None) -> Insert:
    """INSERT of the named columns (default: all), each bound by its column name."""
    return Insert(table, list(columns) if columns is not None else [c.name for c in table.columns])


def copy_rows(conn: sa.Connection, table: sa.Table, rows: Sequence[Sequence[Any]], columns: list[str]) -> None:
    """COPY ... FROM STDIN through psycopg 3, inside the connection's transaction; each row's values in
    `columns` order. Values are plain Python ints, strings, datetimes and bytes (never floats: money
    is integer cents). In binary format when every column's type has one here: a timestamp then
    travels as its 8 bytes, where the text format spelled it out per row (12,000 instructions each,
    the unit of work's one `now` in every transfer, event and audit row) for the server to parse back,
    and no text is escaped.

    From BEHIND_ROWS rows on, the COPY is sent from a thread of its own (`behind`): the unit of work
    goes on with what needs no answer from the server while the server takes the rows in and checks
    their keys."""
    types = _binary_types(table, tuple(columns))
    sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN{' (FORMAT BINARY)' if types else ''}"
    raw: Any = conn.connection.dbapi_connection
    error = conn.dialect.loaded_dbapi.Error
    if len(rows) >= BEHIND_ROWS:
        rows = list(rows)  # the caller's list is the caller's to change once this returns
        behind(raw, lambda: _copy(raw, sql, types, rows, error))
    else:
        caught_up(raw)
        _copy(raw, sql, types, rows, error)


def _copy(raw: Any, sql: str, types: list[str], rows: Sequence[Sequence[Any]], error: type[Exception]) -> None:
    cur = raw.cursor()
    try:
        with cur.copy(sql) as copy:
            if types:
                copy.set_types(types)
            for r in rows:
                copy.write_row(r)
    except error as exc:
        raise sa.exc.DBAPIError.instance(sql, None, exc, error) from exc
    finally:
        cur.close()


# --- Writes sent from a thread of their own (PostgreSQL) ---------------------------------------------
# A bulk unit of work's big COPYs keep the server busy for seconds (a posting's keys checked 100,000
# times at the end of its COPY), while the unit of work has Python of its own to do that needs no
# answer from the server: its results, its events, its manifest, its audit entries. Sent from a
# thread, a COPY's rows go in while that work goes on. The thread only ever sends (the driver's
# connection serialises it with everything else sent on it); the unit of work waits for every COPY
# it handed over, and gets the first one's error, before anything else it sends (`caught_up`: every
# statement of store/prepared, and SQLAlchemy's own through the engine's events in store/db), and
# above all before COMMIT: a COMMIT after a failed statement would end the transaction without error,
# having written nothing.
BEHIND_ROWS = 1_000


class _Behind:
    """The COPYs a connection's transaction has handed over, the last one's thread and the first error."""

    __slots__ = ("raw", "last", "error")

    def __init__(self, raw: Any) -> None:
        self.raw = raw  # held, so that its id stays its own while it is here
        self.last: threading.Thread | None = None
        self.error: BaseException | None = None


_BEHIND: dict[int, _Behind] = {}  # by id() of the driver's connection


def behind(raw: Any, send: Callable[[], None]) -> None:
    """Run `send` on a thread of its own, after the ones handed over before on this driver connection."""
    pending = _BEHIND.get(id(raw)) or _BEHIND.setdefault(id(raw), _Behind(raw))
    before = pending.last

    def run() -> None:
        if before is not None:
            before.join()
        if pending.error is None:
            try:
                send()
            except BaseException as exc:  # handed to the unit of work's thread at `caught_up`
                pending.error = exc

    thread = threading.Thread(target=run, name="alluse-copy", daemon=True)
    pending.last = thread
    thread.start()


def caught_up(raw: Any, quiet: bool = False) -> None:
    """Wait until every COPY handed over on this driver connection is done, then raise the first one's
    error (`quiet`: not, for a rollback, which undoes them anyway)."""
    if not _BEHIND:
        return
    pending = _BEHIND.pop(id(raw), None)
    if pending is None or pending.last is None:
        return
    pending.last.join()
    if pending.error is not None and not quiet:
        raise pending.error


# PostgreSQL's name of each column type for COPY's binary format, most specific first (BigInteger is
# an Integer); a table with any other type is copied in text.
_BINARY_NAMES: list[tuple[type[sa.types.TypeEngine[Any]], str]] = [
    (sa.SmallInteger, "int2"),
    (sa.BigInteger, "int8"),
    (sa.Integer, "int4"),
    (sa.DateTime, "timestamp"),
    (sa.Date, "date"),
    (sa.Boolean, "bool"),
    (sa.LargeBinary, "bytea"),
    (sa.String, "text"),
]
_BINARY: dict[tuple[sa.Table, tuple[str, ...]], list[str]] = {}


def _binary_types(table: sa.Table, columns: tuple[str, ...]) -> list[str]:
    """The columns' type names for a binary COPY, or [] when one has no binary form here."""
    found = _BINARY.get((table, columns))
    if found is None:
        found = []
        for c in columns:
            t = table.c[c].type
            name = next((n for kind, n in _BINARY_NAMES if isinstance(t, kind)), None)
            if name is None:
                found = []
                break
            found.append(name + "tz" if isinstance(t, sa.DateTime) and t.timezone else name)
        _BINARY[(table, columns)] = found
    return found
