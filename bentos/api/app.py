"""create_app(platform): the FastAPI app with one error envelope, metrics and every route."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bentos.api import (
    routes_accounts,
    routes_admin,
    routes_billing,
    routes_chat,
    routes_consent,
    routes_funds,
    routes_limits,
    routes_manage,
    routes_ops,
    routes_privacy,
    routes_realtime,
    routes_sessions,
    routes_speech,
    routes_statements,
    routes_voices,
    routes_wallet,
    routes_webhooks,
)
from bentos.api.guard import MULTIPART_ALLOWANCE, RequestGuard, limits_doc
from bentos.api.views import ErrorEnvelope
from bentos.core import metrics
from bentos.core.config import ServerSettings
from bentos.core.errors import DEFAULT_RETRY_AFTER_S, ErrorCode, PlatformError, outage_of
from bentos.core.logs import bound
from bentos.core.platform import Platform

access_log = logging.getLogger("bentos.access")

ROUTERS = (
    routes_accounts,
    routes_voices,
    routes_speech,
    routes_billing,
    routes_funds,
    routes_limits,
    routes_ops,
    routes_statements,
    routes_wallet,
    routes_realtime,
    routes_chat,
    routes_sessions,
    routes_manage,
    routes_admin,
    routes_consent,
    routes_webhooks,
    routes_privacy,
)
# Every operation documents the one error envelope (this also replaces FastAPI's own 422 schema, which the
# invalid_request handler below never sends).
ERRORS: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorEnvelope, "description": "refused: `error.code` says why"},
    "5XX": {"model": ErrorEnvelope, "description": "our side or the voice provider failed"},
}


def _envelope(status: int, code: str, message: str, retryable: bool = False) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "retryable": retryable}}, status_code=status
    )


class _GuardedApp(FastAPI):
    """FastAPI inside, from the outside in: the request context (id, access log, metrics), the security
    headers, CORS (when `server.cors_origins` lists any), then RequestGuard outside ServerErrorMiddleware — so
    the guard's own 413/422/500 answers are logged, counted and carry the headers too."""

    def build_middleware_stack(self) -> ASGIApp:
        # Built at the first request: the platform (and its settings) may be set after create_app.
        app: ASGIApp = RequestGuard(super().build_middleware_stack(), self._upload_limit)
        origins = list(self._server().cors_origins)
        if origins:
            app = CORSMiddleware(
                app,
                allow_origins=origins,
                allow_methods=["*"],
                allow_headers=["*"],
                expose_headers=["X-Request-Id", "Retry-After"],
                max_age=600,
            )
        return _RequestContext(_SecurityHeaders(app))

    def _server(self) -> ServerSettings:
        platform: Platform | None = self.state.platform
        return platform.server if platform else ServerSettings()

    def _upload_limit(self) -> int:
        return self._server().max_upload_bytes + MULTIPART_ALLOWANCE


SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
_JSON_TYPES = (b"application/json", b"application/problem+json")


class _StampResponseStart:
    """A pure ASGI layer that edits each HTTP response's start message (its status and headers) on the way out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def stamp(self, message: Message) -> Message:
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def stamped(message: Message) -> None:
            await send(self.stamp(message) if message["type"] == "http.response.start" else message)

        await self.app(scope, receive, stamped)


class _SecurityHeaders(_StampResponseStart):
    """Every response: no MIME sniffing, no framing, no referrer; JSON answers are never cached."""

    def stamp(self, message: Message) -> Message:
        headers = list(message.get("headers", []))
        present = {name.lower() for name, _ in headers}
        headers += [(name, value) for name, value in SECURITY_HEADERS if name not in present]
        content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
        if content_type.split(b";")[0].strip() in _JSON_TYPES and b"cache-control" not in present:
            headers.append((b"cache-control", b"no-store"))
        return {**message, "headers": headers}


_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def request_id_of(scope: Scope) -> str:
    """The caller's `X-Request-Id` when it is sane (≤ 64 of [A-Za-z0-9._-]), else a new one."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"x-request-id":
            text = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


class _RetryAfter(_StampResponseStart):
    """Every 429 and 503 tells the client when to come back: `Retry-After` in whole seconds (≥ 1). A handler that
    knows (the limiter's next slot, the breaker's cool-down) sets it; any other gets the default."""

    def stamp(self, message: Message) -> Message:
        headers = list(message.get("headers", []))
        if message["status"] in (429, 503) and not any(name.lower() == b"retry-after" for name, _ in headers):
            return {**message, "headers": [*headers, (b"retry-after", str(DEFAULT_RETRY_AFTER_S).encode())]}
        return message


class _RequestContext:
    """The outermost layer: gives the request its id (bound to every log line while it runs, returned in
    `X-Request-Id`), then one access line and the request metrics (count and time to response start per route
    template; never the path's values, the query string or the body). Pure ASGI: BaseHTTPMiddleware would wrap
    errors raised while the body streams (RequestGuard's 413) in an ExceptionGroup that no handler maps."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        start, status = time.perf_counter(), 0

        async def answered(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                self._observe(scope, status, start)
                headers = list(message.get("headers", []))
                # A route that names its own request (speech: the metered call's id, as GET /usage lists it)
                # keeps it; every other answer carries the id its log lines have.
                if not any(n.lower() == b"x-request-id" for n, _ in headers):
                    message = {**message, "headers": [*headers, (b"x-request-id", request_id.encode())]}
            await send(message)

        with bound(request_id=request_id):
            try:
                await self.app(scope, receive, answered)
            finally:
                if not status:  # raised or went away before answering
                    self._observe(scope, 500, start)

    @staticmethod
    def _observe(scope: Scope, status: int, start: float) -> None:
        seconds = time.perf_counter() - start
        route = getattr(scope.get("route"), "path", "unmatched")
        metrics.observe_request(scope["method"], route, status, seconds)
        access_log.log(
            logging.ERROR if status >= 500 else logging.INFO,
            "request",
            extra={
                "method": scope["method"],
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 1),
            },
        )


def create_app(platform: Platform | None) -> FastAPI:
    """platform may be set later on app.state.platform (the BentoML service builds it in its __init__)."""
    app = _GuardedApp(
        title="VoxPersona",
        version="0.1.0",
        description="Upload a voice, shape a persona, let others call it — metered and anchored on chain.\n\n"
        + limits_doc(ServerSettings().max_upload_bytes),
    )
    app.state.platform = platform

    @app.exception_handler(PlatformError)
    async def platform_error(_: Request, err: PlatformError) -> JSONResponse:
        headers = None
        if err.status in (429, 503):
            headers = {"Retry-After": str(max(1, err.retry_after or DEFAULT_RETRY_AFTER_S))}
        return JSONResponse(err.envelope(), status_code=err.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, err: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: {e.get('msg')}"
            for e in err.errors()[:5]
        )
        return _envelope(422, ErrorCode.INVALID_REQUEST, problems or "the request is not valid")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
        # FastAPI's 400 is a body it could not parse (e.g. JSON that is not UTF-8): the request is invalid.
        codes = {400: ErrorCode.INVALID_REQUEST, 404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}
        code = codes.get(err.status_code, ErrorCode.HTTP_ERROR)
        return _envelope(err.status_code, code, str(err.detail))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, err: Exception) -> JSONResponse:
        outage = outage_of(err)  # the database restarting is a 503 to retry, not our bug
        if outage is not None:
            return await platform_error(request, outage)
        # RequestGuard logs the trace (never into a response) and keeps the connection alive.
        return _envelope(500, ErrorCode.INTERNAL_ERROR, "something went wrong on our side", retryable=True)

    app.add_middleware(_RetryAfter)
    for module in ROUTERS:
        app.include_router(module.router, responses=ERRORS)
    return app
