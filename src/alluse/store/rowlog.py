"""Which rows each unit of work wrote, so its audit entry can commit to them.

Every table of the schema is *covered* unless `EXEMPT` names it with the reason. While a unit of
work runs its use case, every INSERT, UPDATE and DELETE on a covered table is noted (both through
`conn.execute` and through the prepared hot-path statements); at the end the unit of work turns the
notes into a *manifest*: for each table, each written row's primary key and its *image* (`None` for
a deleted row). The manifest is stored with the unit of work's last audit entry and is covered by
that entry's MAC, so `alluse verify` can compare every row with the image the chain last recorded
for it and name any row that was inserted, edited or deleted behind the audit chain's back. (The
image itself, not a hash of it: most rows are a few integers, shorter than a digest, and building
it is the only per-row work on the hot path; the MAC hashes the manifest once per unit of work.)

The image of a row is every column except the *derived* ones (`DERIVED`): cached figures that the
hot path rewrites in place and that `verify` recomputes from covered rows (an account's cash from its
postings, a lot's remaining quantity from its closings). Editing one of those is caught by that
recomputation instead.

How rows are identified, cheapest first: an insert whose parameters carry the whole primary key
(the hot-path journal inserts, which allocate their ids) is imaged from its parameters; an insert
that leaves the id to the database notes the table's highest id first and reads the new rows back
at the end; an UPDATE or DELETE that sets a covered column selects the keys it is about to touch and
reads them back at the end (a deleted row is then absent). A new table is covered with no further
code; a test fails naming any table that is neither written through here nor exempted.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.sql.dml import Delete, Insert, Update
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from alluse.domain.audit import timestamp_text
from alluse.store import schema

# Tables not compared row by row, with the reason. The chain's own tables are checked by verify's
# audit_chain check instead; the others are not facts and are not audited at all.
CHAIN_TABLES: dict[str, str] = {
    "audit_log": "the chain itself: every entry is checked against its MAC and its predecessor",
    "system_audit": "the chain of writes that belong to no portfolio: checked like audit_log",
    "audit_keys": "older audit keys, sealed with the keyring's authenticated encryption; an edited or "
    "deleted key leaves its entries unverifiable, which verify reports",
}
NOT_AUDITED: dict[str, str] = {
    "cli_defaults": "a preference of this database's command line (the portfolio commands act on when none "
    "is named), not a fact about any portfolio; `alluse use` changes it without an audit entry",
    "refresh_tokens": "session state, rewritten on every login and refresh outside any unit of work; a row "
    "grants nothing without a token signed by the keyring, and who may do what is in users and roles",
    "login_throttle": "counters of failed logins in the current window, reset as windows pass",
    "event_cursors": "how far each outbox consumer got: delivery progress, moved by the relay",
    "webhook_deliveries": "delivery attempts of outbox events to webhook endpoints, moved by the relay; the "
    "events and the endpoints themselves are covered",
}
EXEMPT: dict[str, str] = {**CHAIN_TABLES, **NOT_AUDITED}

DERIVED: dict[str, frozenset[str]] = {
    # The head of the chain: verify checks it against the last entry; the outbox's last sequence
    # number: verify checks it against the portfolio's events.
    "portfolios": frozenset({"audit_seq", "audit_head", "event_seq"}),
    # Sums of postings, positions, open short puts and earmarks: verify recomputes each.
    "accounts": frozenset(
        {"cash_cents", "positions_value_cents", "collateral_cents", "earmarked_cents", "base_capital_cents"}
    ),
    # What is still open: verify recomputes it from lot_closes.
    "lots": frozenset({"remaining", "remaining_cash_cents"}),
    # Quantity: from the lots. Mark and date: verify checks each is a recorded fill or mark, and the
    # account's positions value against them.
    "positions": frozenset({"quantity", "mark_e4", "marked_on"}),
}

# An outbox event that announces a request carries the request's result, which its audit entry
# holds already (store/outbox.py): a manifest writes a null for such a payload instead of the text
# again (events were about three quarters of a bulk manifest's text, and escaping the text inside the
# manifest's JSON a tenth of a single group opening's). The column, and the column that numbers the
# entry.
RESULT_OF: dict[str, tuple[str, str]] = {"events": ("payload", "audit_seq")}


def covered_tables() -> list[sa.Table]:
    return [t for t in schema.metadata.sorted_tables if t.name not in EXEMPT]


def image_columns(table: sa.Table) -> list[sa.Column]:
    derived = DERIVED.get(table.name, frozenset())
    return [c for c in table.columns if c.name not in derived]


_PK: dict[str, list[sa.Column]] = {}


def pk_columns(table: sa.Table) -> list[sa.Column]:
    found = _PK.get(table.name)
    if found is None:
        found = _PK[table.name] = list(table.primary_key.columns)
    return found


def norm(v: Any) -> Any:
    """One spelling of a value, whichever side it comes from (parameters or either database)."""
    t = type(v)
    if v is None or t is int or t is str:
        return v
    if t is bool:
        return int(v)
    if isinstance(v, datetime):
        return timestamp_text(v)
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    if isinstance(v, str):  # a StrEnum
        return str.__str__(v)
    if isinstance(v, int):  # an IntEnum
        return int(v)
    raise TypeError(f"cannot record a {t.__name__} column value")


def _needs_norm(c: sa.Column) -> bool:
    """Integer and text columns arrive as ints and texts from both sides (an IntEnum or a StrEnum is
    spelled in JSON as its value); every other type is normalised."""
    return not isinstance(c.type, (sa.Integer, sa.String))


class _Shape:
    """Per table: the image columns, where the primary key sits among them, and how to build an image."""

    __slots__ = ("table", "name", "columns", "names", "pk_at", "key_at", "defaults", "normed", "getter", "result_at")

    def __init__(self, table: sa.Table) -> None:
        self.table = table
        self.name = table.name
        self.columns = image_columns(table)
        self.names = [c.name for c in self.columns]
        pk = {c.name for c in pk_columns(table)}
        self.pk_at = [i for i, c in enumerate(self.columns) if c.name in pk]
        # Where a one-column key sits (None: a composite key, see `key`).
        self.key_at = self.pk_at[0] if len(self.pk_at) == 1 else None
        self.defaults = {c.name: _default(c) for c in self.columns}
        self.normed = [i for i, c in enumerate(self.columns) if _needs_norm(c)]
        self.getter = operator.itemgetter(*self.names)
        # Where the column that may repeat an entry's result sits, and the entry's seq (RESULT_OF).
        self.result_at: tuple[int, int] | None = None
        if self.name in RESULT_OF:
            text, seq = RESULT_OF[self.name]
            if table.c[text].nullable:  # a null must be free to stand for the result
                raise TypeError(f"{self.name}.{text} must not be nullable to be written as a result's reference")
            self.result_at = (self.names.index(text), self.names.index(seq))

    def key(self, image: Sequence[Any]) -> Any:
        if len(self.pk_at) == 1:
            return image[self.pk_at[0]]
        return tuple(image[i] for i in self.pk_at)

    def _image(self, image: list[Any]) -> tuple[Any, list[Any]]:
        for i in self.normed:
            v = image[i]
            if v is not None and type(v) is not str:
                image[i] = norm(v)
        return self.key(image), image

    def from_row(self, row: Sequence[Any]) -> tuple[Any, list[Any]]:
        """(key, image) of a row read from the database."""
        return self._image(list(row))

    def from_params(self, params: Mapping[str, Any]) -> tuple[Any, list[Any]]:
        """(key, image) of a row from the parameters of its INSERT."""
        d = self.defaults
        return self._image([params[n] if n in params else d[n] for n in self.names])


def _default(c: sa.Column) -> Any:
    """The value a column takes when an insert leaves it out (its server default, as read back)."""
    if isinstance(c.default, ScalarElementColumnDefault):
        return norm(c.default.arg)
    sd = c.server_default
    if sd is None:
        return None
    arg = getattr(sd, "arg", None)
    if isinstance(arg, sa.sql.elements.True_):
        return 1
    if isinstance(arg, sa.sql.elements.False_):
        return 0
    if isinstance(arg, str):
        python = getattr(c.type, "python_type", str)
        return int(arg) if python is int else arg
    raise TypeError(f"column {c.table.name}.{c.name}: server default cannot be recorded")


_SHAPES: dict[str, _Shape] = {}


class _TupleShape:
    """Per table and tuple layout (the insert's column order): how to take an image out of a row
    given as a tuple with one C call, and which of the image's values need `norm`."""

    __slots__ = ("shape", "name", "getter", "pk_at", "normed")

    def __init__(self, table: sa.Table, order: tuple[str, ...]) -> None:
        s = shape(table)
        at = {name: i for i, name in enumerate(order)}
        self.shape = s
        self.name = s.name
        wanted = [at[n] for n in s.names]
        # None: the tuple is the image (every column, in the table's order).
        self.getter: Callable[[Sequence[Any]], Sequence[Any]] | None = None
        if wanted != list(range(len(order))):
            # One column: itemgetter would hand back the bare value, not a one-element image.
            self.getter = operator.itemgetter(*wanted) if len(wanted) > 1 else (lambda r, i=wanted[0]: (r[i],))
        self.pk_at = s.pk_at
        self.normed = s.normed


_TUPLE_SHAPES: dict[tuple[str, tuple[str, ...]], _TupleShape | None] = {}


def tuple_shape(table: sa.Table, order: tuple[str, ...]) -> _TupleShape | None:
    """None when rows in this layout cannot be imaged from the tuple alone (an image column or the
    key left out, or a composite key)."""
    k = (table.name, order)
    if k not in _TUPLE_SHAPES:
        s = shape(table)
        whole = set(s.names) <= set(order) and len(s.pk_at) == 1
        _TUPLE_SHAPES[k] = _TupleShape(table, order) if whole else None
    return _TUPLE_SHAPES[k]


def shape(table: sa.Table) -> _Shape:
    s = _SHAPES.get(table.name)
    if s is None:
        s = _SHAPES[table.name] = _Shape(table)
    return s


def is_covered(table: Any) -> bool:
    return isinstance(table, sa.Table) and table.name not in EXEMPT and table.metadata is schema.metadata


# --- the notes a unit of work takes -------------------------------------------------------------


class Capture:
    """The rows one unit of work wrote, gathered while its use case runs."""

    def __init__(self, conn: sa.Connection, portfolio_id: int | None) -> None:
        self.conn = conn
        self.portfolio_id = portfolio_id
        # In the order written: rows given as mappings (_Shape) or as tuples (_TupleShape).
        self.param_rows: list[tuple[_Shape | _TupleShape, Sequence[Any]]] = []
        self.watermarks: dict[str, tuple[sa.Table, int]] = {}
        self.touched: dict[str, tuple[sa.Table, set[Any]]] = {}

    # -- noting statements --
    def inserted(self, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
        pk = [c.name for c in pk_columns(table)]
        if rows and all(all(n in r for n in pk) for r in rows):
            self.param_rows.append((shape(table), rows))
        else:
            self._watermark(table)

    def inserted_tuples(
        self, table: sa.Table, order: tuple[str, ...], rows: Sequence[Sequence[Any]], ts: _TupleShape | None
    ) -> None:
        """`inserted` for rows given as tuples in `order`, whose `tuple_shape` is `ts`."""
        if ts is not None:
            self.param_rows.append((ts, rows))
        else:
            self.inserted(table, [dict(zip(order, r, strict=True)) for r in rows])

    def _watermark(self, table: sa.Table) -> None:
        if table.name in self.watermarks:
            return
        # An id left to the database: one integer key. The portfolio's highest id is enough (ids come
        # from one sequence, so every new row is above it) and, on Citus, asks one shard.
        if self._scoped(table):
            mark = self.conn.execute(_max_id(table, True), {"pid": self.portfolio_id}).scalar_one()
        else:
            mark = self.conn.execute(_max_id(table, False)).scalar_one()
        self.watermarks[table.name] = (table, int(mark))

    def _scoped(self, table: sa.Table) -> bool:
        return "portfolio_id" in table.c and self.portfolio_id is not None

    def changing(self, table: sa.Table, where: Any, params: Sequence[Mapping[str, Any]]) -> None:
        """An UPDATE or DELETE is about to run: note the keys of the rows it touches."""
        _table, keys = self.touched.setdefault(table.name, (table, set()))
        cols = pk_columns(table)
        q = sa.select(*cols)
        if where is not None:
            q = q.where(where)
        if self._scoped(table):  # the unit of work writes only its own portfolio's rows
            q = q.where(table.c.portfolio_id == self.portfolio_id)
        for p in params or [{}]:
            for r in self.conn.execute(q, dict(p)):
                keys.add(r[0] if len(cols) == 1 else tuple(r))

    def reads_back(self) -> bool:
        """Whether taking the manifest reads rows back from the database (else it is built from the
        parameters of the inserts alone)."""
        return bool(self.watermarks or self.touched)

    # -- the manifest --
    def manifest(self, results: Mapping[int, str] | None = None) -> dict[str, Any]:
        """{table: rows} of every row written, each table's rows in one of the two spellings
        `table_rows` reads: `[[key, ...], [image or None, ...]]` (None: deleted) below _COLUMNWISE
        rows (plus `[column, seq column]` as in `_columns` when an outbox row refers to a result),
        column by column (`_columns`) from there on. `results`: the unit of work's result
        texts by audit seq, which its outbox rows repeat (RESULT_OF)."""
        # Per table: its shape, the images in the order written (the last one of a key is the row's
        # final state), and the keys of the rows deleted.
        tables: dict[str, tuple[_Shape, list[Sequence[Any]], list[Any]]] = {}
        for s, rows in self.param_rows:
            images = tables.setdefault(s.name, (s if isinstance(s, _Shape) else s.shape, [], []))[1]
            if isinstance(s, _TupleShape) and s.getter is None:
                images += rows
            elif isinstance(s, _TupleShape) or (all(n in rows[0] for n in s.names) and len(s.pk_at) == 1):
                # The hot path (the journal): every column given, so one C call gathers a row.
                images += map(s.getter, rows)  # type: ignore[arg-type]
            else:
                images += [s.from_params(r)[1] for r in rows]
        for name, (table, mark) in self.watermarks.items():
            s = shape(table)
            scoped = self._scoped(table)
            params = {"mark": mark, "pid": self.portfolio_id} if scoped else {"mark": mark}
            read = self.conn.execute(_after_mark(table, scoped), params)
            tables.setdefault(name, (s, [], []))[1].extend(s.from_row(row)[1] for row in read)
        for name, (table, keys) in self.touched.items():
            s = shape(table)
            _s, images, gone = tables.setdefault(name, (s, [], []))
            wanted = {_norm_key(k) for k in keys}
            pid = self.portfolio_id if self._scoped(table) else None
            for row in _rows_by_keys(self.conn, table, s, list(keys), pid):
                k, d = s.from_row(row)
                images.append(d)
                wanted.discard(k)
            gone += wanted
        out: dict[str, Any] = {}
        for name, (s, images, gone) in sorted(tables.items()):
            if len(images) >= _COLUMNWISE:
                out[name] = _columns(s, images, gone, results or {})
            elif images or gone:
                out[name] = _rows(s, images, gone, results or {})
        return out


_COLUMNWISE = 16
# Types `norm` hands back unchanged.
_SPELLED = frozenset({str, int, type(None)})


def _rows(s: _Shape, images: list[Sequence[Any]], gone: list[Any], results: Mapping[int, str]) -> list[list[Any]]:
    """A few rows: keys and images as two parallel lists, one entry per key (its last image), then
    where a result's reference stands (RESULT_OF) if one does."""
    found: dict[Any, list[Any] | None] = {}
    key_at = s.key_at
    for image in images:
        row = list(image)
        for i in s.normed:
            v = row[i]
            if v is not None and type(v) is not str:
                row[i] = norm(v)
        found[row[key_at] if key_at is not None else s.key(row)] = row
    for k in gone:
        found[k] = None
    out: list[list[Any]] = [list(found), list(found.values())]
    if s.result_at is not None and results:
        at, seq_at = s.result_at
        referred = False
        for row in out[1]:
            if row is not None and row[at] == results.get(row[seq_at]):
                row[at], referred = None, True
        if referred:
            out.append([at, seq_at])
    return out


def _columns(s: _Shape, images: list[Sequence[Any]], gone: list[Any], results: Mapping[int, str]) -> dict[str, Any]:
    """Many rows, column by column: `{"n": rows, "key": [where the key is among the columns],
    "c": [column, ...]}`, plus `"gone": [key, ...]` for rows deleted and `"result": [column, seq
    column]` where that column's nulls stand for the result text of the entry numbered by the seq
    column (RESULT_OF). A column is a list of its n values, or one value that every row holds, or
    `{"from": a}` for the integers a, a+1, ... (ids and sequence numbers drawn in a row). Each
    column is spelled with a few C calls, each distinct value once: a unit of work's rows share
    most of their values (its timestamp, portfolio, action, trade date)."""
    n = len(images)
    columns: list[Sequence[Any]] = list(zip(*images, strict=True))
    normed = set(s.normed)
    out: dict[str, Any] = {"n": n, "key": s.pk_at}
    if s.result_at is not None and results:
        at, seq_at = s.result_at
        texts, expected = columns[at], tuple(map(results.get, columns[seq_at]))
        if texts == expected:
            columns[at] = (None,) * n
        else:
            columns[at] = tuple([None if t == e else t for t, e in zip(texts, expected, strict=True)])
        out["result"] = [at, seq_at]
    out["c"] = [_column(c, n, i in normed) for i, c in enumerate(columns)]
    if gone:
        out["gone"] = [list(k) if type(k) is tuple else k for k in gone]
    return out


def _column(values: Sequence[Any], n: int, normed: bool) -> Any:
    first = values[0]
    if values.count(first) == n:
        return norm(first) if normed else first
    if type(first) is int and values[-1] == first + n - 1 and tuple(values) == tuple(range(first, first + n)):
        return {"from": first}
    if not normed or set(map(type, values)) <= _SPELLED:
        return list(values)
    try:
        spelled = {v: norm(v) for v in set(values)}
    except TypeError:  # an unhashable value (a bytearray): one by one
        return list(map(norm, values))
    return list(map(spelled.__getitem__, values))


def table_rows(rows: Any, results: Mapping[int, str]) -> tuple[list[Any], list[Any]]:
    """(keys, images) of one table's rows in a manifest as JSON gives them back, in either spelling
    (`Capture.manifest`); a composite key is a list, a deleted row's image None. `results`: the result
    texts of the entries of the manifest's unit of work, by audit seq."""
    if type(rows) is list:
        if len(rows) == 2:  # no result referred to (every manifest of few rows written before)
            return rows[0], rows[1]
        keys, images, (at, seq_at) = rows
        for image in images:
            if image is not None and image[at] is None:
                image[at] = results.get(image[seq_at])
        return keys, images
    n = rows["n"]
    columns = [_expand(c, n) for c in rows["c"]]
    if "result" in rows:
        at, seq_at = rows["result"]
        columns[at] = [results.get(q) if t is None else t for t, q in zip(columns[at], columns[seq_at], strict=True)]
    images = list(map(list, zip(*columns, strict=True)))
    key_at = rows["key"]
    if len(key_at) == 1:
        keys = [image[key_at[0]] for image in images]
    else:
        keys = [[image[i] for i in key_at] for image in images]
    gone = rows.get("gone", [])
    return keys + gone, images + [None] * len(gone)


def _expand(column: Any, n: int) -> list[Any]:
    if type(column) is list:
        if len(column) != n:
            raise ValueError(f"a manifest column of {len(column)} values for {n} rows")
        return column
    if type(column) is dict:
        return list(range(column["from"], column["from"] + n))
    return [column] * n


# The read-backs, built once per table so SQLAlchemy's statement cache serves them.
_AFTER_MARK: dict[tuple[str, bool], sa.Select[Any]] = {}
_MAX_ID: dict[tuple[str, bool], sa.Select[Any]] = {}


def _max_id(table: sa.Table, scoped: bool) -> sa.Select[Any]:
    q = _MAX_ID.get((table.name, scoped))
    if q is None:
        (pk,) = pk_columns(table)
        q = sa.select(sa.func.coalesce(sa.func.max(pk), 0))
        if scoped:
            q = q.where(table.c.portfolio_id == sa.bindparam("pid", type_=sa.BigInteger))
        _MAX_ID[(table.name, scoped)] = q
    return q


def _after_mark(table: sa.Table, scoped: bool) -> sa.Select[Any]:
    """A table's rows above an id watermark (of one portfolio when `scoped`)."""
    q = _AFTER_MARK.get((table.name, scoped))
    if q is None:
        (pk,) = pk_columns(table)
        q = sa.select(*shape(table).columns).where(pk > sa.bindparam("mark", type_=sa.BigInteger))
        if scoped:
            q = q.where(table.c.portfolio_id == sa.bindparam("pid", type_=sa.BigInteger))
        _AFTER_MARK[(table.name, scoped)] = q
    return q


def _norm_key(k: Any) -> Any:
    return tuple(norm(v) for v in k) if isinstance(k, tuple) else norm(k)


def _rows_by_keys(
    conn: sa.Connection, table: sa.Table, s: _Shape, keys: list[Any], portfolio_id: int | None
) -> Iterable[Any]:
    cols = pk_columns(table)
    q = sa.select(*s.columns)
    if portfolio_id is not None:  # routed to the portfolio's shard on Citus
        q = q.where(table.c.portfolio_id == portfolio_id)
    if len(cols) == 1:
        for i in range(0, len(keys), 500):
            yield from conn.execute(q.where(cols[0].in_(keys[i : i + 500])))
        return
    for k in keys:
        yield from conn.execute(q.where(*[c == v for c, v in zip(cols, k, strict=True)]))


# --- hooks ----------------------------------------------------------------------------------------

ACTIVE: ContextVar[Capture | None] = ContextVar("alluse_capture", default=None)


@contextmanager
def recording(conn: sa.Connection, portfolio_id: int | None) -> Iterator[Capture]:
    """Note the rows written inside the block (an enclosing recording on the same work is reused)."""
    cap, token = start(conn, portfolio_id)
    try:
        yield cap
    finally:
        stop(token)


def start(conn: sa.Connection, portfolio_id: int | None) -> tuple[Capture, Token[Capture | None] | None]:
    """`recording` without a generator, for every unit of work (a generator's context manager costs
    about 6,000 instructions): the capture, and what `stop` ends it with (None: an enclosing one
    is reused)."""
    outer = ACTIVE.get()
    if outer is not None and outer.conn is conn and outer.portfolio_id == portfolio_id:
        return outer, None
    cap = Capture(conn, portfolio_id)
    return cap, ACTIVE.set(cap)


def stop(token: Token[Capture | None] | None) -> None:
    if token is not None:
        ACTIVE.reset(token)


def classify(stmt: Any) -> tuple[str, sa.Table | None]:
    """What a statement means for the manifest: ("insert"|"change"|"", table)."""
    table = getattr(stmt, "table", None)
    if not is_covered(table):
        return "", None
    if isinstance(stmt, Insert):
        return "insert", table
    if isinstance(stmt, Delete):
        return "change", table
    if isinstance(stmt, Update) and table is not None:
        derived = DERIVED.get(table.name, frozenset())
        values = dict(stmt._values or {}) or dict(getattr(stmt, "_ordered_values", None) or ())
        names = {k if isinstance(k, str) else k.key for k in values}
        return ("change" if not names <= derived else ""), table
    return "", None


def note(cap: Capture, stmt: Any, kind: str, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    if kind == "insert":
        cap.inserted(table, rows)
    else:
        cap.changing(table, stmt.whereclause, rows)


def _statement_rows(stmt: Any, multiparams: Any, params: Any) -> list[dict[str, Any]]:
    base: dict[str, Any] = {}
    for k, v in (getattr(stmt, "_values", None) or {}).items():
        name = k if isinstance(k, str) else k.key
        base[name] = v.value if isinstance(v, BindParameter) else v
    many = list(multiparams or [])
    if params:
        many.append(params)
    return [{**base, **dict(p)} for p in many] or [base]


@event.listens_for(Engine, "before_execute")
def _before_execute(conn: sa.Connection, stmt: Any, multiparams: Any, params: Any, options: Any) -> None:
    cap = ACTIVE.get()
    if cap is None or not isinstance(stmt, (Insert, Update, Delete)):
        return
    kind, table = classify(stmt)
    if not kind or table is None:
        return
    rows = _statement_rows(stmt, multiparams, params)
    if kind == "insert":
        # Read back by key at the end (types as stored), or by watermark when the id is the database's.
        pk = [c.name for c in pk_columns(table)]
        if all(all(n in r and r[n] is not None for n in pk) for r in rows):
            _t, keys = cap.touched.setdefault(table.name, (table, set()))
            for r in rows:
                keys.add(r[pk[0]] if len(pk) == 1 else tuple(r[n] for n in pk))
        else:
            cap._watermark(table)
    else:
        only_binds = [{k: v for k, v in r.items() if k not in _set_names(stmt)} for r in (multiparams or [])]
        cap.changing(table, getattr(stmt, "whereclause", None), only_binds)


def _set_names(stmt: Any) -> set[str]:
    return {k if isinstance(k, str) else k.key for k in (getattr(stmt, "_values", None) or {})}
