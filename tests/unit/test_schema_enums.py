"""The database's `CHECK … IN (…)` lists are the domain's enums. store/schema.py builds them from the
enums; the frozen migrations wrote them out once, so a new enum member fails here until a migration
widens the list."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import sqlalchemy as sa

from alluse.domain.access import Role
from alluse.domain.accounts import AccountKind, AccountStatus, GroupKind, GroupStatus
from alluse.domain.events import DeliveryStatus
from alluse.domain.instruments import InstrumentKind
from alluse.domain.lifecycle import EarmarkPurpose, Rule
from alluse.domain.lots import Side, Term
from alluse.domain.protocol import OrderStatus, WeekType
from alluse.store.schema import metadata

ROLES = [r.name for r in Role]  # stored by name: the role's number is its rank
ENUMS: dict[tuple[str, str], Iterable[str]] = {
    ("account_groups", "kind"): GroupKind,
    ("account_groups", "status"): GroupStatus,
    ("accounts", "kind"): AccountKind,
    ("accounts", "status"): AccountStatus,
    ("instruments", "kind"): InstrumentKind,
    ("lots", "side"): Side,
    ("lot_closes", "term"): Term,
    ("weeks", "predicted"): WeekType,
    ("weeks", "confirmed"): WeekType,
    ("portfolio_roles", "role"): ROLES,
    ("api_key_scopes", "role"): ROLES,
    ("lifecycle_actions", "rule"): Rule,
    ("earmarks", "purpose"): EarmarkPurpose,
    ("webhook_deliveries", "status"): DeliveryStatus,
    ("order_intents", "status"): OrderStatus,
}
IN_LIST = re.compile(r"^\s*(\w+) IN \(([^)]*)\)\s*$")


def _lists(checks: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[str]]:
    out = {}
    for table, text in checks:
        if m := IN_LIST.match(text):
            out[(table, m[1])] = [v.strip().strip("'") for v in m[2].split(",")]
    return out


def _expected() -> dict[tuple[str, str], list[str]]:
    return {k: [str(v) for v in values] for k, values in ENUMS.items()}


def test_every_in_list_of_the_schema_is_an_enum() -> None:
    checks = [
        (t.name, str(c.sqltext))
        for t in metadata.tables.values()
        for c in t.constraints
        if isinstance(c, sa.CheckConstraint)
    ]
    assert _lists(checks) == _expected()


def test_the_migrations_wrote_the_same_lists(sqlite_template: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{sqlite_template}")
    inspector = sa.inspect(engine)
    checks = [(t, c["sqltext"]) for t in inspector.get_table_names() for c in inspector.get_check_constraints(t)]
    engine.dispose()
    assert _lists(checks) == _expected()
