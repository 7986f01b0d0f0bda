"""Response models of consent challenges, webhooks, the notification feed and account erasure."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from bentos.api.views import IsoTime, View


class ChallengeView(View):
    challenge_id: str
    sentence: str = Field(description="read this aloud (2–15 s) and POST the recording")
    language: str
    expires_at: IsoTime


class VerificationView(View):
    verified: bool
    cosine: float = Field(description="speaker-encoder cosine of the recording and the upload")
    threshold: float = Field(description="verified when cosine ≥ this (calibrated for the encoder)")
    attempts_left: int


class WebhookView(View):
    id: str
    url: str
    events: list[str]
    created_at: IsoTime
    secret: str | None = Field(
        default=None, description="signs every delivery: in the creation answer only, never again"
    )


class WebhookList(View):
    data: list[WebhookView]


class AttemptView(View):
    attempt: int
    status_code: int | None
    error: str | None
    duration_ms: int
    created_at: IsoTime


class DeliveryView(View):
    id: str
    webhook_id: str
    event: str
    event_id: str
    status: str = Field(description="pending | queued | done | failed")
    attempts: int
    last_status_code: int | None
    last_error: str | None
    replay_of: str | None
    created_at: IsoTime
    delivered_at: IsoTime
    log: list[AttemptView] = Field(default_factory=list, description="every attempt, in order")


class DeliveryList(View):
    data: list[DeliveryView]


class WebhookDeleted(View):
    id: str
    deleted: bool


class NotificationView(View):
    id: int
    event: str
    data: dict[str, Any]
    created_at: IsoTime
    read_at: IsoTime


class FeedView(View):
    data: list[NotificationView]
    unread: int


class MarkedRead(View):
    marked: int


class ErasureView(View):
    account_id: str
    personas_revoked: int
    uploads_deleted: int
    erased: bool = True
