"""Realtime speech over a WebSocket: a `websockets` client drives `/v1/realtime/audio` on a served platform, which
proxies StepFun's streaming-TTS protocol to the emulator's socket, holds the session's price first and bills what
was delivered, once."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import soundfile as sf
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.harness import RunningPlatform, platform_overrides, start_platform, wait_for
from encoders.voices import VoiceSet
from tests.service.test_end_to_end import create_live_persona

TRIAL = 30_000  # ¥0.03: far less than a session's hold (2,000 chars of step-tts-2 ≈ ¥1.12)
FUNDS = 20_000_000


@pytest.fixture(scope="module")
def realtime(
    tmp_path_factory: pytest.TempPathFactory, emulator: EmulatorProcess
) -> Iterator[RunningPlatform]:
    overrides = [
        *platform_overrides(tmp_path_factory.mktemp("realtime"), emulator),
        f"billing.trial_credit={TRIAL}",
    ]
    running = start_platform(overrides)
    yield running
    running.stop()


def _funded(running: RunningPlatform, role: str = "consumer") -> tuple[str, str]:
    from bentos.core.accounts import open_admin

    account_id, key = running.sign_up(role)
    _, admin_key = open_admin(running.platform.sessions, "Ops", f"ops-{account_id}@example.com")
    granted = running.client(admin_key).post(
        "/admin/credits", json={"accountId": account_id, "amount": FUNDS, "reason": "test float"}
    )
    assert granted.status_code == 201, granted.text
    return account_id, key


@pytest.fixture(scope="module")
def persona(realtime: RunningPlatform, voice_set: VoiceSet) -> dict[str, Any]:
    _, key = _funded(realtime, "creator")
    return create_live_persona(realtime, key, voice_set.clips[4].mp3_path.read_bytes())


def _open(running: RunningPlatform, key: str | None, model: str = "step-tts-2") -> ClientConnection:
    url = running.base_url.replace("http://", "ws://") + f"/v1/realtime/audio?model={model}"
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return connect(url, additional_headers=headers, open_timeout=10)


def _event(ws: ClientConnection) -> dict[str, Any]:
    event = json.loads(ws.recv(timeout=60))
    assert isinstance(event, dict)
    return event


def _send(ws: ClientConnection, kind: str, session: str, **data: Any) -> None:
    ws.send(json.dumps({"type": kind, "data": {"session_id": session, **data}}))


def _until(ws: ClientConnection, kind: str, seen: list[dict[str, Any]]) -> dict[str, Any]:
    """Events up to and including the first of `kind` (a tts.response.error ends the wait too)."""
    while True:
        event = _event(ws)
        seen.append(event)
        if event["type"] in (kind, "tts.response.error"):
            return event


def _start(ws: ClientConnection, voice: str, fmt: str = "wav") -> str:
    hello = _event(ws)
    assert hello["type"] == "tts.connection.done", hello
    session = str(hello["data"]["session_id"])
    _send(ws, "tts.create", session, voice_id=voice, response_format=fmt)
    created = _event(ws)
    assert created["type"] == "tts.response.created", created
    assert created["data"]["session_id"] == session
    return session


def _usage(running: RunningPlatform, key: str, request_id: str) -> list[dict[str, Any]]:
    """The session's usage rows, once it has settled (just after the socket closed)."""
    client = running.client(key)

    def settled() -> list[dict[str, Any]] | None:
        if client.get("/balance").json()["reserved"]:
            return None
        return [row for row in client.get("/usage").json()["calls"] if row["requestId"] == request_id] or None

    rows: list[dict[str, Any]] = wait_for(settled, what="the session's usage row")
    return rows


def _closed(ws: ClientConnection) -> int | None:
    try:
        while True:
            ws.recv(timeout=10)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


def test_a_session_streams_sentence_audio_and_is_billed_once_for_its_text(
    realtime: RunningPlatform, persona: dict[str, Any]
) -> None:
    _, key = _funded(realtime)
    texts = ["Hello there, it is a fine day. ", "How are you today? ", "Goodbye for now."]
    seen: list[dict[str, Any]] = []
    with _open(realtime, key) as ws:
        session = _start(ws, persona["id"])
        _send(ws, "tts.text.delta", session, text=texts[0])
        _send(ws, "tts.text.delta", session, text=texts[1])
        _send(ws, "tts.text.flush", session)
        _until(ws, "tts.text.flushed", seen)
        _send(ws, "tts.text.delta", session, text=texts[2])
        _send(ws, "tts.text.done", session)
        done = _until(ws, "tts.response.audio.done", seen)
        close_code = _closed(ws)
    assert done["type"] == "tts.response.audio.done" and close_code == 1000
    kinds = [e["type"] for e in seen]
    assert kinds.count("tts.response.sentence.start") == kinds.count("tts.response.sentence.end") == 3
    assert kinds.index("tts.response.audio.delta") < kinds.index("tts.text.flushed")  # audio before the end
    assert all(e["data"]["session_id"] == session for e in seen)
    audio = b"".join(base64.b64decode(e["data"]["audio"]) for e in seen if e["type"].endswith("audio.delta"))
    samples, rate = sf.read(io.BytesIO(audio))
    assert rate == 24000 and samples.shape[0] / rate > 2.0

    chars = sum(len(t) for t in texts)
    (row,) = _usage(realtime, key, session)
    quote = realtime.client(key).get(f"/voices/{persona['id']}/quote", params={"chars": chars}).json()
    assert row["chars"] == chars and row["amount"] == quote["amount"]
    balance = realtime.client(key).get("/balance").json()
    assert balance["reserved"] == 0 and balance["available"] == FUNDS + TRIAL - quote["amount"]


def test_a_bad_key_gets_an_error_event_and_close_1008(realtime: RunningPlatform) -> None:
    with _open(realtime, "vpk_not-a-key") as ws:
        error = _event(ws)
        code = _closed(ws)
    assert error["type"] == "tts.response.error" and error["data"]["code"] == "invalid_api_key"
    assert code == 1008


def test_an_unknown_persona_is_refused_before_any_provider_connection(
    realtime: RunningPlatform, emulator: EmulatorProcess
) -> None:
    _, key = _funded(realtime)
    emulator.admin("reset", {})
    with _open(realtime, key) as ws:
        session = str(_event(ws)["data"]["session_id"])
        _send(ws, "tts.create", session, voice_id="vp_missing")
        error = _event(ws)
        code = _closed(ws)
    assert error["data"]["code"] == "not_found" and code == 1008
    assert "WS /v1/realtime/audio" not in emulator.admin("stats")["requests"]


def test_a_short_balance_is_refused_with_insufficient_balance_and_no_provider_call(
    realtime: RunningPlatform, persona: dict[str, Any], emulator: EmulatorProcess
) -> None:
    _, key = realtime.sign_up("consumer")  # the trial credit only
    emulator.admin("reset", {})
    with _open(realtime, key) as ws:
        session = str(_event(ws)["data"]["session_id"])
        _send(ws, "tts.create", session, voice_id=persona["id"])
        error = _event(ws)
        code = _closed(ws)
    assert error["type"] == "tts.response.error" and error["data"]["code"] == "insufficient_balance"
    assert code == 1008 and "WS /v1/realtime/audio" not in emulator.admin("stats")["requests"]
    balance = realtime.client(key).get("/balance").json()
    assert balance["available"] == TRIAL and balance["reserved"] == 0  # the hold never happened


def test_a_provider_fault_mid_stream_ends_with_an_error_and_bills_the_delivered_sentences(
    realtime: RunningPlatform, persona: dict[str, Any], emulator: EmulatorProcess
) -> None:
    _, key = _funded(realtime)
    seen: list[dict[str, Any]] = []
    with _open(realtime, key) as ws:
        session = _start(ws, persona["id"], fmt="mp3")
        _send(ws, "tts.text.delta", session, text="The first sentence is spoken. ")
        _until(ws, "tts.response.sentence.end", seen)
        # The emulator fails the next sentence it synthesises.
        emulator.admin("faults", {"fail_next": 1, "status": 500, "path_prefix": "/v1/realtime"})
        _send(ws, "tts.text.delta", session, text="The second one never arrives. ")
        error = _until(ws, "tts.response.audio.done", seen)
        code = _closed(ws)
    assert error["type"] == "tts.response.error" and error["data"]["code"] == "provider_unavailable"
    assert code == 1011
    delivered = [e["data"]["text"] for e in seen if e["type"] == "tts.response.sentence.end"]
    assert delivered == ["The first sentence is spoken."]
    (row,) = _usage(realtime, key, session)
    quote = realtime.client(key).get(f"/voices/{persona['id']}/quote", params={"chars": len(delivered[0])})
    assert row["chars"] == len(delivered[0]) and row["amount"] == quote.json()["amount"]
    assert realtime.client(key).get("/balance").json()["reserved"] == 0
