"""Realtime speech: the WebSocket `/v1/realtime/audio?model=…`, StepFun's streaming-TTS protocol (the session
itself is `core/realtime.py`).

The handshake is always accepted; a refused key (like every later refusal: unknown persona, short balance) is a
`tts.response.error` event `{code, message, retryable}` followed by close 1008 — a browser's WebSocket can't read
an HTTP status from a refused handshake, but it can read an event.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from bentos.core.accounts import Caller, identify
from bentos.core.platform import Platform
from bentos.core.realtime import RealtimeSpeech

router = APIRouter(tags=["speech"])


class _Client:
    """Starlette's WebSocket as core/realtime.py's Channel: JSON events in and out, None once the client left."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket

    async def receive(self) -> dict[str, Any] | None:
        try:
            message = await self.websocket.receive()
        except (WebSocketDisconnect, RuntimeError):
            return None
        if message["type"] == "websocket.disconnect":
            return None
        event = json.loads(message.get("text") or message.get("bytes") or b"")  # ValueError: not JSON
        if not isinstance(event, dict):
            raise ValueError("an event is a JSON object")
        return event

    async def send(self, event: dict[str, Any]) -> None:
        if self.websocket.application_state == WebSocketState.CONNECTED:
            # The client may have gone away: the session notices on its next receive.
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                await self.websocket.send_text(json.dumps(event, ensure_ascii=False))

    async def close(self, code: int, reason: str = "") -> None:
        if self.websocket.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError, OSError):
                await self.websocket.close(code, reason)


@router.websocket("/v1/realtime/audio")
async def realtime_audio(websocket: WebSocket, model: str | None = None) -> None:
    """Streaming TTS with a persona (`voice_id` = persona id in `tts.create`): StepFun's protocol, metered once
    per session."""
    platform: Platform = websocket.app.state.platform
    server = platform.server

    def authenticate() -> Caller:
        # Speaking: what a `read` key may not do (bentos.core.scopes).
        who = identify(
            platform.sessions, websocket.headers.get("authorization"), "POST", "/v1/realtime/audio"
        )
        limited = who.key_id or who.session_id
        if limited is not None:
            platform.key_limiter.check(limited)
        return who

    speech = RealtimeSpeech(
        platform.sessions,
        platform.prices,
        platform.provider_settings,
        server.realtime_session_max_chars,
        server.realtime_idle_s,
    )
    await websocket.accept()
    await speech.serve(_Client(websocket), authenticate, model)
