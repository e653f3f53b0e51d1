"""The token lifecycle: logout, signing out everywhere, password change and an admin's reset."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from alluse.api.deps import Ctx, login_keys, require_admin, require_user
from alluse.api.problems import responses
from alluse.api.schemas.auth import RefreshIn
from alluse.api.schemas.common import In, Text
from alluse.services import sessions
from alluse.views.access import Principal

router = APIRouter(tags=["auth"], responses=responses(400, 401, 403, 422))


class PasswordChangeIn(In):
    current_password: Annotated[str, Text(200, 1)]
    new_password: Annotated[str, Text(200, 1)]


class PasswordResetIn(In):
    new_password: Annotated[str, Text(200, 1)]


@router.post("/auth/logout", status_code=204, response_class=Response)
def logout(body: RefreshIn, c: Ctx) -> Response:
    """Revoke this refresh token and every token rotated from the same login. Access tokens already
    issued expire on their own (minutes); /auth/logout-everywhere voids them at once."""
    sessions.logout(c.engine, c.tokens, body.refresh_token)
    return Response(status_code=204)


@router.post("/auth/logout-everywhere", status_code=204, response_class=Response)
def logout_everywhere(c: Ctx, who: Principal = Depends(require_user)) -> Response:
    """Void every access and refresh token of the calling user, on every device."""
    sessions.sign_out_everywhere(c.engine, who.id)
    return Response(status_code=204)


@router.post("/auth/password", status_code=204, response_class=Response, responses=responses(429))
def change_password(
    body: PasswordChangeIn, request: Request, c: Ctx, who: Principal = Depends(require_user)
) -> Response:
    """Change your own password (the current one is checked, and throttled like a login). Every
    token you hold is voided: log in again with the new password."""
    user_key, client_key = login_keys(who.name, request)
    c.throttle.attempt(user_key, client_key)
    sessions.change_password(c.engine, who, body.current_password, body.new_password)
    c.throttle.succeeded(user_key, client_key)
    return Response(status_code=204)


@router.put("/users/{username}/password", status_code=204, response_class=Response, responses=responses(404))
def reset_password(
    username: Annotated[str, Path(min_length=1, max_length=50)],
    body: PasswordResetIn,
    c: Ctx,
    _admin: Principal = Depends(require_admin),
) -> Response:
    """Admin: set a user's password; every token the user holds is voided."""
    sessions.set_password(c.engine, username, body.new_password)
    return Response(status_code=204)
