"""create_app(platform): the FastAPI app with one error envelope, metrics and every route."""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bentos.api import (
    routes_accounts,
    routes_billing,
    routes_limits,
    routes_ops,
    routes_speech,
    routes_voices,
)
from bentos.api.guard import MULTIPART_ALLOWANCE, RequestGuard, limits_doc
from bentos.api.views import ErrorEnvelope
from bentos.core import metrics
from bentos.core.config import ServerSettings
from bentos.core.errors import DEFAULT_RETRY_AFTER_S, ErrorCode, PlatformError
from bentos.core.platform import Platform

ROUTERS = (routes_accounts, routes_voices, routes_speech, routes_billing, routes_limits, routes_ops)
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
    """FastAPI with RequestGuard outside everything, ServerErrorMiddleware included."""

    def build_middleware_stack(self) -> ASGIApp:
        return RequestGuard(super().build_middleware_stack(), self._upload_limit)

    def _upload_limit(self) -> int:
        platform: Platform | None = self.state.platform
        return (platform.server if platform else ServerSettings()).max_upload_bytes + MULTIPART_ALLOWANCE


class _RetryAfter:
    """Every 429 and 503 tells the client when to come back: `Retry-After` in whole seconds (≥ 1). A handler that
    knows (the limiter's next slot, the breaker's cool-down) sets it; any other gets the default."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (429, 503):
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"retry-after" for name, _ in headers):
                    headers.append((b"retry-after", str(DEFAULT_RETRY_AFTER_S).encode()))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, stamped)


class _Observe:
    """Request count and time to response start per route template. Pure ASGI: BaseHTTPMiddleware would wrap
    errors raised while the body streams (RequestGuard's 413) in an ExceptionGroup that no handler maps."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 0

        def observe(code: int) -> None:
            path = getattr(scope.get("route"), "path", "unmatched")
            metrics.observe_request(scope["method"], path, code, time.perf_counter() - start)

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                observe(status)
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            if not status:  # raised before answering: ServerErrorMiddleware answers 500
                observe(500)


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
    async def internal_error(_: Request, err: Exception) -> JSONResponse:
        # RequestGuard logs the trace (never into a response) and keeps the connection alive.
        return _envelope(500, ErrorCode.INTERNAL_ERROR, "something went wrong on our side", retryable=True)

    app.add_middleware(_Observe)
    app.add_middleware(_RetryAfter)
    for module in ROUTERS:
        app.include_router(module.router, responses=ERRORS)
    return app
