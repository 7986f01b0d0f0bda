"""Request-scoped dependencies (the platform, its parts, the caller) and idempotent execution of JSON POSTs."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from bentos.core.accounts import Caller, identify
from bentos.core.idempotency import JSON, Idempotency, StoredResponse, payload_hash
from bentos.core.platform import Platform
from bentos.core.speech import TextToSpeech

# Documents the scheme in OpenAPI (and /docs); the key itself is checked by `caller`.
_bearer = HTTPBearer(
    auto_error=False, description="a platform API key (`vpk_…`, from sign-up) or a session token (`vps_…`)"
)
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
# `openapi_extra` of a route that works without a key too (a key, when sent, must be valid): the empty
# requirement makes the bearer scheme optional in OpenAPI.
OPTIONAL_AUTH: dict[str, Any] = {"security": [{}]}


def platform_of(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(platform_of)]


def caller(request: Request, platform: PlatformDep, _: Bearer) -> Caller:
    """The account behind the bearer (API key or session token); 403 when the key's scope forbids this route."""
    who = identify(platform.sessions, request.headers.get("authorization"), request.method, request.url.path)
    # A session opened with a key shares that key's bucket; password sessions share one bucket per account, so
    # opening more sessions never buys more requests.
    limited = who.key_id or (f"account:{who.id}" if who.session_id else None)
    if limited is not None:
        platform.key_limiter.check(limited)
    return who


def optional_caller(request: Request, platform: PlatformDep, _: Bearer) -> Caller | None:
    return caller(request, platform, _) if request.headers.get("authorization") else None


CallerDep = Annotated[Caller, Depends(caller)]
OptionalCallerDep = Annotated[Caller | None, Depends(optional_caller)]


def text_to_speech(platform: PlatformDep) -> TextToSpeech:
    """Speech as every route sees it: texts up to `server.tts_long_max_chars` (longer than one provider call are
    spoken in parts as one audio), quotes alike."""
    server = platform.server
    return TextToSpeech(
        platform.sessions,
        platform.blobs,
        platform.async_provider,
        platform.prices,
        server.tts_max_chars,
        server.idempotency_lease_s,
        long_max_chars=server.tts_long_max_chars,
        long_concurrency=server.tts_long_concurrency,
        long_first_chars=server.tts_long_first_chars,
        blocklist=platform.moderation,
    )


SpeechDep = Annotated[TextToSpeech, Depends(text_to_speech)]


def anonymous_ref(request: Request) -> str:
    """Who an unauthenticated caller is, for idempotency: more than the IP (many people share one), hashed."""
    host = request.client.host if request.client else "?"
    who = f"{host}|{request.headers.get('user-agent', '')}|{request.headers.get('origin', '')}"
    return "anon:" + hashlib.sha256(who.encode()).hexdigest()[:40]


def replayed(stored: StoredResponse) -> Response:
    return Response(
        stored.body,
        stored.status_code,
        media_type=stored.content_type,
        headers={"Idempotent-Replayed": "true"},
    )


def body_hash(body: BaseModel) -> str:
    return payload_hash(body.model_dump())


def _json(status: int, answer: BaseModel) -> JSONResponse:
    return JSONResponse(answer.model_dump(mode="json", by_alias=True), status)


M = TypeVar("M", bound=BaseModel)


def idempotent(
    request: Request,
    account_ref: str,
    route: str,
    fingerprint: str,
    produce: Callable[[], tuple[int, M]],
    replayable: Callable[[M], M] | None = None,
) -> Response:
    """Run `produce` (→ status, response model) at most once per Idempotency-Key; replays get the stored answer.

    `fingerprint` identifies the request (a hash of its body). `replayable(answer)` is what gets stored for
    replays: use it to leave secrets out (they are shown once).
    """
    key = request.headers.get("idempotency-key")
    platform = platform_of(request)
    claim = Idempotency(
        platform.sessions, key, account_ref, route, fingerprint, lease_s=platform.server.idempotency_lease_s
    )
    stored = claim.begin()
    if stored is not None:
        return replayed(stored)
    with claim.attempt():
        status, answer = produce()
        response = _json(status, answer)
        kept = _json(status, replayable(answer)) if replayable else response
    claim.finish(StoredResponse(status, bytes(kept.body), JSON))
    return response
