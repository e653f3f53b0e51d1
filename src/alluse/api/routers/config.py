"""Account, group and portfolio configuration."""

from typing import Annotated, Any

from fastapi import APIRouter, Path

from alluse.api.deps import Ctx, IdemKey, Owner, Viewer
from alluse.api.problems import responses
from alluse.api.schemas.config import ConfigIn
from alluse.services import configuration

router = APIRouter(tags=["configuration"], responses=responses(400, 401, 403, 404, 409, 422))
Target = Annotated[str, Path(min_length=1, max_length=100, description="An account, a group, or 'portfolio'")]


@router.get("/portfolios/{portfolio}/config/{target}", response_model=dict[str, Any])
def show(scope: Viewer, target: Target, c: Ctx) -> configuration.Configuration:
    """Effective configuration: template values with overrides applied."""
    return configuration.show(c.engine, scope.portfolio_id, target)


@router.put("/portfolios/{portfolio}/config/{target}", response_model=dict[str, Any])
def set_value(scope: Owner, target: Target, body: ConfigIn, c: Ctx, key: IdemKey) -> configuration.SettingChanged:
    """Owner: change one setting, validated before anything is stored."""
    return configuration.set_value(c.engine, scope.actor, scope.portfolio_id, target, body.key, body.value, key)
