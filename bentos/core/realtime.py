"""Realtime speech: one client session of StepFun's streaming-TTS protocol (stepfun-api.md §5), authenticated,
held, proxied to the provider's socket and metered once.

    client                              platform                           provider
    (connect, Bearer key)        ──>    authenticate
                                 <──    tts.connection.done {session_id}
    tts.create {voice_id, …}     ──>    persona callable? hold the price of `session_max_chars`
                                        (402 → tts.response.error, no provider connection)
                                                                    ──>    connect, tts.create {provider voice}
                                 <──    tts.response.created        <──
    tts.text.delta / flush / done ──>   count, forward              ──>
                                 <──    sentence.start, audio.delta, sentence.end, text.flushed, audio.done
    (the platform closes after tts.response.audio.done)

Billing: what was delivered — every character sent when the provider finished (`tts.response.audio.done`),
else the characters of the sentences whose audio was all sent (`sentence.end`) — is captured with one usage row
(request id = the session id), the rest of the hold released in the same transaction; nothing delivered releases
it all. Any refusal or failure is a `tts.response.error` event (`code`, `message`, `retryable` as in the HTTP
error envelope), then the socket closes.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
import anyio.to_thread
from sqlalchemy.orm import Session, sessionmaker

from bentos.billing import holds
from bentos.billing.holds import Purpose, Reservation
from bentos.billing.pricing import PriceBook
from bentos.core import funds, metrics
from bentos.core.accounts import Caller
from bentos.core.errors import ErrorCode, PlatformError, from_provider_error
from bentos.core.ids import new_id
from bentos.core.personas import callable_persona
from bentos.core.speech import audio_ms
from bentos.stepfun.errors import ProviderProtocolError, StepFunError
from bentos.stepfun.limiter import CallerTag, Permit, shared_limiter
from bentos.stepfun.models import RESPONSE_FORMATS
from bentos.stepfun.realtime import RealtimeSocket
from bentos.stepfun.settings import ProviderSettings
from bentos.store.models import Persona

log = logging.getLogger(__name__)

NORMAL_CLOSE = 1000
REFUSED_CLOSE = 1008  # policy violation: the key, the persona, the balance, the event
FAILED_CLOSE = 1011  # the provider (or we) failed mid-session
PROVIDER_OPTIONS = ("sample_rate", "speed", "volume")  # passed on from tts.create when a client sends them
_FORWARDED = {"tts.text.delta", "tts.text.flush", "tts.text.done"}


class Channel(Protocol):
    """The client's socket as the session needs it (the API adapts Starlette's WebSocket)."""

    async def receive(self) -> dict[str, Any] | None:
        """The next JSON event; None when the client went away. Raises ValueError for a frame that isn't one."""

    async def send(self, event: dict[str, Any]) -> None: ...

    async def close(self, code: int, reason: str = "") -> None: ...


class _Refused(Exception):
    """The session ends with this error event."""

    def __init__(self, error: PlatformError, close_code: int = REFUSED_CLOSE) -> None:
        super().__init__(error.message)
        self.error, self.close_code = error, close_code


def _invalid(message: str) -> _Refused:
    return _Refused(PlatformError(ErrorCode.INVALID_REQUEST, message, 400))


@dataclass
class _Meter:
    """What a session spoke: characters sent to the provider, and those whose audio reached the client."""

    sent: int = 0
    sentences: int = 0  # characters of the sentences ended (sentence.end's text)
    finished: bool = False  # tts.response.audio.done reached the client
    audio: bytearray = field(default_factory=bytearray)

    @property
    def delivered(self) -> int:
        return self.sent if self.finished else min(self.sent, self.sentences)


@dataclass(frozen=True)
class RealtimeSpeech:
    """The parts a realtime session needs; `serve` runs one."""

    sessions: sessionmaker[Session]
    prices: PriceBook
    provider: ProviderSettings
    session_max_chars: int = 2000
    idle_s: float = 60.0
    # A session lives at most this long: its hold must settle well before the stale-hold sweeper
    # (funds.STALE_HOLD_S, 15 min) would release it.
    max_session_s: float = 600.0

    async def serve(self, client: Channel, authenticate: Callable[[], Caller], model: str | None) -> None:
        """Run one session on `client` to its end (the client's socket is closed when this returns).
        `authenticate` checks the Bearer key (PlatformError when it can't be used)."""
        session = _Session(self, client, new_id("rt"))
        try:
            await session.run(authenticate, model)
        except _Refused as refusal:
            await session.refuse(refusal)
        except Exception:
            log.exception("realtime session %s failed", session.id)
            error = PlatformError(ErrorCode.INTERNAL_ERROR, "something went wrong on our side", 500, True)
            await session.refuse(_Refused(error, FAILED_CLOSE))
        finally:
            with anyio.CancelScope(shield=True):
                await session.settle()


class _Session:
    def __init__(self, parts: RealtimeSpeech, client: Channel, session_id: str) -> None:
        self.parts, self.client, self.id = parts, client, session_id
        self.meter = _Meter()
        self.last_activity = self.started = time.monotonic()
        self.hold: Reservation | None = None
        self.caller: Caller | None = None
        self.persona: Persona | None = None
        self.model = ""
        self.format = "mp3"
        self.rate = 24000
        self.closed = False

    # -- the client side --------------------------------------------------------------------------------------

    async def send(self, kind: str, **data: Any) -> None:
        self.last_activity = time.monotonic()
        await self.client.send({"type": kind, "data": {"session_id": self.id, **data}})

    async def refuse(self, refusal: _Refused) -> None:
        if self.closed:
            return
        await self.send("tts.response.error", **refusal.error.envelope()["error"])
        await self.close(refusal.close_code)

    async def close(self, code: int, reason: str = "") -> None:
        if not self.closed:
            self.closed = True
            await self.client.close(code, reason)

    async def receive(self) -> dict[str, Any] | None:
        """The client's next event, checked for this session's id; None when it left or the session idled out."""
        while True:
            now = time.monotonic()
            if now - self.started >= self.parts.max_session_s:
                await self.close(NORMAL_CLOSE, f"a session lasts at most {self.parts.max_session_s:g} s")
                return None
            remaining = (
                min(self.last_activity + self.parts.idle_s, self.started + self.parts.max_session_s) - now
            )
            if remaining <= 0:
                await self.close(NORMAL_CLOSE, f"no activity for {self.parts.idle_s:g} s")
                return None
            with anyio.move_on_after(remaining):
                try:
                    event = await self.client.receive()
                except ValueError:
                    raise _invalid("events are JSON text frames: {type, data}") from None
                if event is None:
                    self.closed = True
                    return None
                self.last_activity = time.monotonic()
                data = event.get("data")
                if not isinstance(data, dict) or data.get("session_id") != self.id:
                    raise _invalid("every event carries data.session_id from tts.connection.done")
                return event

    # -- the session ---------------------------------------------------------------------------------------

    async def run(self, authenticate: Callable[[], Caller], model: str | None) -> None:
        try:
            self.caller = await anyio.to_thread.run_sync(authenticate)
        except PlatformError as err:
            raise _Refused(err) from None
        await self.send("tts.connection.done")
        create = await self.receive()
        if create is None:
            return
        if create.get("type") != "tts.create":
            raise _invalid(f"the first event is tts.create, not {create.get('type')!r}")
        await self.create(create["data"], model)
        permit = await self.permit()
        try:
            try:
                provider = await RealtimeSocket.open(self.parts.provider, self.model)
            except StepFunError as err:
                raise _Refused(from_provider_error(err), FAILED_CLOSE) from None
            try:
                await self.proxy(provider, create["data"])
            finally:
                with anyio.CancelScope(shield=True):
                    await provider.close()
        finally:
            permit.release()

    async def create(self, data: dict[str, Any], model: str | None) -> None:
        """Check the persona, the model and the format, then hold the session's price (402 when short)."""
        assert self.caller is not None
        caller = self.caller
        try:
            self.persona = await anyio.to_thread.run_sync(
                self._persona, str(data.get("voice_id", "")), caller
            )
        except PlatformError as err:
            raise _Refused(err) from None
        self.model = model or self.persona.model
        if self.model not in self.parts.prices.list_price_per_10k:
            raise _invalid(f"model must be one of {sorted(self.parts.prices.list_price_per_10k)}")
        self.format = str(data.get("response_format") or "mp3")
        if self.format not in RESPONSE_FORMATS:
            raise _invalid(f"response_format must be one of {list(RESPONSE_FORMATS)}")
        rate = data.get("sample_rate")
        self.rate = rate if isinstance(rate, int) else self.rate
        charge = self.parts.prices.charge(
            self.model, self.parts.session_max_chars, self.persona.price_multiplier_bps
        )
        try:
            self.hold = await anyio.to_thread.run_sync(
                funds.reserve,
                self.parts.sessions,
                self.parts.prices,
                caller,
                Purpose.SPEECH,
                self.id,
                charge.amount,
            )
        except PlatformError as err:
            raise _Refused(err) from None

    def _persona(self, voice_id: str, caller: Caller) -> Persona:
        with self.parts.sessions() as session:
            return callable_persona(session, voice_id, caller)

    async def permit(self) -> Permit:
        """A slot of the provider tier (a session holds one while it lasts), waited for like a TTS call."""
        limiter = shared_limiter(self.parts.provider)
        if limiter is None:
            return Permit(None, "")
        assert self.caller is not None
        try:
            return await limiter.acquire_async(CallerTag(self.caller.id, interactive=True))
        except StepFunError as err:
            raise _Refused(from_provider_error(err)) from None

    async def proxy(self, provider: RealtimeSocket, create: dict[str, Any]) -> None:
        assert self.persona is not None
        options = {k: create[k] for k in PROVIDER_OPTIONS if k in create}
        try:
            await provider.send(
                "tts.create", voice_id=self.persona.step_voice_id, response_format=self.format, **options
            )
            async for event in provider.events():
                if event["type"] == "tts.response.created":
                    break
            else:
                raise ProviderProtocolError("the provider closed before tts.response.created")
            await self.send("tts.response.created")
            # Nothing raises inside the group (a task group would wrap it): each side ends the session itself.
            async with anyio.create_task_group() as group:
                group.start_soon(self.upstream, provider, group.cancel_scope)
                failure = await self.downstream(provider)
                group.cancel_scope.cancel()
            if failure is not None:
                raise failure
        except StepFunError as err:
            metrics.PROVIDER_CALLS.labels("error").inc()
            raise _Refused(from_provider_error(err), FAILED_CLOSE) from None
        if not self.closed:
            await self.close(NORMAL_CLOSE)

    async def upstream(self, provider: RealtimeSocket, scope: anyio.CancelScope) -> None:
        """The client's text to the provider, counted against the session's characters."""
        try:
            while (event := await self.receive()) is not None:
                kind, data = event.get("type"), event["data"]
                if kind not in _FORWARDED:
                    raise _invalid(f"unexpected event {kind!r} (tts.text.delta, .flush or .done)")
                if kind == "tts.text.delta":
                    text = data.get("text")
                    if not isinstance(text, str):
                        raise _invalid("tts.text.delta needs data.text")
                    if self.meter.sent + len(text) > self.parts.session_max_chars:
                        raise _Refused(
                            PlatformError(
                                ErrorCode.INVALID_TEXT,
                                f"a realtime session speaks at most {self.parts.session_max_chars} characters",
                                400,
                            )
                        )
                    self.meter.sent += len(text)
                    await provider.send(kind, text=text)
                else:
                    await provider.send(str(kind))
                if kind == "tts.text.done":
                    return  # the provider answers audio.done and closes; downstream ends the session
            scope.cancel()  # the client left (or idled out): nothing more to relay
        except _Refused as refusal:
            await self.refuse(refusal)
            scope.cancel()
        except StepFunError as err:  # the provider's socket broke while we wrote to it
            metrics.PROVIDER_CALLS.labels("error").inc()
            await self.refuse(_Refused(from_provider_error(err), FAILED_CLOSE))
            scope.cancel()

    async def downstream(self, provider: RealtimeSocket) -> StepFunError | None:
        """The provider's events to the client, metering the sentences whose audio reached it; the provider's
        failure is returned, not raised."""
        try:
            async for event in provider.events():
                kind, data = event["type"], event["data"]
                data.pop("session_id", None)
                if kind == "tts.response.audio.delta":
                    try:
                        self.meter.audio += base64.b64decode(str(data.get("audio", "")), validate=True)
                    except (binascii.Error, ValueError):
                        return ProviderProtocolError("the provider sent audio that is not base64")
                await self.send(kind, **data)
                if kind == "tts.response.sentence.end" and isinstance(data.get("text"), str):
                    self.meter.sentences += len(data["text"])
                elif kind == "tts.response.audio.done":
                    self.meter.finished = True
                    metrics.PROVIDER_CALLS.labels("ok").inc()
                    return None
        except StepFunError as err:
            return err
        if self.meter.sent and not self.closed:
            return ProviderProtocolError("the provider closed the session before tts.response.audio.done")
        return None

    # -- money ---------------------------------------------------------------------------------------------

    async def settle(self) -> None:
        if self.hold is not None:
            await anyio.to_thread.run_sync(self._settle, self.hold)

    def _settle(self, hold: Reservation) -> None:
        assert self.caller is not None and self.persona is not None
        chars = self.meter.delivered
        if chars == 0:
            holds.release(self.parts.sessions, hold.hold_id, "the realtime session delivered nothing")
            return
        charge = self.parts.prices.charge(self.model, chars, self.persona.price_multiplier_bps)
        _, created = holds.capture_speech(
            self.parts.sessions,
            hold,
            charge,
            request_id=self.id,
            caller_id=self.caller.id,
            api_key_id=self.caller.key_id,
            persona=self.persona,
            audio_ms=audio_ms(bytes(self.meter.audio), self.format, self.rate),
        )
        if created:
            metrics.USAGE_EVENTS.inc()
