"""Webhooks: endpoints an account registers, and the signed delivery of its events (Stripe-style).

Each delivery is POSTed with `VoxPersona-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">` keyed with the
webhook's secret (shown once, when the webhook is created). Deliveries are sent by the job queue, retried with
bounded exponential backoff, every attempt logged; any delivery can be replayed as a new one.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bentos.core.accounts import Caller
from bentos.core.errors import ErrorCode, PlatformError, not_found
from bentos.core.ids import new_id
from bentos.core.notifications import EVENTS
from bentos.core.outbound import DONE, FAILED, PENDING, RetryPolicy, dispatch, record_outcome, take
from bentos.store.models import utcnow
from bentos.store.notify_models import Webhook, WebhookAttempt, WebhookDelivery

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "VoxPersona-Signature"
URL_MAX_CHARS = 2000
MAX_WEBHOOKS = 10


@dataclass(frozen=True)
class WebhookSettings:
    """configs/webhooks/*.yaml."""

    # Loopback and private addresses are fine where platform and receivers share a host (the embedded setup,
    # tests); a public deployment sets this false so a webhook can't reach its internal network (SSRF).
    allow_private: bool = True
    allowed_hosts: Sequence[str] = ()  # always allowed, e.g. an internal receiver by name
    timeout_s: float = 5.0
    max_attempts: int = 8
    retry_base_s: float = 2.0
    retry_cap_s: float = 600.0
    lease_s: float = 120.0

    @property
    def policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_attempts, self.retry_base_s, self.retry_cap_s, self.lease_s)


def sign(secret: str, body: str, timestamp: int) -> str:
    """The signature header's value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, body: str, header: str, tolerance_s: int = 300) -> bool:
    """A receiver's check (also used by the tests): the signature matches and is recent."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return abs(time.time() - timestamp) <= tolerance_s and hmac.compare_digest(expected, parts.get("v1", ""))


def _bad_url(message: str) -> PlatformError:
    return PlatformError(ErrorCode.INVALID_WEBHOOK_URL, message, 422)


def check_url(url: str, settings: WebhookSettings) -> None:
    """http(s) with a host; without `allow_private`, every address the host resolves to must be public."""
    if len(url) > URL_MAX_CHARS:
        raise _bad_url(f"url must be at most {URL_MAX_CHARS} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _bad_url("url must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise _bad_url("url must not carry credentials")
    if settings.allow_private or parts.hostname in settings.allowed_hosts:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise _bad_url(f"url host {parts.hostname!r} does not resolve") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise _bad_url("url must reach a public address (private and loopback addresses are refused)")


# --- managing webhooks -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookInfo:
    id: str
    url: str
    events: list[str]
    created_at: datetime | None
    secret: str | None = None  # only in the answer to its creation


@dataclass(frozen=True)
class AttemptInfo:
    attempt: int
    status_code: int | None
    error: str | None
    duration_ms: int
    created_at: datetime | None


@dataclass(frozen=True)
class DeliveryInfo:
    id: str
    webhook_id: str
    event: str
    event_id: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    replay_of: str | None
    created_at: datetime | None
    delivered_at: datetime | None
    log: list[AttemptInfo] = field(default_factory=list)


def _info(hook: Webhook, secret: str | None = None) -> WebhookInfo:
    return WebhookInfo(hook.id, hook.url, list(hook.events), hook.created_at, secret)


def create_webhook(
    sessions: sessionmaker[Session], settings: WebhookSettings, caller: Caller, url: str, events: list[str]
) -> WebhookInfo:
    unknown = sorted(set(events) - set(EVENTS))
    if not events or unknown:
        raise PlatformError(
            ErrorCode.INVALID_REQUEST,
            f"events must be a non-empty list of {', '.join(EVENTS)}"
            + (f" (unknown: {unknown})" if unknown else ""),
            422,
        )
    check_url(url, settings)
    with sessions.begin() as session:
        count = len(list(session.scalars(_owned(caller.id))))
        if count >= MAX_WEBHOOKS:
            raise PlatformError(
                ErrorCode.INVALID_REQUEST, f"at most {MAX_WEBHOOKS} webhooks per account", 409
            )
        secret = "whsec_" + secrets.token_urlsafe(24)
        hook = Webhook(
            id=new_id("wh"), account_id=caller.id, url=url, events=sorted(set(events)), secret=secret
        )
        session.add(hook)
        session.flush()
        return _info(hook, secret)


def _owned(account_id: str):  # type: ignore[no-untyped-def]
    return select(Webhook).where(Webhook.account_id == account_id, Webhook.deleted_at.is_(None))


def _own_hook(session: Session, caller: Caller, webhook_id: str) -> Webhook:
    hook = session.get(Webhook, webhook_id)
    if hook is None or hook.account_id != caller.id or hook.deleted_at is not None:
        raise not_found(f"webhook {webhook_id}")  # another account's looks missing
    return hook


def list_webhooks(sessions: sessionmaker[Session], caller: Caller) -> list[WebhookInfo]:
    with sessions() as session:
        return [_info(h) for h in session.scalars(_owned(caller.id).order_by(Webhook.created_at))]


def delete_webhook(sessions: sessionmaker[Session], caller: Caller, webhook_id: str) -> None:
    """Stop sending to it: its undelivered deliveries are dropped, its log is kept."""
    with sessions.begin() as session:
        hook = _own_hook(session, caller, webhook_id)
        hook.deleted_at = utcnow()
        for d in session.scalars(select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id)):
            if d.status not in (DONE, FAILED):
                d.status, d.last_error = FAILED, "the webhook was deleted"


def _delivery_info(session: Session, d: WebhookDelivery, with_log: bool) -> DeliveryInfo:
    log_rows: list[WebhookAttempt] = []
    if with_log:
        stmt = (
            select(WebhookAttempt).where(WebhookAttempt.delivery_id == d.id).order_by(WebhookAttempt.attempt)
        )
        log_rows = list(session.scalars(stmt))
    attempts = [AttemptInfo(a.attempt, a.status_code, a.error, a.duration_ms, a.created_at) for a in log_rows]
    return DeliveryInfo(d.id, d.webhook_id, d.event, d.event_id, d.status, d.attempts, d.last_status_code,
                        d.last_error, d.replay_of, d.created_at, d.delivered_at, attempts)  # fmt: skip


def list_deliveries(
    sessions: sessionmaker[Session], caller: Caller, webhook_id: str, limit: int = 50
) -> list[DeliveryInfo]:
    """The webhook's deliveries, newest first, each with its attempt log."""
    with sessions() as session:
        hook = _own_hook(session, caller, webhook_id)
        rows = session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.webhook_id == hook.id)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
            .limit(limit)
        )
        return [_delivery_info(session, d, True) for d in rows]


def replay(
    sessions: sessionmaker[Session], caller: Caller, webhook_id: str, delivery_id: str
) -> DeliveryInfo:
    """Send a delivery's event again, as a new delivery with the same body (event id included)."""
    with sessions.begin() as session:
        hook = _own_hook(session, caller, webhook_id)
        original = session.get(WebhookDelivery, delivery_id)
        if original is None or original.webhook_id != hook.id:
            raise not_found(f"delivery {delivery_id}")
        again = WebhookDelivery(
            id=new_id("whd"),
            webhook_id=hook.id,
            event=original.event,
            event_id=original.event_id,
            body=original.body,
            replay_of=original.id,
            status=PENDING,
            attempts=0,
            next_attempt_at=utcnow(),
        )
        session.add(again)
        session.flush()
        return _delivery_info(session, again, False)


# --- sending -----------------------------------------------------------------------------------------------


class WebhookSender:
    """Claims due deliveries for the job queue and makes one attempt per job."""

    def __init__(self, sessions: sessionmaker[Session], settings: WebhookSettings) -> None:
        self.sessions = sessions
        self.settings = settings

    def dispatch_due(self, enqueue: Callable[[str], object]) -> int:
        return dispatch(self.sessions, WebhookDelivery, self.settings.policy, enqueue)

    def attempt(self, delivery_id: str) -> None:
        """POST the delivery once and log it; the outcome schedules the next attempt or ends it."""
        with self.sessions.begin() as session:
            d = session.get(WebhookDelivery, delivery_id)
            hook = session.get(Webhook, d.webhook_id) if d is not None else None
            if d is None or hook is None or hook.deleted_at is not None:
                return
            if not take(session, WebhookDelivery, delivery_id):
                return  # another job has it, or it ended
            url, secret, body, number = hook.url, hook.secret, d.body, d.attempts + 1
        status, error, started = None, None, time.monotonic()
        try:
            check_url(url, self.settings)  # again: the host may resolve elsewhere now
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "VoxPersona-Webhooks/1",
                SIGNATURE_HEADER: sign(secret, body, int(time.time())),
            }
            with httpx.Client(timeout=self.settings.timeout_s, follow_redirects=False) as client:
                response = client.post(url, content=body.encode(), headers=headers)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"the receiver answered HTTP {status}"
        except PlatformError as refused:
            error = refused.message
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: the receiver could not be reached"
        except Exception as exc:  # a malformed address etc.: counted, so the retries end
            error = f"{type(exc).__name__}: the delivery could not be sent"
        duration_ms = int((time.monotonic() - started) * 1000)
        with self.sessions.begin() as session:
            d = session.get(WebhookDelivery, delivery_id)
            if d is None:
                return
            session.add(WebhookAttempt(delivery_id=d.id, attempt=number, status_code=status, error=error,
                                       duration_ms=duration_ms))  # fmt: skip
            d.last_status_code = status
            record_outcome(d, self.settings.policy, error)
            if error is None:
                d.delivered_at, d.last_error = utcnow(), None
        if error is not None:
            log.info("webhook delivery %s attempt %d failed: %s", delivery_id, number, error)
