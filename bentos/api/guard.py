"""RequestGuard: the outermost ASGI layer. Bounds request bodies before anything decodes them, and turns any
unhandled exception into the 500 envelope instead of letting the server drop the connection.

- Every body except `POST /files` is JSON: at most JSON_BODY_LIMIT bytes (413 `request_too_large`) and nested at
  most MAX_JSON_DEPTH levels (422 `invalid_request`), checked on the raw bytes before the app sees them.
- `POST /files` is counted as it streams (whatever Content-Length says, or without one) and cut off at
  `server.max_upload_bytes` + MULTIPART_ALLOWANCE (413 `file_too_large`).
- A response that starts while the request body is still unread carries `Connection: close`, so the server stops
  reading (and discarding) the rest of it.
- A body that stops arriving (a slow-loris client: Content-Length promised, bytes withheld) is answered 408
  `invalid_request` after BODY_IDLE_TIMEOUT_S without a byte, and the connection closed: it never holds a
  request open for ever.
"""

from __future__ import annotations

import logging
import re
from array import array
from collections.abc import Callable
from itertools import accumulate
from typing import Any

import anyio
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bentos.core.errors import PlatformError

log = logging.getLogger(__name__)

JSON_BODY_LIMIT = 256 * 1024  # bytes, any request body other than POST /files
MAX_JSON_DEPTH = 32  # arrays/objects inside each other
MULTIPART_ALLOWANCE = 64 * 1024  # POST /files: multipart framing and fields on top of server.max_upload_bytes
UPLOAD_ROUTE = ("POST", "/files")
# Seconds a request body may go without a byte arriving. Read per request, so tests may lower it.
BODY_IDLE_TIMEOUT_S = 30.0


def limits_doc(default_upload_bytes: int) -> str:
    """The limits in words, for the OpenAPI description."""
    return (
        f"**Request limits** (refused before anything is decoded): a JSON body is at most "
        f"{JSON_BODY_LIMIT // 1024} KiB (413 `request_too_large`) and nested at most {MAX_JSON_DEPTH} levels "
        f"deep (422 `invalid_request`); `POST /files` takes a file of at most `server.max_upload_bytes` "
        f"({default_upload_bytes / 2**20:g} MiB by default; 413 `file_too_large`) in a request of at most that "
        f"+ {MULTIPART_ALLOWANCE // 1024} KiB, counted as it streams, chunked or not."
    )


# A JSON string, or an unterminated one up to the end (the decoder stops there): linear, never backtracks.
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 / -1 as signed bytes


def json_depth(body: bytes) -> int:
    """The deepest nesting of brackets outside JSON strings: a bound on how deep a JSON decoder recurses (an
    unmatched closer lowers the count, but a decoder refuses the body there, before going any deeper)."""
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    return max(accumulate(array("b", brackets.translate(_STEPS)), initial=0))


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


INTERNAL_ERROR = PlatformError("internal_error", "something went wrong on our side", 500, True).envelope()


class BodyTooLarge(PlatformError):
    def __init__(self, code: str, limit: int) -> None:
        super().__init__(code, f"the request body is larger than {limit} bytes", 413)


class RequestGuard:
    def __init__(self, app: ASGIApp, upload_limit: Callable[[], int]) -> None:
        self.app = app
        self.upload_limit = upload_limit  # read per request: the platform's settings may arrive after start

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(scope, receive, send)
        try:
            try:
                app_receive = await self._admit(scope, exchange)
            except PlatformError as refusal:
                await _respond(exchange.send, refusal.status, refusal.envelope())
                return
            if app_receive is not None:
                await self.app(scope, app_receive, exchange.send)
        except Exception:
            log.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if not exchange.started:
                await _respond(exchange.send, 500, INTERNAL_ERROR)
            # Otherwise the app's 500 handler answered (ServerErrorMiddleware re-raises after that) or the
            # response was cut short: returning rather than raising keeps a completed exchange's connection.

    async def _admit(self, scope: Scope, exchange: _Exchange) -> Receive | None:
        """The receive to hand the app (None: the client went away); PlatformError when the body is refused."""
        upload = (scope["method"], _route_path(scope)) == UPLOAD_ROUTE
        if upload:
            exchange.limit, exchange.code = self.upload_limit(), "file_too_large"
        if exchange.declared > exchange.limit:
            raise BodyTooLarge(exchange.code, exchange.limit)
        if upload:  # streamed to the app, counted on the way
            return exchange.receive
        body = await exchange.read_all()
        if body is not None and json_depth(body) > MAX_JSON_DEPTH:
            raise PlatformError("invalid_request", f"JSON nested deeper than {MAX_JSON_DEPTH} levels", 422)
        return None if body is None else exchange.replay(body)


class _Exchange:
    """One request: its body counted against `limit` as it is received, and whether the response started."""

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        length = headers.get("content-length", "")
        self.declared = int(length) if length.isdigit() else 0
        self.pending = self.declared > 0 or "transfer-encoding" in headers  # request body not all read yet
        self.limit, self.code = JSON_BODY_LIMIT, "request_too_large"
        self.received = 0
        self.started = False
        self._receive, self._send = receive, send

    async def receive(self) -> Message:
        if not self.pending:  # the body is read: the app may wait as long as it likes for the disconnect
            message = await self._receive()
        else:
            timeout = BODY_IDLE_TIMEOUT_S
            try:
                with anyio.fail_after(timeout):
                    message = await self._receive()
            except TimeoutError:
                raise PlatformError(
                    "invalid_request",
                    f"the request body stopped arriving (nothing for {timeout:g} s)",
                    408,
                    True,
                ) from None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                raise BodyTooLarge(self.code, self.limit)
            self.pending = self.pending and message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            if self.pending:  # answered before the body was read (401, 413): close rather than drain it
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
        await self._send(message)

    async def read_all(self) -> bytes | None:
        chunks: list[bytes] = []
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)

    def replay(self, body: bytes) -> Receive:
        """A receive that hands the app the body read already, then whatever the server says next."""
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> Message:
            return messages.pop() if messages else await self._receive()

        return receive


async def _respond(send: Send, status: int, payload: Any) -> None:
    response = JSONResponse(payload, status_code=status)
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})
