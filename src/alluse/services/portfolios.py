"""Creating a portfolio: the isolation boundary everything else lives in."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from alluse.domain.errors import Conflict, InvalidInput
from alluse.domain.ledger import BANK
from alluse.domain.rules import TEMPLATE_ALLOCATION, TEMPLATES
from alluse.store import rowlog
from alluse.store.repo import allocate_ids, external_account
from alluse.store.schema import portfolio_directory, portfolios
from alluse.store.scope import resolve_portfolio, scope_to, set_default_portfolio
from alluse.store.uow import Request, Tx, validate_key, write_connection, write_on

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9 _.-]{0,99}$")


def create_portfolio(engine: Engine, actor: str, name: str, key: str, template: str = "moderate") -> dict[str, Any]:
    name = name.strip()
    if not NAME_RE.match(name):
        raise InvalidInput("portfolio name must start with a letter and use letters, digits, space, _ . -")
    if template not in TEMPLATES:
        raise InvalidInput(f"unknown template {template!r}; choose one of {', '.join(TEMPLATES)}")
    key = validate_key(key)
    alloc = TEMPLATE_ALLOCATION[template]
    with write_connection(engine) as conn, conn.begin():
        d = portfolio_directory.c
        existing = conn.execute(
            sa.select(d.id, d.name, d.creation_key).where(sa.or_(d.creation_key == key, d.name == name))
        ).first()
        if existing is not None:
            if existing.creation_key == key and existing.name == name:
                return {"portfolio_id": existing.id, "name": existing.name, "replayed": True}
            raise Conflict(f"a portfolio named {existing.name!r} or created with key {key!r} already exists")
        now = datetime.now(UTC)
        # The id first, so the row is inserted inside its own scope (row-level security on PostgreSQL).
        pid = allocate_ids(conn, portfolios, 1)
        scope_to(conn, pid)

        def apply(tx: Tx, _reqs: list[Request]) -> list[dict[str, Any]]:
            external_account(tx.conn, tx.portfolio_id, BANK, tx.now)
            return [{"portfolio_id": tx.portfolio_id, "name": name, "template": template}]

        payload = {"name": name, "template": template}
        # The portfolio row goes into the manifest of its first audit entry.
        with rowlog.recording(conn, pid):
            conn.execute(
                portfolios.insert().values(
                    id=pid,
                    name=name,
                    creation_key=key,
                    template=template,
                    alloc_gen_bps=alloc.gen_bps,
                    alloc_rev_bps=alloc.rev_bps,
                    alloc_com_bps=alloc.com_bps,
                    created_at=now,
                )
            )
            return write_on(conn, pid, actor, "portfolio.create", [Request(key, payload)], apply, None)[0]


def use_portfolio(engine: Engine, ref: str) -> str:
    """Make `ref` (a name or id) the portfolio that commands act on when none is named; returns its name.
    A preference of this database's command line, not a change to any portfolio: nothing is audited."""
    if not ref.strip():
        raise InvalidInput("name the portfolio to use")
    with write_connection(engine) as conn, conn.begin():
        pid = resolve_portfolio(conn, ref)
        name = conn.execute(sa.select(portfolio_directory.c.name).where(portfolio_directory.c.id == pid)).scalar_one()
        set_default_portfolio(conn, name)
    return str(name)
