"""The schema, as SQLAlchemy Core metadata. Alembic migrations create exactly this; a test keeps
docs/data-model.md (and its ERD) in sync with it.

Every table carries `portfolio_id`: a portfolio is the isolation boundary and the future shard key.

Each table is built the first time it is asked for (`from alluse.store.schema import accounts`),
together with the tables its foreign keys reference; `metadata` is the whole schema, every table
built. Building all 36 tables, and importing the domain modules whose enums their CHECK lists name,
was an eighth of the work of a command-line start that reads four of them (`alluse accounts`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

import sqlalchemy as sa

from alluse.store.partitioning import hash_partitioned

_metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
# Each table's definition by its name, in the order they are written below.
_DEFINITIONS: dict[str, Callable[[], sa.Table]] = {}
# Two threads asking for the same new table would both define it, which SQLAlchemy refuses.
_BUILDING = threading.RLock()
# Declared for type checkers; bound on first use by __getattr__.
metadata: sa.MetaData


def __getattr__(name: str) -> sa.Table:
    """A table of the schema by its name, built on first use; `metadata` with every table built."""
    if name == "metadata":
        with _BUILDING:
            for table in _DEFINITIONS:
                _built(table)
            globals()["metadata"] = _metadata
        return _metadata  # type: ignore[return-value]
    if name not in _DEFINITIONS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _BUILDING:
        return _built(name)


def _built(name: str) -> sa.Table:
    table = globals().get(name)
    if table is None:
        table = globals()[name] = _DEFINITIONS[name]()
        # A foreign key names its table by name, resolved when used (a join without its condition, a
        # CREATE): those tables are built too, so whatever the key needs is there.
        for fk in table.foreign_keys:
            _built(fk.target_fullname.split(".")[0])
    return table


def _table(define: Callable[[], sa.Table]) -> Callable[[], sa.Table]:
    _DEFINITIONS[define.__name__.removeprefix("_")] = define
    return define


# SQLite only aliases rowid (fast, auto-assigned) for a column declared exactly INTEGER PRIMARY KEY.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Cents = sa.BigInteger
Bps = sa.Integer
Timestamp = sa.DateTime(timezone=True)


def _pk() -> sa.Column:
    return sa.Column("id", Id, primary_key=True, autoincrement=True)


def _portfolio_fk() -> sa.Column:
    return sa.Column("portfolio_id", Id, sa.ForeignKey("portfolios.id"), nullable=False)


def _scoped_fk(column: str, target: str) -> sa.ForeignKeyConstraint:
    """A reference inside one portfolio: the key carries portfolio_id, so a row can never point at
    another portfolio's row, and the schema stays distributable by portfolio_id (Citus)."""
    return sa.ForeignKeyConstraint([column, "portfolio_id"], [f"{target}.id", f"{target}.portfolio_id"])


def one_of(column: str, values: Iterable[str]) -> sa.CheckConstraint:
    """`column IN (…)` listing a domain enum's values in declaration order, so the database accepts
    exactly what the domain has (the migrations that created a list are frozen; a unit test checks
    they still agree). The constraint is named after the column."""
    listed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({listed})", name=column)


def _scoped_target() -> sa.UniqueConstraint:
    # What _scoped_fk references; also the key a distributed (Citus) table needs.
    return sa.UniqueConstraint("id", "portfolio_id")


def _allocation_columns() -> list[sa.Column]:
    return [
        sa.Column("alloc_gen_bps", Bps, nullable=False),
        sa.Column("alloc_rev_bps", Bps, nullable=False),
        sa.Column("alloc_com_bps", Bps, nullable=False),
    ]


@_table
def _portfolios() -> sa.Table:
    return sa.Table(
        "portfolios",
        _metadata,
        _pk(),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("creation_key", sa.String(200), nullable=False, unique=True),
        sa.Column("template", sa.String(20), nullable=False),
        *_allocation_columns(),
        # Head of this portfolio's hash-chained audit log; updating it serialises writes per portfolio.
        sa.Column("audit_seq", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("audit_head", sa.String(64), nullable=False, server_default=""),
        # Sequence number of this portfolio's newest outbox event (events.seq); bumped by each unit of work.
        sa.Column("event_seq", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", Timestamp, nullable=False),
        # The portfolio's lifecycle settings that differ from the method's defaults (JSON object, validated
        # by domain.lifecycle.LifecycleConfig before it is stored).
        sa.Column("lifecycle", sa.Text, nullable=False, server_default="{}"),
        sa.CheckConstraint("alloc_gen_bps + alloc_rev_bps + alloc_com_bps = 10000", name="allocation_sums_to_100"),
    )


@_table
def _account_groups() -> sa.Table:
    from alluse.domain.accounts import GroupKind, GroupStatus

    return sa.Table(
        "account_groups",
        _metadata,
        _pk(),
        _portfolio_fk(),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("parent_group_id", Id, nullable=True),
        sa.Column("forked_from_account_id", Id, nullable=True),
        *_allocation_columns(),
        sa.Column("opened_at", Timestamp, nullable=False),
        sa.UniqueConstraint("portfolio_id", "name"),
        sa.Index(None, "portfolio_id", "kind"),  # naming the next PRIMARY group counts the portfolio's
        _scoped_target(),
        _scoped_fk("parent_group_id", "account_groups"),
        sa.ForeignKeyConstraint(
            ["forked_from_account_id", "portfolio_id"], ["accounts.id", "accounts.portfolio_id"], use_alter=True
        ),
        one_of("kind", GroupKind),
        one_of("status", GroupStatus),
        sa.CheckConstraint("alloc_gen_bps + alloc_rev_bps + alloc_com_bps = 10000", name="allocation_sums_to_100"),
    )


@_table
def _accounts() -> sa.Table:
    from alluse.domain.accounts import AccountKind, AccountStatus

    return sa.Table(
        "accounts",
        _metadata,
        _pk(),
        _portfolio_fk(),
        # NULL only for external counter-accounts (kind EXT), which belong to the portfolio, not a group.
        sa.Column("group_id", Id, nullable=True),
        sa.Column("kind", sa.String(3), nullable=False),
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("forked_from_account_id", Id, nullable=True),
        sa.Column("buffer_bps", Bps, nullable=False),
        # Cached sums, kept in step with the journal in the same transaction; `alluse verify` recomputes them.
        sa.Column("cash_cents", Cents, nullable=False, server_default="0"),
        sa.Column("positions_value_cents", Cents, nullable=False, server_default="0"),
        sa.Column("collateral_cents", Cents, nullable=False, server_default="0"),
        sa.Column("earmarked_cents", Cents, nullable=False, server_default="0"),
        sa.Column("base_capital_cents", Cents, nullable=False, server_default="0"),
        sa.Column("opened_at", Timestamp, nullable=False),
        sa.UniqueConstraint("portfolio_id", "name"),
        sa.UniqueConstraint("group_id", "kind"),
        _scoped_target(),
        _scoped_fk("group_id", "account_groups"),
        _scoped_fk("forked_from_account_id", "accounts"),
        one_of("kind", AccountKind),
        one_of("status", AccountStatus),
        sa.CheckConstraint("(kind = 'EXT') = (group_id IS NULL)", name="ext_has_no_group"),
        sa.CheckConstraint("buffer_bps BETWEEN 0 AND 10000", name="buffer_bps"),
        sa.CheckConstraint("collateral_cents >= 0 AND earmarked_cents >= 0", name="holds_non_negative"),
    )


@_table
def _account_config() -> sa.Table:
    return sa.Table(
        "account_config",
        _metadata,
        sa.Column("account_id", Id, primary_key=True),
        _portfolio_fk(),
        sa.Column("template", sa.String(20), nullable=False),
        # JSON object of validated overrides on top of the template (see domain/rules.py).
        sa.Column("overrides", sa.Text, nullable=False, server_default="{}"),
        _scoped_fk("account_id", "accounts"),
    )


@_table
def _brokerage_accounts() -> sa.Table:
    return sa.Table(
        "brokerage_accounts",
        _metadata,
        _pk(),
        _portfolio_fk(),
        sa.Column("broker", sa.String(20), nullable=False),
        sa.Column("number", sa.String(40), nullable=False),
        # The one-to-one mapping: unique, so a brokerage account maps to at most one system account.
        sa.Column("account_id", Id, nullable=True, unique=True),
        sa.Column("credentials_encrypted", sa.LargeBinary, nullable=True),
        sa.Column("registered_at", Timestamp, nullable=False),
        sa.UniqueConstraint("broker", "number"),
        _scoped_fk("account_id", "accounts"),
    )


@_table
def _transfers() -> sa.Table:
    return sa.Table(
        "transfers",
        _metadata,
        _pk(),
        _portfolio_fk(),
        # The number people see and type (`alluse journal`, `alluse reverse N`): 1, 2, 3 … per portfolio,
        # in the order the transfers were written. `id` stays the global key that references use.
        sa.Column("number", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("memo", sa.String(200), nullable=False, server_default=""),
        sa.Column("reverses_transfer_id", Id, nullable=True, unique=True),
        sa.Column("audit_seq", sa.BigInteger, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        _scoped_target(),
        _scoped_fk("reverses_transfer_id", "transfers"),
        sa.Index(None, "portfolio_id", "number", unique=True),
    )


@_table
def _postings() -> sa.Table:
    return sa.Table(
        "postings",
        _metadata,
        _pk(),
        _portfolio_fk(),
        sa.Column("transfer_id", Id, nullable=False),
        sa.Column("account_id", Id, nullable=False),
        sa.Column("amount_cents", Cents, nullable=False),
        sa.CheckConstraint("amount_cents <> 0", name="non_zero"),
        _scoped_fk("transfer_id", "transfers"),
        _scoped_fk("account_id", "accounts"),
        sa.Index(None, "account_id"),
        sa.Index(None, "transfer_id"),
        # Per account: one account's postings live in one partition (PostgreSQL).
        **hash_partitioned("account_id"),
    )


@_table
def _audit_log() -> sa.Table:
    return sa.Table(
        "audit_log",
        _metadata,
        sa.Column("portfolio_id", Id, sa.ForeignKey("portfolios.id"), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(50), nullable=False),
        # The audit log doubles as the idempotency record: one key, one write, one stored result.
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("input_digest", sa.String(64), nullable=False),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("override_reason", sa.Text, nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        # HMAC-SHA-256 under the audit key `key_id` (revision 0006_audit); entries written before it
        # carry a plain SHA-256 and no key id.
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=True),
        # The rows the entry's unit of work wrote (store/rowlog.py), on its last entry; covered by the MAC.
        sa.Column("rows", sa.Text, nullable=True),
        sa.UniqueConstraint("portfolio_id", "idempotency_key"),
        **hash_partitioned("portfolio_id"),
    )


# The chain of writes that belong to no portfolio (creating a user): audit_log without portfolio_id.
@_table
def _system_audit() -> sa.Table:
    return sa.Table(
        "system_audit",
        _metadata,
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
        sa.Column("input_digest", sa.String(64), nullable=False),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("override_reason", sa.Text, nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=True),
        sa.Column("rows", sa.Text, nullable=True),
    )


# Every audit key that has signed an entry, encrypted with the keyring (security/audit_key.py), so
# entries stay verifiable after the keyring key that derived their audit key is rotated out.
@_table
def _audit_keys() -> sa.Table:
    return sa.Table(
        "audit_keys",
        _metadata,
        sa.Column("key_id", sa.String(16), primary_key=True),
        sa.Column("sealed", sa.LargeBinary, nullable=False),
    )


# --- trades, positions, lots, tax (revision 0002_trades) ------------------------------------------
# Prices are exact integers in ten-thousandths of a dollar (`*_e4`): option prices carry 4 places and
# neither database stores a Decimal exactly on SQLite. Money stays integer cents.
PriceE4 = sa.BigInteger


@_table
def _instruments() -> sa.Table:
    from alluse.domain.instruments import InstrumentKind

    return sa.Table(
        "instruments",
        _metadata,
        _pk(),
        _portfolio_fk(),
        # Stocks by ticker; options by their OCC symbol ("AAPL  251219P00180000").
        sa.Column("symbol", sa.String(21), nullable=False),
        sa.Column("kind", sa.String(6), nullable=False),
        sa.Column("underlying", sa.String(6), nullable=False),
        sa.Column("put_call", sa.String(1), nullable=True),
        sa.Column("strike_e4", PriceE4, nullable=True),
        sa.Column("expiry", sa.Date, nullable=True),
        sa.Column("multiplier", sa.Integer, nullable=False),
        sa.UniqueConstraint("portfolio_id", "symbol"),
        one_of("kind", InstrumentKind),
        sa.CheckConstraint("(kind = 'OPTION') = (put_call IS NOT NULL)", name="option_has_right"),
        _scoped_target(),
    )


@_table
def _fills() -> sa.Table:
    return sa.Table(
        "fills",
        _metadata,
        _pk(),
        _portfolio_fk(),
        sa.Column("account_id", Id, nullable=False),
        sa.Column("instrument_id", Id, nullable=True),
        sa.Column("action", sa.String(10), nullable=False),
        sa.Column("quantity", sa.BigInteger, nullable=False),
        sa.Column("price_e4", PriceE4, nullable=False),
        sa.Column("commission_cents", Cents, nullable=False),
        # Net cash into the account (negative: out), as posted to the journal.
        sa.Column("cash_cents", Cents, nullable=False),
        sa.Column("trade_date", sa.Date, nullable=False),
        sa.Column("week_start", sa.Date, nullable=False),
        sa.Column("transfer_id", Id, nullable=True),
        sa.Column("audit_seq", sa.BigInteger, nullable=False),
        sa.Index(None, "account_id", "trade_date"),
        sa.Index(None, "portfolio_id", "action", "trade_date"),  # dividends, weekly trade counts
        # As-of figures date a posting through its fill (store/asof.py): without it, a join per posting
        # scans every fill of the account (revision 0010_ibkr).
        sa.Index(None, "transfer_id"),
        sa.CheckConstraint("quantity >= 0 AND commission_cents >= 0 AND price_e4 >= 0", name="non_negative"),
        _scoped_fk("account_id", "accounts"),
        _scoped_fk("instrument_id", "instruments"),
        _scoped_fk("transfer_id", "transfers"),
        _scoped_target(),
    )


@_table
def _lots() -> sa.Table:
    from alluse.domain.lots import Side

    return sa.Table(
        "lots",
        _metadata,
        _pk(),
        _portfolio_fk(),
        sa.Column("account_id", Id, nullable=False),
        sa.Column("instrument_id", Id, nullable=False),
        sa.Column("open_fill_id", Id, nullable=False),
        sa.Column("side", sa.String(5), nullable=False),
        sa.Column("opened_on", sa.Date, nullable=False),
        sa.Column("quantity", sa.BigInteger, nullable=False),
        # Cash the opening moved (negative: paid for a long lot; positive: premium of a short one).
        sa.Column("open_cash_cents", Cents, nullable=False),
        # Cached: what is still open; lot_closes is the record, `alluse verify` recomputes these.
        sa.Column("remaining", sa.BigInteger, nullable=False),
        sa.Column("remaining_cash_cents", Cents, nullable=False),
        sa.Index(None, "account_id", "instrument_id", "remaining"),
        sa.Index(None, "instrument_id", "opened_on"),  # wash-sale look-ups
        one_of("side", Side),
        sa.CheckConstraint("remaining >= 0 AND remaining <= quantity AND quantity > 0", name="remaining"),
        _scoped_fk("account_id", "accounts"),
        _scoped_fk("instrument_id", "instruments"),
        _scoped_fk("open_fill_id", "fills"),
        # What lot_closes references: on PostgreSQL a partitioned table's keys include account_id.
        sa.UniqueConstraint("id", "account_id", "portfolio_id"),
        **hash_partitioned("account_id"),
    )


# The tax ledger: one row per (lot, closing fill). `realized` is false where the closing moved the
# lot's cash into another lot instead of realizing it (an assigned put's premium lowers the basis of
# the shares received).
@_table
def _lot_closes() -> sa.Table:
    from alluse.domain.lots import Term

    return sa.Table(
        "lot_closes",
        _metadata,
        _pk(),
        _portfolio_fk(),
        sa.Column("account_id", Id, nullable=False),
        sa.Column("lot_id", Id, nullable=False),
        sa.Column("fill_id", Id, nullable=False),
        sa.Column("quantity", sa.BigInteger, nullable=False),
        sa.Column("closed_on", sa.Date, nullable=False),
        sa.Column("open_cash_cents", Cents, nullable=False),
        sa.Column("close_cash_cents", Cents, nullable=False),
        sa.Column("gain_cents", Cents, nullable=False),
        sa.Column("term", sa.String(5), nullable=False),
        sa.Column("realized", sa.Boolean, nullable=False),
        # Covering: an account's realized figures for a period (the lifecycle, the tax-year sums) read
        # the index alone.
        sa.Index(None, "account_id", "closed_on", "realized", "term", "gain_cents"),
        sa.Index(None, "portfolio_id", "closed_on"),
        one_of("term", Term),
        sa.CheckConstraint("gain_cents = open_cash_cents + close_cash_cents", name="gain"),
        _scoped_fk("account_id", "accounts"),
        # The lot is closed in its own account: the key carries the lots partition key.
        sa.ForeignKeyConstraint(
            ["lot_id", "account_id", "portfolio_id"], ["lots.id", "lots.account_id", "lots.portfolio_id"]
        ),
        _scoped_fk("fill_id", "fills"),
        **hash_partitioned("account_id"),
    )


@_table
def _positions() -> sa.Table:
    return sa.Table(
        "positions",
        _metadata,
        _pk(),
        _portfolio_fk(),
        sa.Column("account_id", Id, nullable=False),
        sa.Column("instrument_id", Id, nullable=False),
        # Signed: short options are negative. Cached from the lots.
        sa.Column("quantity", sa.BigInteger, nullable=False),
        # The price this account's position is valued at: its last fill or the last mark, whichever is newer.
        sa.Column("mark_e4", PriceE4, nullable=False),
        sa.Column("marked_on", sa.Date, nullable=False),
        sa.UniqueConstraint("account_id", "instrument_id"),
        _scoped_fk("account_id", "accounts"),
        _scoped_fk("instrument_id", "instruments"),
        **hash_partitioned("account_id"),
    )


@_table
def _marks() -> sa.Table:
    return sa.Table(
        "marks",
        _metadata,
        _pk(),
        _portfolio_fk(),
        sa.Column("instrument_id", Id, nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("price_e4", PriceE4, nullable=False),
        sa.Column("audit_seq", sa.BigInteger, nullable=False),
        sa.Index(None, "instrument_id", "as_of"),
        _scoped_fk("instrument_id", "instruments"),
    )


@_table
def _tax_payments() -> sa.Table:
    return sa.Table(
        "tax_payments",
        _metadata,
        _pk(),
        _portfolio_fk(),
        sa.Column("account_id", Id, nullable=False),
        sa.Column("tax_year", sa.Integer, nullable=False),
        sa.Column("amount_cents", Cents, nullable=False),
        sa.Column("paid_on", sa.Date, nullable=False),
        sa.Column("transfer_id", Id, nullable=False),
        sa.CheckConstraint("amount_cents > 0", name="positive"),
        _scoped_fk("account_id", "accounts"),
        _scoped_fk("transfer_id", "transfers"),
        sa.Index(None, "portfolio_id", "transfer_id"),  # the as-of figures join postings to their payment
    )


@_table
def _tax_settings() -> sa.Table:
    return sa.Table(
        "tax_settings",
        _metadata,
        sa.Column("portfolio_id", Id, sa.ForeignKey("portfolios.id"), primary_key=True),
        sa.Column("short_term_bps", Bps, nullable=False),
        sa.Column("long_term_bps", Bps, nullable=False),
        sa.Column("dividend_bps", Bps, nullable=False),
    )


@_table
def _weeks() -> sa.Table:
    from alluse.domain.protocol import WeekType

    return sa.Table(
        "weeks",
        _metadata,
        _portfolio_fk(),
        sa.Column("week_start", sa.Date, nullable=False),
        sa.Column("predicted", sa.String(5), nullable=True),
        sa.Column("confirmed", sa.String(5), nullable=True),
        sa.PrimaryKeyConstraint("portfolio_id", "week_start"),
        one_of("predicted", WeekType),
        one_of("confirmed", WeekType),
    )


@_table
def _alerts() -> sa.Table:
    return sa.Table(
        "alerts",
        _metadata,
        _pk(),
        _portfolio_fk(),
        sa.Column("account_id", Id, nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("message", sa.String(300), nullable=False),
        sa.Column("raised_at", Timestamp, nullable=False),
        sa.Column("cleared_at", Timestamp, nullable=True),
        sa.Index(None, "account_id", "kind", "cleared_at"),
        _scoped_fk("account_id", "accounts"),
    )


# A view (migration 0005_pg), not a table: id, name and creation key of every portfolio, readable
# before a unit of work is scoped to one (resolving a name, refusing a duplicate). No money in it.
portfolio_directory = sa.table(
    "portfolio_directory", sa.column("id", Id), sa.column("name", sa.String), sa.column("creation_key", sa.String)
)


# Which portfolio holds each brokerage account at a real broker, so a unit of work scoped to one
# portfolio can refuse a number another holds, and the key keeps a number in one portfolio. Its own table, not a view
# of brokerage_accounts: the application role reads it as itself (row-level security lets it read every
# row, write only its own portfolio's), and on Citus it is a reference table, so its key is checked on
# every node and a unit of work reads it through its own connections. Paper-broker accounts are not in
# it: their numbers come from their ids. No money in it.
@_table
def _brokerage_numbers() -> sa.Table:
    return sa.Table(
        "brokerage_numbers",
        _metadata,
        sa.Column("broker", sa.String(20), primary_key=True),
        sa.Column("number", sa.String(40), primary_key=True),
        # No foreign key: Citus allows none from a reference table into a distributed one.
        sa.Column("portfolio_id", Id, nullable=False),
        info={"citus": "reference"},
    )


# Defaults of this database's command line, e.g. the portfolio a command acts on when none is named
# (`alluse init` sets it, `alluse use NAME` changes it). Belongs to no portfolio, like `users`.
@_table
def _cli_defaults() -> sa.Table:
    return sa.Table(
        "cli_defaults",
        _metadata,
        sa.Column("name", sa.String(50), primary_key=True),
        sa.Column("value", sa.String(200), nullable=False),
    )


# --- Access control (issue #6). A user is a global identity, so `users` and `api_keys` are the two
# tables without `portfolio_id`; everything a user or key may do is granted per portfolio below.
@_table
def _users() -> sa.Table:
    return sa.Table(
        "users",
        _metadata,
        _pk(),
        sa.Column("username", sa.String(50), nullable=False, unique=True),
        # argon2id, encoded with its own parameters and salt.
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
        # Bumped to invalidate every token issued before (password change, disable).
        sa.Column("token_version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", Timestamp, nullable=False),
    )


@_table
def _portfolio_roles() -> sa.Table:
    from alluse.domain.access import Role

    return sa.Table(
        "portfolio_roles",
        _metadata,
        sa.Column("portfolio_id", Id, sa.ForeignKey("portfolios.id"), primary_key=True),
        sa.Column("user_id", Id, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("granted_at", Timestamp, nullable=False),
        one_of("role", [r.name for r in Role]),
    )


@_table
def _api_keys() -> sa.Table:
    return sa.Table(
        "api_keys",
        _metadata,
        _pk(),
        sa.Column("user_id", Id, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        # SHA-256 of the key's 256-bit random secret; the secret itself is shown once and never stored.
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("revoked_at", Timestamp, nullable=True),
    )


@_table
def _api_key_scopes() -> sa.Table:
    from alluse.domain.access import Role

    return sa.Table(
        "api_key_scopes",
        _metadata,
        sa.Column("api_key_id", Id, sa.ForeignKey("api_keys.id"), primary_key=True),
        sa.Column("portfolio_id", Id, sa.ForeignKey("portfolios.id"), primary_key=True),
        sa.Column("role", sa.String(10), nullable=False),
        one_of("role", [r.name for r in Role]),
    )


# --- Sessions and login throttling (issue #10): global, like `users`, so no `portfolio_id`.


# One row per refresh token issued. A refresh uses its row up and issues the next one in the same
# family; presenting a used or revoked token again revokes the whole family (reuse detection).
@_table
def _refresh_tokens() -> sa.Table:
    return sa.Table(
        "refresh_tokens",
        _metadata,
        sa.Column("jti", sa.String(32), primary_key=True),
        sa.Column("family", sa.String(32), nullable=False),
        sa.Column("user_id", Id, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("issued_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
        sa.Column("used_at", Timestamp, nullable=True),
        sa.Column("revoked_at", Timestamp, nullable=True),
        sa.Index(None, "family"),
        sa.Index(None, "user_id"),
    )


# Login attempts per key (a digest of "user:<name>" or "ip:<address>") in the current fixed window;
# one upsert counts and returns the count, so the check and the count are one atomic statement.
@_table
def _login_throttle() -> sa.Table:
    return sa.Table(
        "login_throttle",
        _metadata,
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("window_start", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Index(None, "window_start"),
    )


# --- lifecycle (ALLUSE_RULES §5) ---------------------------------------------------------------


@_table
def _lifecycle_actions() -> sa.Table:
    from alluse.domain.lifecycle import Rule

    return sa.Table(
        "lifecycle_actions",
        _metadata,
        _pk(),
        _portfolio_fk(),
        sa.Column("rule", sa.String(12), nullable=False),
        # (rule, account or group, period or as-of date): the same key in audit_log makes it exactly-once.
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("period", sa.String(8), nullable=True),
        # The account the rule acted on (forks, reinvestment) or the merge target Com-Acc.
        sa.Column("account_id", Id, nullable=False),
        # The group a fork created or a merge consumed.
        sa.Column("group_id", Id, nullable=True),
        sa.Column("amount_cents", Cents, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("audit_seq", sa.BigInteger, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        _scoped_target(),
        _scoped_fk("account_id", "accounts"),
        _scoped_fk("group_id", "account_groups"),
        sa.UniqueConstraint("portfolio_id", "idempotency_key"),
        one_of("rule", Rule),
        sa.Index(None, "account_id", "rule"),
        sa.Index(None, "portfolio_id", "audit_seq"),  # the as-of figures date a fork's or merge's postings by it
    )


@_table
def _earmarks() -> sa.Table:
    from alluse.domain.lifecycle import EarmarkPurpose

    return sa.Table(
        "earmarks",
        _metadata,
        _pk(),
        _portfolio_fk(),
        sa.Column("account_id", Id, nullable=False),
        sa.Column("purpose", sa.String(12), nullable=False),
        # Append-only: a plan adds (+), a purchase, tax payment or merge draws down (−);
        # accounts.earmarked_cents caches the sum.
        sa.Column("amount_cents", Cents, nullable=False),
        sa.Column("action_id", Id, nullable=True),
        sa.Column("reference", sa.String(200), nullable=False, server_default=""),
        sa.Column("audit_seq", sa.BigInteger, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        _scoped_fk("account_id", "accounts"),
        _scoped_fk("action_id", "lifecycle_actions"),
        sa.CheckConstraint("amount_cents <> 0", name="non_zero"),
        one_of("purpose", EarmarkPurpose),
        sa.Index(None, "account_id"),
    )


@_table
def _events() -> sa.Table:
    return sa.Table(
        "events",
        _metadata,
        _pk(),
        _portfolio_fk(),
        # Outbox: written in the same transaction as the change it announces (docs/events.md).
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("action_id", Id, nullable=True),
        sa.Column("account_id", Id, nullable=True),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("audit_seq", sa.BigInteger, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        # Per-portfolio, gap-free, in commit order (writers of a portfolio are serialised): what
        # subscribers order by and what the relay's cursors point at.
        sa.Column("seq", sa.BigInteger, nullable=False),
        # The event's global id (a UUID): the JetStream message id and the webhook-id, so duplicates drop.
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("version", sa.SmallInteger, nullable=False, server_default="1"),
        sa.UniqueConstraint("portfolio_id", "seq"),
        _scoped_target(),
        _scoped_fk("action_id", "lifecycle_actions"),
        _scoped_fk("account_id", "accounts"),
    )


# How far each consumer of the outbox got, per portfolio: the relay resumes from here after a crash.
@_table
def _event_cursors() -> sa.Table:
    return sa.Table(
        "event_cursors",
        _metadata,
        sa.Column("consumer", sa.String(100), primary_key=True),
        sa.Column("portfolio_id", Id, sa.ForeignKey("portfolios.id"), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
    )


@_table
def _webhook_endpoints() -> sa.Table:
    return sa.Table(
        "webhook_endpoints",
        _metadata,
        _pk(),
        _portfolio_fk(),
        sa.Column("url", sa.String(500), nullable=False),
        # JSON list of event kinds or prefixes ending in "*" ("alert.*"); empty: every kind.
        sa.Column("kinds", sa.Text, nullable=False, server_default="[]"),
        # The signing secret ("whsec_..."), encrypted with the keyring like broker credentials.
        sa.Column("secret_encrypted", sa.LargeBinary, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("disabled_at", Timestamp, nullable=True),
        _scoped_target(),
    )


@_table
def _webhook_deliveries() -> sa.Table:
    from alluse.domain.events import DeliveryStatus

    return sa.Table(
        "webhook_deliveries",
        _metadata,
        _pk(),
        _portfolio_fk(),
        sa.Column("endpoint_id", Id, nullable=False),
        sa.Column("event_id", Id, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", Timestamp, nullable=False),
        sa.Column("last_status_code", sa.Integer, nullable=True),
        sa.Column("last_error", sa.String(300), nullable=False, server_default=""),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("delivered_at", Timestamp, nullable=True),
        sa.UniqueConstraint("endpoint_id", "event_id"),
        sa.Index(None, "status", "next_attempt_at"),
        one_of("status", DeliveryStatus),
        _scoped_fk("endpoint_id", "webhook_endpoints"),
        _scoped_fk("event_id", "events"),
    )


# --- broker statements and orders (revision 0010_ibkr) ---------------------------------------------


@_table
def _broker_rows() -> sa.Table:
    return sa.Table(
        "broker_rows",
        _metadata,
        _pk(),
        _portfolio_fk(),
        sa.Column("account_id", Id, nullable=False),
        # The brokerage account the row came from and the broker's own id of the row ("trade:<tradeID>",
        # "cash:<transactionID>"): unique, so a statement row is booked at most once, whatever the key.
        sa.Column("broker", sa.String(20), nullable=False),
        sa.Column("number", sa.String(40), nullable=False),
        sa.Column("broker_key", sa.String(64), nullable=False),
        sa.Column("action", sa.String(12), nullable=False),
        # The business date of the row (trade date, cash transaction date): "as of" reads use it.
        sa.Column("booked_on", sa.Date, nullable=False),
        sa.Column("cash_cents", Cents, nullable=False),
        sa.Column("fill_id", Id, nullable=True),
        sa.Column("transfer_id", Id, nullable=True),
        sa.Column("audit_seq", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("broker", "number", "broker_key"),
        _scoped_fk("account_id", "accounts"),
        _scoped_fk("fill_id", "fills"),
        _scoped_fk("transfer_id", "transfers"),
        sa.Index(None, "account_id", "booked_on"),
        sa.Index(None, "transfer_id"),  # as-of figures date a posting through its broker row
    )


@_table
def _order_intents() -> sa.Table:
    from alluse.domain.protocol import OrderStatus

    return sa.Table(
        "order_intents",
        _metadata,
        _pk(),
        _portfolio_fk(),
        sa.Column("account_id", Id, nullable=False),
        sa.Column("action", sa.String(4), nullable=False),
        sa.Column("symbol", sa.String(21), nullable=False),
        sa.Column("quantity", sa.BigInteger, nullable=False),
        sa.Column("limit_e4", PriceE4, nullable=True),
        # REFUSED by the pre-trade check (nothing sent), or FILLED by the broker (fill_id set).
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("broker", sa.String(20), nullable=False),
        sa.Column("check_result", sa.Text, nullable=False),
        sa.Column("fill_id", Id, nullable=True),
        sa.Column("audit_seq", sa.BigInteger, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        one_of("status", OrderStatus),
        sa.CheckConstraint("quantity > 0", name="positive"),
        _scoped_fk("account_id", "accounts"),
        _scoped_fk("fill_id", "fills"),
        sa.Index(None, "account_id", "created_at"),
    )
