"""Which portfolio a unit of work acts on, and scoping its transaction to it.

Both the unit of work (`store/uow.py`) and the queries (`store/repo.py`) need this; it lives here so
neither imports the other for it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import sqlalchemy as sa

from alluse.domain.errors import InvalidInput, NotFound
from alluse.store.partitioning import SCOPE_SETTING
from alluse.store.prepared import Prepared
from alluse.store.schema import cli_defaults, portfolio_directory

PortfolioRef = str | int | None


def scope_to(conn: sa.Connection, portfolio_id: int) -> None:
    """Scope the current transaction to one portfolio: on PostgreSQL the row-level security policies
    then hide every other portfolio's rows from the application role. Transaction-local, so a pooled
    connection never carries a scope into the next unit of work. `SET LOCAL`, not set_config(): on
    Citus (citus.propagate_set_commands = 'local', set by deploy/citus.sql) it is the form the
    coordinator repeats on every worker the transaction reaches, where the shards' policies read it."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL {SCOPE_SETTING} = '{int(portfolio_id)}'")


def is_id(text: str) -> bool:
    # ASCII digits only ("²".isdigit() is true but int() refuses it), and within a BIGINT.
    return text.isascii() and text.isdigit() and len(text) < 19


def did_you_mean(text: str, names: Iterable[str]) -> str:
    """ "; did you mean A1-GEN?" with the closest names to a mistyped one, or "" when none is close."""
    by_upper = {n.upper(): n for n in names}
    close = difflib.get_close_matches(text.upper(), list(by_upper), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(by_upper[c] for c in close)}?" if close else ""


def resolve_portfolio(conn: sa.Connection, ref: PortfolioRef) -> int:
    """A portfolio by id or name; with none given, the only portfolio there is. An int is taken as
    an id as it stands (the unit of work's portfolio lock checks it exists). The transaction is then
    scoped to that portfolio (row-level security on PostgreSQL)."""
    if conn.dialect.name == "postgresql" and isinstance(ref, str) and ref.strip():
        # Found and scoped in one round trip (the usual case: a portfolio named by the caller).
        text = ref.strip()
        found = (_SCOPED_BY_ID.first(conn, id=int(text)) if is_id(text) else
                 _SCOPED_BY_NAME.first(conn, name=text))  # fmt: skip
        if found is not None:
            return int(found[0])
    pid = _lookup_portfolio(conn, ref)
    scope_to(conn, pid)
    return pid


def _lookup_portfolio(conn: sa.Connection, ref: PortfolioRef) -> int:
    # Through the directory view: it lists every portfolio whatever the transaction's scope.
    if isinstance(ref, int):
        return ref
    if ref is None or ref.strip() == "":
        chosen = conn.execute(sa.select(cli_defaults.c.value).where(cli_defaults.c.name == DEFAULT_PORTFOLIO)).scalar()
        if chosen is not None:
            found = _PORTFOLIO_BY_NAME.first(conn, name=chosen)
            if found is not None:
                return int(found[0])
        names = conn.execute(sa.select(portfolio_directory.c.name).order_by(portfolio_directory.c.id)).scalars().all()
        if not names:
            raise NotFound("no portfolio yet: run `alluse init` (or `alluse demo`) first")
        if len(names) > 1:
            raise InvalidInput(
                f"several portfolios exist ({', '.join(names[:10])}): choose the default with `alluse use NAME` "
                "or name one with --portfolio"
            )
        ref = names[0]
    text = str(ref).strip()
    if is_id(text):
        found = _PORTFOLIO_BY_ID.first(conn, id=int(text))
    else:
        found = _PORTFOLIO_BY_NAME.first(conn, name=text)
    if found is None:
        hint = did_you_mean(text, conn.execute(sa.select(portfolio_directory.c.name)).scalars())
        raise NotFound(f"no portfolio {text!r}{hint}")
    return int(found[0])


# The name, in cli_defaults, of the portfolio a command acts on when none is named.
DEFAULT_PORTFOLIO = "portfolio"


def set_default_portfolio(conn: sa.Connection, name: str) -> None:
    d = cli_defaults.c
    if conn.execute(sa.select(d.value).where(d.name == DEFAULT_PORTFOLIO)).first() is None:
        conn.execute(cli_defaults.insert().values(name=DEFAULT_PORTFOLIO, value=name))
    else:
        conn.execute(cli_defaults.update().where(d.name == DEFAULT_PORTFOLIO).values(value=name))


# Every unit of work named by portfolio starts here: prepared, like the rest of the hot path.
_PORTFOLIO_BY_ID = Prepared(sa.select(portfolio_directory.c.id).where(portfolio_directory.c.id == sa.bindparam("id")))
_PORTFOLIO_BY_NAME = Prepared(
    sa.select(portfolio_directory.c.id).where(portfolio_directory.c.name == sa.bindparam("name"))
)

_SCOPE_FOUND = sa.func.set_config(SCOPE_SETTING, sa.cast(portfolio_directory.c.id, sa.String), True)
_SCOPED_BY_ID = Prepared(
    sa.select(portfolio_directory.c.id, _SCOPE_FOUND).where(portfolio_directory.c.id == sa.bindparam("id"))
)
_SCOPED_BY_NAME = Prepared(
    sa.select(portfolio_directory.c.id, _SCOPE_FOUND).where(portfolio_directory.c.name == sa.bindparam("name"))
)
