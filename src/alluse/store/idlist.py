"""`column IN <a list of ids>` bound as one parameter, so a statement over any number of accounts is
compiled once and can be prepared.

SQLAlchemy's `in_()` with a list writes one placeholder per id: every call compiles the statement
again (or expands it after compiling), and a list longer than SQLite's parameter limit has to be cut
into chunks. Here the list travels as one value: a JSON array read back with `json_each` on SQLite,
a `bigint[]` compared with `= ANY` on PostgreSQL (Citus routes either one by the `portfolio_id` the
statement names beside it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler


class IdList(sa.types.TypeDecorator[list[int]]):
    """A list of integer ids as one bound value."""

    impl = sa.types.String
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        return dialect.type_descriptor(sa.ARRAY(sa.BigInteger) if dialect.name == "postgresql" else sa.String())

    def process_bind_param(self, value: Iterable[int] | None, dialect: sa.Dialect) -> Any:
        ids = [int(i) for i in value or ()]
        return json.dumps(ids) if dialect.name == "sqlite" else ids


class InIds(sa.sql.expression.ColumnElement[bool]):
    """`column IN ids`, where `ids` is a bind parameter of type `IdList`."""

    inherit_cache = True
    type = sa.Boolean()
    # A condition in its own right: without this, SQLite (no native boolean) gets `(… IN …) = 1`,
    # which its planner cannot use an index for.
    _is_implicitly_boolean = True

    def __init__(self, column: sa.ColumnElement[Any], name: str) -> None:
        self.column = column
        self.ids = sa.bindparam(name, type_=IdList())


@compiles(InIds)
def _in_json_array(element: InIds, compiler: SQLCompiler, **kw: Any) -> str:
    column, ids = compiler.process(element.column, **kw), compiler.process(element.ids, **kw)
    return f"{column} IN (SELECT value FROM json_each({ids}))"


@compiles(InIds, "postgresql")
def _any_of_array(element: InIds, compiler: SQLCompiler, **kw: Any) -> str:
    column, ids = compiler.process(element.column, **kw), compiler.process(element.ids, **kw)
    return f"{column} = ANY({ids})"


def in_ids(column: sa.ColumnElement[Any], name: str = "ids") -> InIds:
    return InIds(column, name)
