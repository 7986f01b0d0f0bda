"""Request-scoped helpers: the platform, the caller, and idempotent execution of POSTs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from bentos.core.accounts import authenticate
from bentos.core.errors import PlatformError
from bentos.core.idempotency import IdempotencyStore, StoredResponse
from bentos.core.platform import Platform
from bentos.store.models import Account


def platform_of(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def caller(request: Request) -> Account:
    with platform_of(request).sessions() as session:
        return authenticate(session, request.headers.get("authorization"))


def optional_caller(request: Request) -> Account | None:
    return caller(request) if request.headers.get("authorization") else None


def body_hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def anonymous_ref(request: Request) -> str:
    """Who an unauthenticated caller is, for idempotency: more than the IP (many people share one), hashed."""
    host = request.client.host if request.client else "?"
    who = f"{host}|{request.headers.get('user-agent', '')}|{request.headers.get('origin', '')}"
    return "anon:" + hashlib.sha256(who.encode()).hexdigest()[:40]


def idempotent(
    request: Request,
    account_ref: str,
    route: str,
    req_hash: str,
    produce: Callable[[], tuple[int, Any]],
    replayable: Callable[[Any], Any] | None = None,
) -> Response:
    """Run `produce` (→ status, JSON payload) at most once per Idempotency-Key; replays return the stored answer.

    Client errors are stored too (the same request would fail the same way); retryable ones free the key.
    `replayable(payload)` is what gets stored for replays: use it to leave secrets out (they are shown once).
    """
    key = request.headers.get("idempotency-key")
    if key is None:
        status, payload = produce()
        return JSONResponse(payload, status_code=status)
    store = IdempotencyStore(platform_of(request).sessions)
    stored = store.begin(key, account_ref, route, req_hash)
    if stored is not None:
        return Response(
            stored.body,
            stored.status_code,
            media_type=stored.content_type,
            headers={"Idempotent-Replayed": "true"},
        )
    try:
        status, payload = produce()
    except PlatformError as err:
        if err.retryable or err.status >= 500:
            store.abandon(key, account_ref, route)
        else:
            store.finish(
                key,
                account_ref,
                route,
                StoredResponse(err.status, json.dumps(err.envelope()).encode(), "application/json"),
            )
        raise
    except BaseException:
        store.abandon(key, account_ref, route)
        raise
    response = JSONResponse(payload, status_code=status)
    stored_body = bytes(JSONResponse(replayable(payload)).body) if replayable else bytes(response.body)
    store.finish(key, account_ref, route, StoredResponse(status, stored_body, "application/json"))
    return response
