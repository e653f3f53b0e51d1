"""store/schema.py builds each table on first use: a read builds the tables it names (and those their
keys reference), not the whole schema (`alluse accounts` reads the tree at every start); in whatever order the tables are first asked for, the schema
is the same, table for table, constraint for constraint."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Prints every table's DDL for both dialects, its indexes and its constraints' names, after first
# asking for the tables named on the command line, in that order.
DUMP = """
import json, sys
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateIndex, CreateTable
from alluse.store import schema
for name in sys.argv[1:]:
    getattr(schema, name)
out = {"sorted": [t.name for t in schema.metadata.sorted_tables]}
for t in schema.metadata.tables.values():
    out[t.name] = [
        *(str(CreateTable(t).compile(dialect=d)) for d in (postgresql.dialect(), sqlite.dialect())),
        *sorted(str(CreateIndex(ix).compile(dialect=postgresql.dialect())) for ix in t.indexes),
        *sorted(f"{type(c).__name__} {c.name}" for c in t.constraints),
        json.dumps(t.info, sort_keys=True),
    ]
print(json.dumps(out))
"""


def _schema(*first: str) -> dict[str, list[str]]:
    done = subprocess.run([sys.executable, "-c", DUMP, *first], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_the_schema_is_the_same_whichever_table_is_built_first() -> None:
    whole = _schema()
    assert len(whole) == 1 + 36
    for first in (["webhook_deliveries", "accounts"], ["lot_closes", "cli_defaults", "users"]):
        assert _schema(*first) == whole, first


READ = """
import json, sys
from alluse.views.accounts import account_tree
from alluse.store import schema
print(json.dumps({"built": sorted(n for n in ("accounts", "account_groups", "brokerage_accounts", "portfolios",
                                              "postings", "transfers", "alerts", "lifecycle_actions", "fills",
                                              "events", "users", "order_intents")
                                  if n in vars(schema)),
                  "modules": sorted(m for m in sys.modules if m.startswith("alluse.domain."))}))
"""


def test_the_account_tree_builds_only_the_tables_it_reads() -> None:
    done = subprocess.run([sys.executable, "-c", READ], capture_output=True, text=True, check=True)
    found = json.loads(done.stdout)
    assert found["built"] == ["account_groups", "accounts", "brokerage_accounts", "portfolios"]
    # The enums of other tables' CHECK lists live in domain modules a read of accounts has no use for.
    assert not {"alluse.domain.lifecycle", "alluse.domain.protocol", "alluse.domain.lots"} & set(found["modules"])


def test_a_name_that_is_no_table_is_an_import_error() -> None:
    with pytest.raises(ImportError):
        from alluse.store.schema import acounts  # noqa: F401
