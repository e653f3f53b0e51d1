"""The schema as documentation, generated so it cannot drift: the reference part of docs/data-model.md
(every table, column, key, index and constraint, and a Mermaid ERD) and deploy/citus.sql from the Core
metadata, and deploy/schema.sql (the PostgreSQL DDL the migrations produce) from pg_dump of a freshly
migrated scratch database. `alluse schema-docs` rewrites all three; tests fail when any is stale.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from alluse.domain.errors import InvalidInput
from alluse.store.partitioning import (
    DEFAULT_PARTITIONS,
    PARTITIONS_ENV,
    SCOPE_SETTING,
    partition_key,
    postgres_primary_key,
)
from alluse.store.schema import metadata

BEGIN = "<!-- BEGIN GENERATED: `alluse schema-docs` rewrites everything down to END GENERATED -->"
END = "<!-- END GENERATED -->"
_PG, _SQLITE = postgresql.dialect(), sqlite.dialect()


def _type(col: sa.Column, dialect: sa.engine.Dialect) -> str:
    return col.type.compile(dialect=dialect)


def _cols(cols: object) -> str:
    return ", ".join(c.name for c in cols)  # type: ignore[attr-defined]


def _ordered_tables() -> list[sa.Table]:
    return list(metadata.sorted_tables)


def _table_section(t: sa.Table) -> list[str]:
    pk = [c.name for c in t.primary_key.columns]
    by = partition_key(t)
    out = [f"### `{t.name}`", ""]
    if t.comment:
        out += [t.comment, ""]
    out += ["| column | PostgreSQL | SQLite | null | default | key |", "|---|---|---|---|---|---|"]
    for c in t.columns:
        keys = []
        if c.primary_key:
            keys.append("PK")
        keys += [f"FK → {fk.column.table.name}.{fk.column.name}" for fk in sorted(c.foreign_keys, key=str)]
        default = f"`{getattr(c.server_default, 'arg', '')}`" if c.server_default is not None else ""
        if c is t.autoincrement_column:
            default = "auto (sequence / rowid)"
        out.append(
            f"| `{c.name}` | {_type(c, _PG)} | {_type(c, _SQLITE)} | {'yes' if c.nullable else 'no'} | "
            f"{default} | {', '.join(keys)} |"
        )
    out.append("")
    out.append(f"- primary key: ({', '.join(pk)})")
    if by:
        out.append(
            f"- PostgreSQL: hash-partitioned on `{by}` ({PARTITIONS_ENV}, default {DEFAULT_PARTITIONS} partitions "
            f"`{t.name}_p000`…); primary key there: ({', '.join(postgres_primary_key(pk, by))})"
        )
    for con in sorted(t.constraints, key=lambda k: str(k.name)):
        if isinstance(con, sa.UniqueConstraint):
            out.append(f"- unique `{con.name}`: ({_cols(con.columns)})")
    for con in sorted(t.foreign_key_constraints, key=lambda k: str(k.name)):
        target = con.referred_table.name
        out.append(
            f"- foreign key `{con.name}`: ({', '.join(con.column_keys)}) → "
            f"{target} ({', '.join(e.column.name for e in con.elements)})"
        )
    for con in sorted(t.constraints, key=lambda k: str(k.name)):
        if isinstance(con, sa.CheckConstraint):
            out.append(f"- check `{con.name}`: `{con.sqltext}`")
    for ix in sorted(t.indexes, key=lambda i: str(i.name)):
        out.append(f"- index `{ix.name}`: ({_cols(ix.columns)}){' unique' if ix.unique else ''}")
    if t.info.get("citus") == "reference":  # read across portfolios (store/schema.py)
        out.append(
            f"- row-level security (PostgreSQL): every row readable; policy `portfolio_scope` on "
            f"`{_scope_column(t)}` for inserts; no updates or deletes"
        )
    else:
        out.append(f"- row-level security (PostgreSQL): policy `portfolio_scope` on `{_scope_column(t)}`")
    out.append("")
    return out


def _scope_column(t: sa.Table) -> str:
    return "id" if t.name == "portfolios" else "portfolio_id"


def _mermaid_type(c: sa.Column) -> str:
    return re.sub(r"\(.*\)", "", _type(c, _PG)).replace(" ", "_").lower()


def _erd() -> list[str]:
    out = ["```mermaid", "erDiagram"]
    for t in _ordered_tables():
        out.append(f"    {t.name} {{")
        for c in t.columns:
            keys = []
            if c.primary_key:
                keys.append("PK")
            if c.foreign_keys:
                keys.append("FK")
            if any(
                isinstance(k, sa.UniqueConstraint) and len(k.columns) == 1 and c.name in k.columns
                for k in t.constraints
            ):
                keys.append("UK")
            out.append(f"        {_mermaid_type(c)} {c.name}{' ' + ', '.join(keys) if keys else ''}")
        out.append("    }")
    for t in _ordered_tables():
        for con in sorted(t.foreign_key_constraints, key=lambda k: str(k.name)):
            own = [c for c in con.column_keys if c != "portfolio_id"] or con.column_keys
            optional = any(t.c[c].nullable for c in own)
            left = "|o" if optional else "||"
            out.append(f'    {con.referred_table.name} {left}--o{{ {t.name} : "{", ".join(own)}"')
    out.append("```")
    return out


def render_data_model() -> str:
    """The generated part of docs/data-model.md, markers included."""
    lines = [BEGIN, "", "## Entity-relationship diagram", ""]
    lines += _erd()
    lines += ["", "## Tables", ""]
    for t in _ordered_tables():
        lines += _table_section(t)
    lines.append(END)
    return "\n".join(lines) + "\n"


def update_data_model(path: Path) -> str:
    """`path` with its generated part replaced by the current one (the hand-written parts kept)."""
    text = path.read_text()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise InvalidInput(f"{path} has no generated section ({BEGIN!r} … {END!r})")
    return text[:start] + render_data_model() + text[end + len(END) + 1 :]


CITUS_KEYS_BEGIN = "-- 1. Keys"
CITUS_KEYS_END = "-- 2. Distribution"


def _distribution_column(t: sa.Table) -> str:
    return "id" if t.name == "portfolios" else "portfolio_id"


def reference_tables() -> list[sa.Table]:
    """Tables that belong to no portfolio (users and their API keys), and those read across portfolios
    (`brokerage_numbers`, marked in store/schema.py): Citus reference tables, copied to every worker,
    so a distributed table may keep a foreign key to them and a key on them is checked on every node."""
    return [
        t
        for t in _ordered_tables()
        if t.info.get("citus") == "reference" or (t.name != "portfolios" and "portfolio_id" not in t.c)
    ]


def _pg_pk(t: sa.Table) -> list[str]:
    pk = [c.name for c in t.primary_key.columns]
    by = partition_key(t)
    return postgres_primary_key(pk, by) if by else pk


def citus_key_changes() -> list[tuple[str, str]]:
    """(statement, why) for every key Citus would refuse: each primary and unique key must contain the
    distribution column. A key on a globally unique id gains portfolio_id (same rows stay unique); a
    key on a natural value (a name, a brokerage number) cannot be checked across shards and is dropped."""
    out = []
    reference = reference_tables()
    for t in _ordered_tables():
        if t in reference:
            continue
        dist = _distribution_column(t)
        pk = _pg_pk(t)
        uniques = [k for k in t.constraints if isinstance(k, sa.UniqueConstraint)]
        if dist not in pk:
            name = t.primary_key.name
            if any({c.name for c in k.columns} == {*pk, dist} for k in uniques):
                out.append((f"ALTER TABLE {t.name} DROP CONSTRAINT {name};", f"({', '.join([*pk, dist])}) is the key"))
            else:
                cols = ", ".join([*pk, dist])
                out.append(
                    (f"ALTER TABLE {t.name} DROP CONSTRAINT {name}, ADD CONSTRAINT {name} PRIMARY KEY ({cols});", "")
                )
        for k in sorted(uniques, key=lambda k: str(k.name)):
            names = [c.name for c in k.columns]
            if dist in names or set(names) == {*pk, dist}:
                continue
            if any(c == "id" or c.endswith("_id") for c in names):
                out.append(
                    (
                        f"ALTER TABLE {t.name} DROP CONSTRAINT {k.name}, "
                        f"ADD CONSTRAINT {k.name} UNIQUE ({', '.join([*names, dist])});",
                        "ids are unique anyway",
                    )
                )
            else:
                out.append(
                    (
                        f"ALTER TABLE {t.name} DROP CONSTRAINT {k.name};",
                        "not enforceable across shards: see docs/scaling.md",
                    )
                )
    return out


def _fk_sql(t: sa.Table, fk: sa.ForeignKeyConstraint) -> str:
    cols = ", ".join(fk.column_keys)
    ref = ", ".join(e.column.name for e in fk.elements)
    on_delete = f" ON DELETE {fk.ondelete}" if fk.ondelete else ""
    return (
        f"ALTER TABLE {t.name} ADD CONSTRAINT {fk.name} FOREIGN KEY ({cols}) "
        f"REFERENCES {fk.referred_table.name} ({ref}){on_delete};"
    )


def citus_parked_keys() -> list[tuple[sa.Table, sa.ForeignKeyConstraint]]:
    """Foreign keys dropped while the tables are distributed and re-added after: the ones in a cycle,
    and every key into a reference table. Citus refuses a foreign key from a local table to a
    reference table unless it first turns every table linked to it into a Citus local table, which a
    partitioned table with CHECK constraints cannot be."""
    reference = {t.name for t in reference_tables()}
    return [
        (t, fk)
        for t in _ordered_tables()
        for fk in sorted(t.foreign_key_constraints, key=lambda k: str(k.name))
        if fk.use_alter or fk.referred_table.name in reference
    ]


# The directory view (store/schema.py) and the table it reads across portfolios.
DIRECTORIES = {"portfolio_directory": "portfolios"}


def _citus_directories() -> list[str]:
    """On plain PostgreSQL a view reads its table with its owner's rights, past row-level security.
    On Citus the shard queries behind a view go to the workers as the calling role, whose policies
    then hide every other portfolio; a SECURITY DEFINER function runs them as the owner instead."""
    from alluse.store import schema

    out = []
    for view, table in DIRECTORIES.items():
        cols = [c.name for c in getattr(schema, view).columns]
        types = {c: _type(metadata.tables[table].c[c], _PG) for c in cols}
        typed = ", ".join(f"{c} {t}" for c, t in types.items())
        casts = ", ".join(f"{c}::{t} AS {c}" for c, t in types.items())
        out += [
            f"CREATE FUNCTION alluse_{view}() RETURNS TABLE ({typed})",
            "  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public",
            f"  AS $$ SELECT {', '.join(cols)} FROM {table} $$;",
            # The casts keep the view's column types (a function's result drops their lengths).
            f"CREATE OR REPLACE VIEW {view} AS SELECT {casts} FROM alluse_{view}();",
        ]
    return out


def render_citus_sql() -> str:
    lines = [
        "-- Distributing the alluse schema with Citus: every table by portfolio_id (portfolios by id), all",
        "-- colocated, so one portfolio's rows live on one worker and every foreign key stays shard-local.",
        "-- Generated by `alluse schema-docs` from the schema metadata; do not edit.",
        "-- Run once on the coordinator of a Citus 13.2 cluster, after `alluse` migrated the database there;",
        "-- the database and the citus extension must already exist on every node (docs/scaling.md).",
        "",
        "BEGIN;",
        f"{CITUS_KEYS_BEGIN}: Citus needs the distribution column in every primary and unique key.",
    ]
    for stmt, why in citus_key_changes():
        lines.append(stmt + (f"  -- {why}" if why else ""))
    parked = citus_parked_keys()
    lines.append("-- Foreign keys in a cycle or into a reference table: dropped here, re-added after distribution.")
    for t, fk in parked:
        lines.append(f"ALTER TABLE {t.name} DROP CONSTRAINT {fk.name};")
    lines += ["COMMIT;", "", f"{CITUS_KEYS_END}, in foreign-key order (referenced tables first)."]
    reference = reference_tables()
    for t in reference:
        lines.append(f"SELECT create_reference_table('{t.name}');")
    for t in _ordered_tables():
        if t in reference:
            continue
        if t.name == "portfolios":
            lines.append("SELECT create_distributed_table('portfolios', 'id');")
        else:
            lines.append(f"SELECT create_distributed_table('{t.name}', 'portfolio_id', colocate_with => 'portfolios');")
    # Sequential: a key into a reference table may not follow a parallel one in the same transaction.
    lines += ["BEGIN;", "SET LOCAL citus.multi_shard_modify_mode TO 'sequential';"]
    lines += [_fk_sql(t, fk) for t, fk in parked]
    lines += [
        "COMMIT;",
        "",
        "-- 3. The portfolio directory (which portfolio has which name) reads every shard.",
        *_citus_directories(),
        "",
        "-- 4. Row-level security on the workers: each unit of work scopes itself with SET LOCAL",
        f"-- {SCOPE_SETTING}; the coordinator repeats SET LOCAL on every worker connection of the",
        "-- transaction, where the shards' policies read it (new sessions pick this up).",
        "DO $$ BEGIN",
        "  EXECUTE format('ALTER DATABASE %I SET citus.propagate_set_commands = local', current_database());",
        "END $$;",
        "",
        "-- 5. Stays on the coordinator: alembic_version (local table).",
    ]
    return "\n".join(lines) + "\n"


def normalise_dump(dump: str) -> str:
    """pg_dump output minus what varies between runs and servers (comments, SET lines, \\restrict keys)."""
    keep = []
    for line in dump.splitlines():
        if line.startswith(("--", "SET ", "SELECT pg_catalog.set_config", "\\")):
            continue
        keep.append(line.rstrip())
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(keep)).strip()
    header = (
        "-- The PostgreSQL schema the Alembic migrations produce (default partition count).\n"
        "-- Generated by `alluse schema-docs` (pg_dump --schema-only of a freshly migrated database); do not edit.\n"
    )
    return header + "\n" + text + "\n"


def dump_postgres_schema(url: str) -> str:
    """Migrate a scratch database `<name>_schema` next to `url`, pg_dump its schema, drop it."""
    from alluse.store.db import make_engine, migrate

    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise InvalidInput("pg_dump is not on PATH: install the PostgreSQL client to regenerate deploy/schema.sql")
    target = sa.engine.make_url(url)
    if not target.drivername.startswith("postgresql"):
        raise InvalidInput("deploy/schema.sql is generated from PostgreSQL: give a postgresql+psycopg:// URL")
    scratch = target.set(database=f"{target.database}_schema")
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{scratch.database}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{scratch.database}"')
    saved = os.environ.get(PARTITIONS_ENV)
    os.environ[PARTITIONS_ENV] = str(DEFAULT_PARTITIONS)
    engine = make_engine(scratch.render_as_string(hide_password=False))
    try:
        migrate(engine)
        engine.dispose()
        env = {**os.environ, "PGPASSWORD": scratch.password or ""}
        args = [pg_dump, "--schema-only", "--no-owner", "-h", scratch.host or "localhost"]
        args += ["-p", str(scratch.port or 5432), "-U", scratch.username or "postgres", scratch.database or ""]
        dump = subprocess.run(args, check=True, capture_output=True, text=True, env=env).stdout
    finally:
        if saved is None:
            os.environ.pop(PARTITIONS_ENV, None)
        else:
            os.environ[PARTITIONS_ENV] = saved
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{scratch.database}" WITH (FORCE)')
        admin.dispose()
    return normalise_dump(dump)
