"""create_app(platform): the FastAPI app with one error envelope, metrics and every route."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from bentos import metrics
from bentos.api import routes_accounts, routes_billing, routes_ops, routes_speech, routes_voices
from bentos.errors import PlatformError
from bentos.runtime import Platform

log = logging.getLogger(__name__)


def _envelope(status: int, code: str, message: str, retryable: bool = False) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "retryable": retryable}}, status_code=status
    )


def create_app(platform: Platform | None) -> FastAPI:
    """platform may be set later on app.state.platform (the BentoML service builds it in its __init__)."""
    app = FastAPI(
        title="VoxPersona",
        version="0.1.0",
        description="Upload a voice, shape a persona, let others call it — metered and anchored on chain.",
    )
    app.state.platform = platform

    @app.exception_handler(PlatformError)
    async def platform_error(_: Request, err: PlatformError) -> JSONResponse:
        return JSONResponse(err.envelope(), status_code=err.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, err: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: {e.get('msg')}"
            for e in err.errors()[:5]
        )
        return _envelope(422, "invalid_request", problems or "the request is not valid")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(err.status_code, "http_error")
        return _envelope(err.status_code, code, str(err.detail))

    @app.exception_handler(Exception)
    async def internal_error(_: Request, err: Exception) -> JSONResponse:
        log.exception("unhandled error")  # the trace goes to the log, never into a response
        return _envelope(500, "internal_error", "something went wrong on our side", retryable=True)

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        length = request.headers.get("content-length")
        limit = request.app.state.platform.server.max_upload_bytes + 1_000_000
        if length and length.isdigit() and int(length) > limit:
            return _envelope(413, "file_too_large", "the request body is larger than the upload limit")
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        metrics.observe_request(request.method, path, response.status_code, time.perf_counter() - start)
        return response

    for module in (routes_accounts, routes_voices, routes_speech, routes_billing, routes_ops):
        app.include_router(module.router)
    return app
