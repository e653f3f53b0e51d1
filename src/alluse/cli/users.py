"""`alluse user list` and `alluse user password`: the operator's side of user management. The CLI
runs with the database's own trust (whoever can run it can read the file), so it needs no login."""

from __future__ import annotations

import secrets
from typing import Annotated

import typer
from rich.table import Table

from alluse.cli.main import friendly, state, user_app
from alluse.cli.render import console


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
    console.print(
        f"password of [bold]{r['username']}[/] set{shown}; every token of the user is revoked", highlight=False
    )
