"""What every `alluse` command shares: the Typer app, the global options and state, the common
options and `friendly`, the one place errors become one line and an exit code.

Commands live in one module per area under `cli/` (cash, groups, trades, tax, reports, lifecycle,
admin, brokers, users, events, project, journal). Each imports `app` from here and nothing from the
others; `cli/main.py` imports them all so they register.

Start-up time is part of the interface: `alluse --help` imports this module and every command
module, so they import only Typer, Rich and the light parts of the domain. SQLAlchemy, the settings
and the services are imported inside the command that needs them. The command modules keep their
annotations evaluated (no `from __future__ import annotations`): Typer reads every command's signature
twice, each time through `inspect.signature` and `get_type_hints`, so a string annotation is compiled
and evaluated four times per start instead of once; for `--help`, which builds all the commands, that
was a sixth of its time. Names imported only for type checking are quoted."""

import getpass
import os
import re
import signal
import sys
import types
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import wraps
from importlib import import_module
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from typer._coercion import RuntimeParam, build_runtime_param
from typer.core import TyperGroup

from alluse import DEFAULT_DATABASE_URL
from alluse.cli.render import err_console
from alluse.domain.errors import AlluseError, InvalidInput

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from alluse.config import Settings

# `alluse --help` lists the commands in this order (the order they were written in, kept when the
# commands moved into one module per area); a command missing here is listed after these.
COMMAND_ORDER = (
    "init use accounts deposit withdraw transfer reverse verify tree demo bench schema-docs serve order journal "
    "project fill import-fills mark positions alerts check-trade broker group config keys audit lifecycle import "
    "reconcile events webhook marks week report tax user"
).split()


class Commands(TyperGroup):
    def main(self, *args: Any, **kwargs: Any) -> Any:
        _values_as_given(self)  # here, not in __init__: Typer adds the completion options after that
        return super().main(*args, **kwargs)

    def list_commands(self, ctx: Any) -> list[str]:
        rank = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted(super().list_commands(ctx), key=lambda n: rank.get(n, len(rank)))


@dataclass(frozen=True)
class _AsGiven(RuntimeParam):
    """A `str` or `bool` parameter's value when it already is one. Typer checks every value with a
    pydantic TypeAdapter that it builds on first use, even for an absent flag; for `alluse accounts`
    that alone (importing pydantic, building the adapters) is a tenth of the start, spent turning a
    string into itself. Any other value still goes Typer's way, so what is accepted and every error
    message stay Typer's."""

    def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
        if type(value) is self.annotation:
            return value
        return build_runtime_param(param.type_descriptor).coerce(value, param=param, ctx=ctx)


def _values_as_given(command: Any) -> None:
    """`_AsGiven` for every plain `str` and `bool` parameter of `command` and of its subcommands,
    including the `--help` flag that Click makes on first use."""
    for param in command.params:
        _as_given(param)
    make_help_option = command.get_help_option

    def get_help_option(ctx: Any) -> Any:
        option = make_help_option(ctx)
        if option is not None:
            _as_given(option)
        return option

    command.get_help_option = get_help_option
    for sub in getattr(command, "commands", {}).values():
        _values_as_given(sub)


def _as_given(param: Any) -> None:
    desc = getattr(param, "type_descriptor", None)
    if desc is None or desc.annotation not in (str, bool) or desc.parameter_info.parser is not None:
        return
    if desc.file_annotation is None and getattr(param, "_runtime_param", False) is None:
        param._runtime_param = _AsGiven(parameter_info=desc.parameter_info, annotation=desc.annotation)


class _OnFirstUse(type):
    """Stands for the class of the same name in the module named by its `__module__`, and imports
    that class when it is first called or an attribute of it is read."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls._load()(*args, **kwargs)

    def __getattr__(cls, name: str) -> Any:
        return getattr(cls._load(), name)

    def _load(cls) -> Any:
        return getattr(import_module(cls.__module__), cls.__name__)


def _import_typer_rich_utils() -> None:
    """Typer formats help and usage errors with `typer.rich_utils`, which imports `rich.markdown`
    (markdown_it, pygments) and `rich.traceback` at its top, for Markdown help markup and pretty
    tracebacks. alluse uses neither (rich markup; pretty exceptions off), and the two were a sixth of
    `alluse --help`. So `typer.rich_utils` is imported here with stand-ins for those two classes,
    which import the real one should it ever be used; the stand-in modules are gone once it is in,
    so any other import of them gets the real module."""
    stand_ins = {
        name: cls
        for name, cls in (("rich.markdown", "Markdown"), ("rich.traceback", "Traceback"))
        if name not in sys.modules
    }
    for name, cls in stand_ins.items():
        module = sys.modules[name] = types.ModuleType(name)
        setattr(module, cls, _OnFirstUse(cls, (), {"__module__": name}))
    try:
        import typer.rich_utils  # noqa: F401
    finally:
        for name in stand_ins:
            del sys.modules[name]


_import_typer_rich_utils()


app = typer.Typer(
    cls=Commands,
    help="alluse: accounts, ledger and rules for the ALL-USE method.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
F = TypeVar("F", bound=Callable[..., Any])


def settings() -> "Settings":
    from alluse.config import get_settings

    return get_settings()


class State:
    database_url: str | None = None
    portfolio: str | None = None
    _engine: "Engine | None" = None

    def engine(self) -> "Engine":
        if self._engine is None:
            from alluse.services.database import open_database

            # --db takes ALLUSE_DATABASE_URL from the environment already (its envvar): without either,
            # the default, as Settings has it.
            self._engine = open_database(self.database_url or DEFAULT_DATABASE_URL)
        return self._engine


state = State()


def actor() -> str:
    return settings().actor or f"cli:{getpass.getuser()}"


def new_key(given: str | None) -> str:
    return given if given else f"cli-{uuid.uuid4()}"


KeyOpt = Annotated[
    str | None, typer.Option("--idempotency-key", "-k", help="Re-sending the same key never acts twice.")
]
OverrideOpt = Annotated[
    str | None,
    typer.Option("--override", help="Admin: let this intent eat into the cash buffer; the written reason is audited."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
DateOpt = Annotated[str | None, typer.Option("--date", help="YYYY-MM-DD (default: today).")]


def parse_date(text: str | None, default: date | None = None) -> date:
    if text is None or not text.strip():
        return default or date.today()
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"not a date: {text!r} (expected YYYY-MM-DD)") from None


def print_json(value: Any) -> None:
    """`--json` output: indented JSON on stdout (the shapes are listed in docs/cli.md)."""
    import json

    print(json.dumps(value, indent=2))


def utc_text(at: datetime) -> str:
    # SQLite hands back stored UTC times without their zone; JSON always carries it.
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()


def fail(message: object, code: int = 1, prefix: str = "error:") -> NoReturn:
    """`error: …` as one line on stderr whatever the terminal width (scripts grep it), then exit."""
    from rich.markup import escape

    text = re.sub(r"\s*\n\s*", " ", str(message)).strip()
    err_console.print(f"[red]{prefix}[/] {escape(text)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


# A reader that closed the pipe (`alluse report … | head`) ends the command the way it ends other
# Unix tools: quietly, with the status a shell shows for SIGPIPE.
BROKEN_PIPE_EXIT = 128 + signal.SIGPIPE


def friendly(fn: F) -> F:
    """One line and a non-zero exit for any error a user can cause; never a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*args, **kwargs)
            sys.stdout.flush()  # a closed pipe shows here, inside the try, not at interpreter exit
            return result
        except (typer.Exit, typer.Abort):
            raise
        except BrokenPipeError:
            # Point stdout at /dev/null so the interpreter's final flush has nowhere to fail.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(BROKEN_PIPE_EXIT) from None
        except AlluseError as exc:
            fail(exc)
        except NotImplementedError as exc:
            fail(f"not built yet: {exc}")
        except Exception as exc:
            _database_error(exc)
            # Anything else is a bug: say so plainly, keep the trace for ALLUSE_DEBUG.
            if os.environ.get("ALLUSE_DEBUG"):
                raise
            fail(f"{type(exc).__name__}: {exc} (set ALLUSE_DEBUG=1 for details)", 70, "internal error:")

    return wrapper  # type: ignore[return-value]


def _database_error(exc: Exception) -> None:
    """A database that is down or refuses a row is the user's to fix: one line, exit 1."""
    if not type(exc).__module__.startswith("sqlalchemy"):
        return  # SQLAlchemy is not even loaded when the error comes from elsewhere
    from sqlalchemy.exc import IntegrityError, OperationalError

    if isinstance(exc, OperationalError):
        fail(f"database unavailable: {exc.orig}")
    if isinstance(exc, IntegrityError):
        fail(f"refused by a database constraint: {exc.orig}")


@app.callback()
def main(
    db: Annotated[
        str | None,
        typer.Option("--db", envvar="ALLUSE_DATABASE_URL", help="Database URL (default sqlite:///./alluse.db)."),
    ] = None,
    portfolio: Annotated[
        str | None,
        typer.Option(
            "--portfolio",
            "-p",
            envvar="ALLUSE_PORTFOLIO",
            help="Portfolio name or id (default: the one `alluse use` chose, or the only one).",
        ),
    ] = None,
) -> None:
    state.database_url = db
    state.portfolio = portfolio
    state._engine = None
