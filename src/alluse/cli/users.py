"""`alluse user …`: API users and their roles, the operator's side of user management. The CLI
runs with the database's own trust (whoever can run it can read the file), so it needs no login."""

import secrets
from typing import Annotated

import typer
from rich.table import Table

from alluse.cli.common import KeyOpt, actor, app, friendly, new_key, state
from alluse.cli.render import console, replay_note

user_app = typer.Typer(help="API users and their roles per portfolio.", no_args_is_help=True)
app.add_typer(user_app, name="user")


@user_app.command("add")
@friendly
def user_add(
    username: Annotated[str, typer.Argument(help="Login name (lower case).")],
    admin: Annotated[bool, typer.Option("--admin", help="Global admin: every portfolio, user management.")] = False,
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, envvar="ALLUSE_NEW_PASSWORD")
    ] = "",
) -> None:
    """Create an API user (the password is asked for, never echoed)."""
    from alluse.services.access import create_user

    r = create_user(state.engine(), username, password, is_admin=admin)
    console.print(f"user [bold]{r['username']}[/] created{' (admin)' if admin else ''}")


@user_app.command("grant")
@friendly
def user_grant(
    username: Annotated[str, typer.Argument()],
    role: Annotated[str, typer.Argument(help="viewer | trader | owner")],
    key: KeyOpt = None,
) -> None:
    """Give a user a role on the portfolio (--portfolio)."""
    from alluse.services.access import grant_role
    from alluse.views.accounts import portfolio_id

    engine = state.engine()
    pid = portfolio_id(engine, state.portfolio)
    r = grant_role(engine, actor(), pid, username, role, new_key(key))
    console.print(f"{r['username']} is {r['role']} on portfolio {pid}{replay_note(r)}")


@user_app.command("list")
@friendly
def user_list() -> None:
    """Every user, with the admin and disabled flags."""
    from alluse.services.access import list_users

    table = Table("id", "username", "admin", "disabled")
    for u in list_users(state.engine()):
        table.add_row(str(u["user_id"]), u["username"], "yes" if u["is_admin"] else "", "yes" if u["disabled"] else "")
    console.print(table)


@user_app.command("password")
@friendly
def user_password(
    username: Annotated[str, typer.Argument(help="Whose password to set.")],
    generate: Annotated[bool, typer.Option("--generate", help="Make a random password and print it once.")] = False,
    password: Annotated[
        str | None, typer.Option(hidden=True, envvar="ALLUSE_NEW_PASSWORD", help="The new password.")
    ] = None,
) -> None:
    """Set (reset) a user's password; every token the user holds stops working. The password is asked
    for and never echoed, or generated with --generate."""
    from alluse.services.sessions import set_password

    if generate:
        password = secrets.token_urlsafe(12)
    elif password is None:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    r = set_password(state.engine(), username, password)
    shown = f", password [bold]{password}[/] — shown once" if generate else ""
    console.print(f"password of [bold]{r.username}[/] set{shown}; every token of the user is revoked", highlight=False)
