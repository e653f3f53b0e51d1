"""Webhook endpoints per portfolio (owners only) and their delivery records; events as JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from alluse.api.deps import Ctx, IdemKey, Owner, Viewer
from alluse.api.problems import responses
from alluse.domain.events import Envelope
from alluse.services import events, webhooks

router = APIRouter(tags=["events"], responses=responses(400, 401, 403, 404, 409, 422))
EndpointId = Annotated[int, Path(ge=1, le=2**62)]


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=webhooks.MAX_URL, description="http:// or https:// address")
    kinds: list[str] = Field(default=[], max_length=50, description="Event kinds or prefixes like alert.*; [] = all")


class WebhookCreatedOut(BaseModel):
    endpoint_id: int
    kinds: list[str]
    url: str | None = None
    secret: str | None = Field(None, description="The whsec_ signing secret: returned once, at registration")
    replayed: bool = False


class WebhookOut(BaseModel):
    id: int
    url: str
    kinds: list[str]
    enabled: bool
    created_at: datetime
    deliveries: dict[str, int]


class DeliveryOut(BaseModel):
    id: int
    event_id: str
    seq: int
    kind: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str
    next_attempt_at: datetime
    delivered_at: datetime | None


@router.post("/portfolios/{portfolio}/webhooks", response_model=WebhookCreatedOut, status_code=201)
def register(scope: Owner, body: WebhookIn, c: Ctx, key: IdemKey) -> webhooks.EndpointRegistered:
    """Owner: register an endpoint; deliveries are signed with the returned secret (Standard Webhooks)."""
    return webhooks.register(c.engine, scope.actor, scope.portfolio_id, body.url, body.kinds, key, c.keyring)


@router.get("/portfolios/{portfolio}/webhooks", response_model=list[WebhookOut])
def list_endpoints(scope: Owner, c: Ctx) -> list:
    return webhooks.list_endpoints(c.engine, scope.portfolio_id)


@router.delete("/portfolios/{portfolio}/webhooks/{endpoint_id}", response_model=dict)
def disable(scope: Owner, endpoint_id: EndpointId, c: Ctx, key: IdemKey) -> webhooks.EndpointDisabled:
    """Owner: disable an endpoint; nothing more is delivered to it."""
    return webhooks.disable(c.engine, scope.actor, scope.portfolio_id, endpoint_id, key)


@router.get("/portfolios/{portfolio}/webhooks/{endpoint_id}/deliveries", response_model=list[DeliveryOut])
def deliveries(scope: Owner, endpoint_id: EndpointId, c: Ctx, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list:
    return webhooks.deliveries(c.engine, scope.portfolio_id, endpoint_id, limit)


@router.get("/portfolios/{portfolio}/events", response_model=list[dict])  # the envelope as stored
def list_events(
    scope: Viewer,
    c: Ctx,
    after: Annotated[int, Query(ge=0, le=2**62, description="Events with a sequence number above this")] = 0,
    kind: Annotated[list[str] | None, Query(max_length=20, description="Kinds or prefixes like alert.*")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Envelope]:
    """The portfolio's events in sequence order, as the envelopes subscribers receive."""
    return events.after(c.engine, scope.portfolio_id, after, kind, limit)
