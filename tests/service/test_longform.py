"""Long texts over HTTP: split at sentences, spoken part by part by the emulator, streamed back as ONE audio that
starts before the last part is asked for, metered once and exactly (a provider fault bills the parts delivered)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import soundfile as sf

from bentos.core.longform import split_text
from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.harness import RunningPlatform, platform_overrides, start_platform, wait_for
from encoders.voices import VoiceSet
from tests.service.test_end_to_end import create_live_persona

PART_CHARS = 200  # the per-call limit of the fast tests' platform: a few hundred characters make a long text
SENTENCES = [
    "The river ran quietly past the old mill. ",
    "Children played on its banks every summer, ",
    "and their parents watched from the shade of the willows. ",
    "Nobody remembered when the wheel had last turned. ",
]
LONG_TEXT = "".join(SENTENCES * 4).strip()  # ≈ 750 characters: four parts of at most 200


@pytest.fixture(scope="module")
def longform(
    tmp_path_factory: pytest.TempPathFactory, emulator: EmulatorProcess
) -> Iterator[RunningPlatform]:
    overrides = [
        *platform_overrides(tmp_path_factory.mktemp("longform"), emulator),
        f"server.tts_max_chars={PART_CHARS}",
        "server.tts_long_max_chars=2000",
        "server.tts_long_concurrency=2",
    ]
    running = start_platform(overrides)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def persona(longform: RunningPlatform, voice_set: VoiceSet) -> dict[str, Any]:
    _, key = longform.sign_up("creator")
    return create_live_persona(longform, key, voice_set.clips[5].mp3_path.read_bytes())


def _speech_requests(emulator: EmulatorProcess) -> int:
    return int(emulator.admin("stats")["requests"].get("POST /v1/audio/speech", 0))


def _settled_usage(running: RunningPlatform, key: str, request_id: str) -> list[dict[str, Any]]:
    client = running.client(key)

    def settled() -> list[dict[str, Any]] | None:
        if client.get("/balance").json()["reserved"]:
            return None
        return [row for row in client.get("/usage").json()["calls"] if row["requestId"] == request_id] or None

    rows: list[dict[str, Any]] = wait_for(settled, what="the call's usage row")
    return rows


def test_a_long_text_streams_as_one_audio_before_its_last_part_is_asked_for_and_is_metered_once(
    longform: RunningPlatform, persona: dict[str, Any], emulator: EmulatorProcess
) -> None:
    parts = split_text(LONG_TEXT, PART_CHARS)
    assert len(parts) == 4
    _, key = longform.sign_up("consumer")
    emulator.admin("reset", {})
    # The emulator trickles each part (16 KB pieces, 40 ms apart): part 2 can only be asked for once part 0 has
    # all been relayed, so the request count at the first byte shows what was asked for before it.
    emulator.admin("faults", {"chunk_delay_ms": 40, "path_prefix": "/v1/audio/speech"})
    body = {"voice": persona["id"], "text": LONG_TEXT, "format": "wav"}
    with longform.client(key).stream("POST", "/tts", json=body) as response:
        assert response.status_code == 200, response.read()
        chunks = response.iter_bytes()
        audio = bytearray(next(chunks))
        asked_at_first_byte = _speech_requests(emulator)
        for chunk in chunks:
            audio += chunk
        request_id = response.headers["x-request-id"]
    # At the first byte at most `tts_long_concurrency` parts had been asked for: never the whole text.
    assert 1 <= asked_at_first_byte <= 2 < len(parts)
    assert _speech_requests(emulator) == len(parts)
    assert bytes(audio).count(b"RIFF") == 1
    samples, rate = sf.read(io.BytesIO(bytes(audio)))
    assert rate == 24000 and samples.shape[0] / rate > 20  # ≈ 750 characters of speech

    (row,) = _settled_usage(longform, key, request_id)
    quote = (
        longform.client(key).get(f"/voices/{persona['id']}/quote", params={"chars": len(LONG_TEXT)}).json()
    )
    assert row["chars"] == len(LONG_TEXT) and row["amount"] == quote["amount"]
    assert row["audioSeconds"] == pytest.approx(samples.shape[0] / rate, abs=0.01)


def test_a_provider_fault_mid_way_cuts_the_stream_and_bills_only_the_parts_delivered(
    longform: RunningPlatform, persona: dict[str, Any]
) -> None:
    # The emulator's moderation refuses the part holding the marker (451, never retried): parts 0 and 1 play.
    text = LONG_TEXT.replace("Nobody remembered", "[[blocked]] Nobody remembered", 2)
    parts = split_text(text, PART_CHARS)
    blocked = next(i for i, p in enumerate(parts) if "[[blocked]]" in p)
    assert blocked >= 1
    _, key = longform.sign_up("consumer")
    client = longform.client(key)
    before = client.get("/balance").json()["available"]
    received = bytearray()
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream(
            "POST", "/tts", json={"voice": persona["id"], "text": text, "format": "mp3"}
        ) as response,
    ):
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        for chunk in response.iter_bytes():
            received += chunk
    delivered = sum(len(p) for p in parts[:blocked])
    (row,) = _settled_usage(longform, key, request_id)
    quote = client.get(f"/voices/{persona['id']}/quote", params={"chars": delivered}).json()
    assert row["chars"] == delivered and row["amount"] == quote["amount"]
    balance = client.get("/balance").json()
    assert balance["reserved"] == 0 and balance["available"] == before - quote["amount"]
    samples, rate = sf.read(io.BytesIO(bytes(received)))  # what did arrive plays
    assert samples.shape[0] / rate == pytest.approx(row["audioSeconds"], rel=0.05)


def test_limits_show_the_per_call_and_the_long_text_maximum(longform: RunningPlatform) -> None:
    tts = longform.client().get("/v1/limits").json()["tts"]
    assert tts["maxChars"] == PART_CHARS and tts["longMaxChars"] == 2000
    assert tts["longFormats"] == ["wav", "mp3", "pcm"] and tts["realtimeSessionMaxChars"] == 2000


def test_a_text_over_the_long_maximum_or_a_long_flac_is_refused_before_any_hold(
    longform: RunningPlatform, persona: dict[str, Any]
) -> None:
    _, key = longform.sign_up("consumer")
    client = longform.client(key)
    too_long = client.post("/tts", json={"voice": persona["id"], "text": "Word. " * 400})
    assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "invalid_text"
    flac = client.post(
        "/v1/audio/speech", json={"voice": persona["id"], "input": LONG_TEXT, "response_format": "flac"}
    )
    assert flac.status_code == 422 and flac.json()["error"]["code"] == "invalid_request"
    assert client.get("/balance").json()["reserved"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["wav", "mp3"])
def test_three_thousand_characters_become_one_audio_as_long_as_its_parts(
    emulator: EmulatorProcess, voice_set: VoiceSet, tmp_path_factory: pytest.TempPathFactory, fmt: str
) -> None:
    running = start_platform(platform_overrides(tmp_path_factory.mktemp("longform-3k"), emulator))
    try:
        _, creator = running.sign_up("creator")
        voice = create_live_persona(running, creator, voice_set.clips[5].mp3_path.read_bytes())["id"]
        text = ("今天的天气很好，我们一起去河边散步吧。" + "".join(SENTENCES)) * 20
        text = text[: max(text.rfind("。", 0, 3000), text.rfind(". ", 0, 3000)) + 1]
        parts = split_text(text, 1000, 200)  # as the platform splits it: a short first part
        assert len(text) > 2800 and len(parts) >= 3
        _, key = running.sign_up("consumer")
        client = running.client(key)
        whole = client.post("/v1/audio/speech", json={"voice": voice, "input": text, "response_format": fmt})
        assert whole.status_code == 200, whole.text
        samples, rate = sf.read(io.BytesIO(whole.content))
        seconds = samples.shape[0] / rate
        separately = 0.0
        for part in parts:  # each part alone, as a short text
            alone = client.post("/tts", json={"voice": voice, "text": part, "format": fmt})
            assert alone.status_code == 200, alone.text
            part_samples, part_rate = sf.read(io.BytesIO(alone.content))
            separately += part_samples.shape[0] / part_rate
        assert seconds == pytest.approx(separately, rel=0.1)
        (row,) = _settled_usage(running, key, whole.headers["x-request-id"])
        assert row["chars"] == len(text)
    finally:
        running.stop()
