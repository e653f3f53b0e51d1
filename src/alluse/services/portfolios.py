"""Creating a portfolio: the isolation boundary everything else lives in."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import NotRequired, TypedDict, cast

from sqlalchemy.engine import Engine

from alluse.domain.errors import Conflict, InvalidInput
from alluse.domain.ledger import BANK
from alluse.domain.rules import TEMPLATE_ALLOCATION, TEMPLATES
from alluse.store import portfolios as store
from alluse.store import rowlog
from alluse.store.repo import allocate_ids, external_account
from alluse.store.schema import portfolios
from alluse.store.scope import resolve_portfolio, scope_to, set_default_portfolio
from alluse.store.uow import Request, Tx, validate_key, write_connection, write_on

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9 _.-]{0,99}$")


class PortfolioCreated(TypedDict):
    portfolio_id: int
    name: str
    template: NotRequired[str]
    replayed: NotRequired[bool]


def create_portfolio(engine: Engine, actor: str, name: str, key: str, template: str = "moderate") -> PortfolioCreated:
    name = name.strip()
    if not NAME_RE.match(name):
        raise InvalidInput("portfolio name must start with a letter and use letters, digits, space, _ . -")
    if template not in TEMPLATES:
        raise InvalidInput(f"unknown template {template!r}; choose one of {', '.join(TEMPLATES)}")
    key = validate_key(key)
    alloc = TEMPLATE_ALLOCATION[template]
    with write_connection(engine) as conn, conn.begin():
        existing = store.portfolio_by_key_or_name(conn, key, name)
        if existing is not None:
            if existing.creation_key == key and existing.name == name:
                return {"portfolio_id": existing.id, "name": existing.name, "replayed": True}
            raise Conflict(f"a portfolio named {existing.name!r} or created with key {key!r} already exists")
        now = datetime.now(UTC)
        # The id first, so the row is inserted inside its own scope (row-level security on PostgreSQL).
        pid = allocate_ids(conn, portfolios, 1)
        scope_to(conn, pid)

        def apply(tx: Tx, _reqs: list[Request]) -> list[PortfolioCreated]:
            external_account(tx.conn, tx.portfolio_id, BANK, tx.now)
            return [{"portfolio_id": tx.portfolio_id, "name": name, "template": template}]

        payload = {"name": name, "template": template}
        # The portfolio row goes into the manifest of its first audit entry.
        with rowlog.recording(conn, pid):
            store.insert_portfolio(conn, pid, name, key, template, alloc, now)
            created = write_on(conn, pid, actor, "portfolio.create", [Request(key, payload)], apply, None)[0]
            return cast(PortfolioCreated, created)


def use_portfolio(engine: Engine, ref: str) -> str:
    """Make `ref` (a name or id) the portfolio that commands act on when none is named; returns its name.
    A preference of this database's command line, not a change to any portfolio: nothing is audited."""
    if not ref.strip():
        raise InvalidInput("name the portfolio to use")
    with write_connection(engine) as conn, conn.begin():
        pid = resolve_portfolio(conn, ref)
        name = store.portfolio_name(conn, pid)
        set_default_portfolio(conn, name)
    return name
