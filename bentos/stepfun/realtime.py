"""StepFun's streaming-TTS socket (`wss://…/v1/realtime/audio?model=…`, stepfun-api.md §5) as a client: connect
with the key, learn the session id from `tts.connection.done`, then exchange `{"type", "data"}` JSON events.

Built on the `websockets` library (framing, ping/pong, close handshake); this module only knows the events.
Failures become the StepFun error hierarchy: a refused handshake by its HTTP status, a `tts.response.error` event
by its code, a dropped connection as ProviderConnectionError.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from .errors import (
    ContentBlocked,
    InputRejected,
    ProviderConfigError,
    ProviderConnectionError,
    ProviderProtocolError,
    ProviderServerError,
    ProviderTimeout,
    RateLimited,
    StepFunError,
    redact,
)
from .settings import ProviderSettings

REALTIME_PATH = "/realtime/audio"
CONNECTION_DONE = "tts.connection.done"
ERROR = "tts.response.error"
MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # one audio delta: a sentence of base64 audio


def realtime_url(base_url: str, model: str) -> str:
    """`https://api.stepfun.com/v1` → `wss://api.stepfun.com/v1/realtime/audio?model=…` (http → ws)."""
    parts = urlsplit(base_url.rstrip("/"))
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path + REALTIME_PATH, urlencode({"model": model}), ""))


def error_from_event(data: dict[str, Any], secret: str | None) -> StepFunError:
    """A `tts.response.error` event's data (`code`/`type` and `message`; the field names are not documented [?])."""
    code = str(data.get("code") or data.get("type") or "provider_error")
    message = redact(str(data.get("message") or code), secret)[:500]
    if code in ("invalid_api_key", "quota_exceeded"):
        return ProviderConfigError(message, code=code)
    if code == "rate_limit_exceeded":
        return RateLimited(message, code=code)
    if code == "censorship_blocked":
        return ContentBlocked(message, code=code)
    if code in ("request_params_invalid", "input_invalid"):
        return InputRejected(message, code=code)
    return ProviderServerError(message, code=code)


def _refused(err: InvalidStatus, secret: str | None) -> StepFunError:
    status = err.response.status_code
    try:
        body = json.loads(err.response.body or b"{}").get("error", {})
    except ValueError:
        body = {}
    code = body.get("type") if isinstance(body, dict) else None
    message = redact(str(body.get("message") if isinstance(body, dict) else "") or f"HTTP {status}", secret)
    if status in (401, 402, 403):
        return ProviderConfigError(message, code=code, status=status)
    if status == 429:
        return RateLimited(message, code=code, status=status)
    if 400 <= status < 500:
        return InputRejected(message, code=code, status=status)
    return ProviderServerError(message, code=code, status=status)


class RealtimeSocket:
    """One open provider session: `send` events (the session id is added), iterate `events()` until it closes."""

    def __init__(self, connection: ClientConnection, session_id: str, secret: str | None) -> None:
        self._connection = connection
        self.session_id = session_id
        self._secret = secret

    @classmethod
    async def open(cls, settings: ProviderSettings, model: str) -> RealtimeSocket:
        """Connect and wait for `tts.connection.done`. Raises StepFunError (nothing to close then)."""
        headers = {"Authorization": f"Bearer {settings.secret}"} if settings.secret else {}
        try:
            connection = await connect(
                realtime_url(settings.base_url, model),
                additional_headers=headers,
                open_timeout=settings.connect_timeout_s,
                max_size=MAX_MESSAGE_BYTES,
            )
        except InvalidStatus as err:
            raise _refused(err, settings.secret) from None
        except TimeoutError:
            raise ProviderTimeout("the provider's realtime socket did not open in time") from None
        except (OSError, InvalidHandshake) as err:
            raise ProviderConnectionError(f"{type(err).__name__}: {err}") from None
        socket = cls(connection, "", settings.secret)
        try:
            first = await socket._next(settings.read_timeout_s)
            if first is None or first["type"] != CONNECTION_DONE:
                raise ProviderProtocolError(
                    f"the provider opened the socket with {first and first['type']!r}"
                )
            socket.session_id = str(first["data"].get("session_id", ""))
        except BaseException:
            await socket.close()
            raise
        return socket

    async def send(self, kind: str, **data: Any) -> None:
        try:
            await self._connection.send(
                json.dumps({"type": kind, "data": {"session_id": self.session_id, **data}})
            )
        except ConnectionClosed as err:
            raise ProviderConnectionError(f"the provider closed the socket ({err.rcvd})") from None

    async def _next(self, timeout_s: float | None = None) -> dict[str, Any] | None:
        """The next event (None: the provider closed normally); `tts.response.error` raises its error."""
        try:
            raw = await asyncio.wait_for(self._connection.recv(), timeout_s)
        except TimeoutError:
            raise ProviderTimeout("the provider's realtime socket went quiet") from None
        except ConnectionClosed as err:
            if err.rcvd is not None and err.rcvd.code == 1000:
                return None
            raise ProviderConnectionError(f"the provider's socket broke off ({err.rcvd})") from None
        try:
            event = json.loads(raw)
            kind, data = str(event["type"]), event.get("data") or {}
        except (ValueError, KeyError, TypeError):
            raise ProviderProtocolError("the provider sent an event that is not {type, data} JSON") from None
        if kind == ERROR:
            raise error_from_event(data if isinstance(data, dict) else {}, self._secret)
        return {"type": kind, "data": data if isinstance(data, dict) else {}}

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Every event until the provider closes (an error event raises instead)."""
        while (event := await self._next()) is not None:
            yield event

    async def close(self) -> None:
        await self._connection.close()
