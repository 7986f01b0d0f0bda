"""Webhooks (signed, retried, logged, replayable) and the in-app notification feed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from bentos.api.deps import CallerDep, PlatformDep, body_hash, idempotent
from bentos.api.views import error_responses
from bentos.api.views_notify import (
    DeliveryList,
    DeliveryView,
    FeedView,
    MarkedRead,
    WebhookDeleted,
    WebhookList,
    WebhookView,
)
from bentos.core import notifications, webhooks
from bentos.core.notifications import EVENTS

router = APIRouter(tags=["notifications"])


class NewWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    url: str = Field(max_length=webhooks.URL_MAX_CHARS, description="http:// or https://")
    events: list[str] = Field(
        min_length=1, max_length=len(EVENTS), json_schema_extra={"items": {"enum": list(EVENTS)}}
    )


@router.post(
    "/webhooks", status_code=201, response_model=WebhookView, responses=error_responses(401, 409, 422)
)
def create_webhook(body: NewWebhook, request: Request, platform: PlatformDep, account: CallerDep) -> Response:
    """Register an endpoint for some events. The answer carries its signing `secret` — the only time it is
    shown. Each delivery is POSTed with `VoxPersona-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`."""

    def produce() -> tuple[int, WebhookView]:
        created = webhooks.create_webhook(
            platform.sessions, platform.webhook_settings, account, body.url, body.events
        )
        return 201, WebhookView.of(created)

    def without_secret(answer: WebhookView) -> WebhookView:
        return answer.model_copy(update={"secret": None})  # never stored for a replay

    return idempotent(request, account.id, "POST /webhooks", body_hash(body), produce, without_secret)


@router.get("/webhooks", responses=error_responses(401))
def list_webhooks(platform: PlatformDep, account: CallerDep) -> WebhookList:
    return WebhookList(data=[WebhookView.of(w) for w in webhooks.list_webhooks(platform.sessions, account)])


@router.delete("/webhooks/{webhook_id}", responses=error_responses(401, 404))
def delete_webhook(webhook_id: str, platform: PlatformDep, account: CallerDep) -> WebhookDeleted:
    webhooks.delete_webhook(platform.sessions, account, webhook_id)
    return WebhookDeleted(id=webhook_id, deleted=True)


@router.get("/webhooks/{webhook_id}/deliveries", responses=error_responses(401, 404, 422))
def list_deliveries(
    webhook_id: str,
    platform: PlatformDep,
    account: CallerDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DeliveryList:
    """The delivery log: newest first, each with every attempt (status code, error, duration)."""
    found = webhooks.list_deliveries(platform.sessions, account, webhook_id, limit)
    return DeliveryList(data=[DeliveryView.of(d) for d in found])


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/replay",
    status_code=202,
    responses=error_responses(401, 404),
)
def replay_delivery(
    webhook_id: str, delivery_id: str, platform: PlatformDep, account: CallerDep
) -> DeliveryView:
    """Send a delivery's event again (same body and event id), as a new delivery."""
    return DeliveryView.of(webhooks.replay(platform.sessions, account, webhook_id, delivery_id))


@router.get("/notifications", responses=error_responses(401, 422))
def get_notifications(
    platform: PlatformDep,
    account: CallerDep,
    unread: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> FeedView:
    """Your feed, newest first: persona live/failed/under review, settlements confirmed, reports resolved."""
    return FeedView.of(notifications.feed(platform.sessions, account.id, limit, unread))


@router.post("/notifications/read", responses=error_responses(401))
def mark_notifications_read(platform: PlatformDep, account: CallerDep) -> MarkedRead:
    return MarkedRead(marked=notifications.mark_read(platform.sessions, account.id))
