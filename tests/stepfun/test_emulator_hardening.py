"""The emulator against a hostile user: it survives its own crashes, answers 400 (not 500) for input nothing can
be spoken from, and clones one input once even when the same clone request arrives several times at once."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import soundfile as sf

from bentos.devkit.emulator_process import EmulatorProcess
from bentos.stepfun import StepFunClient
from tests.stepfun.stepfun_helpers import KEY, wav_bytes

AUTH = {"Authorization": f"Bearer {KEY}"}
SPEECH = {"model": "step-tts-2", "voice": "cixingnansheng", "response_format": "wav"}
# A pipe nobody reads holds 64 KB; each crash logs a traceback of a few KB, so this many fill it several times.
CRASHES = 150


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)  # polling interval under a deadline
    return True


def speech(emulator: EmulatorProcess, **body: Any) -> httpx.Response:
    return httpx.post(f"{emulator.base_url}/audio/speech", json={**SPEECH, **body}, headers=AUTH, timeout=60)


def assert_input_invalid(r: httpx.Response) -> None:
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "input_invalid" and error["message"]


def wav_seconds(audio: bytes) -> float:
    samples, rate = sf.read(io.BytesIO(audio), dtype="float32")
    return len(samples) / rate


# ---- 1. crashes are logged to a file, and the emulator keeps answering


def test_emulator_keeps_answering_after_many_crashes(tmp_path: Path, engine_cache: Path) -> None:
    state = tmp_path / "state"
    with EmulatorProcess(state, rpm=0, concurrency=0, cache_dir=engine_cache, max_candidates=4) as emu:
        assert emu.log_path == state / "emulator.log"
        logged_before = emu.log_path.stat().st_size
        emu.admin("faults", {"crash_next": CRASHES})
        # No keep-alive: the server closes a connection on which the app raised (uvicorn), which would race
        # the next request sent on it.
        no_reuse = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=emu.base_url, headers=AUTH, timeout=10, limits=no_reuse) as http:
            statuses = [http.get("/audio/system_voices").status_code for _ in range(CRASHES)]
        assert statuses == [500] * CRASHES
        assert emu.admin("stats")["faults"]["crash_next"] == 0

        assert httpx.get(f"{emu.root_url}/healthz", timeout=5).status_code == 200
        r = speech(emu, input="Still here.")
        assert r.status_code == 200 and wav_seconds(r.content) > 0.3

        def all_logged() -> bool:
            return emu.log_path.read_text(errors="replace").count("InjectedCrash: injected crash") == CRASHES

        assert wait_for(all_logged)
        assert emu.log_path.stat().st_size - logged_before > 2 * 64 * 1024


def test_start_failure_quotes_this_runs_log(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "state"
    not_a_dir.write_text("a file where the state folder should be")
    log = tmp_path / "logs" / "emu.log"
    log.parent.mkdir()
    log.write_text("line from an earlier run\n")
    with pytest.raises(RuntimeError) as err:
        EmulatorProcess(not_a_dir, log_path=log, start_timeout_s=60).start()
    message = str(err.value)
    assert "Error" in message and str(log) in message
    assert "earlier run" not in message
    assert log.read_text().startswith("line from an earlier run\n")  # appended, not truncated


# ---- 2. input with nothing to speak is a 400, never a 500


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t  ",
        "😀😀",
        "😀 🎉 !!! ...",
        "_",
        "\u200b",
        "Hello\x00world",
        "Hi \x07 there",
        "\x1b[31mred",
    ],
    ids=[
        "empty",
        "whitespace",
        "emoji",
        "emoji-punctuation",
        "underscore",
        "zero-width",
        "nul",
        "bell",
        "escape",
    ],
)
def test_speech_rejects_unspeakable_input(emulator: EmulatorProcess, text: str) -> None:
    assert_input_invalid(speech(emulator, input=text))


def test_speech_rejects_unpaired_surrogate(emulator: EmulatorProcess) -> None:
    body = '{"model": "step-tts-2", "voice": "cixingnansheng", "input": "a\\ud800b"}'  # valid JSON, bad text
    r = httpx.post(
        f"{emulator.base_url}/audio/speech",
        content=body,
        headers={**AUTH, "Content-Type": "application/json"},
        timeout=60,
    )
    assert_input_invalid(r)


def test_speech_rejects_input_a_pronunciation_map_empties(emulator: EmulatorProcess) -> None:
    assert_input_invalid(speech(emulator, input="abc", pronunciation_map={"tone": ["abc/1"]}))
    assert_input_invalid(speech(emulator, input="abc", pronunciation_map={"tone": ["abc/a\x00"]}))


def test_punctuation_only_sentences_are_skipped(emulator: EmulatorProcess) -> None:
    plain = speech(emulator, input="Hello. World.")
    noisy = speech(emulator, input="Hello. ... !!! World. 😀 ?!")
    assert plain.status_code == 200 and noisy.status_code == 200, noisy.text
    assert noisy.content == plain.content  # the same two sentences spoken, nothing else
    tabs = speech(emulator, input="Hello,\tworld.\r\nBye.")
    assert tabs.status_code == 200 and wav_seconds(tabs.content) > 0.5
    sse = speech(emulator, input="Hi. ... !!!", stream_format="sse")
    assert sse.status_code == 200 and "speech.audio.done" in sse.text and "speech.audio.error" not in sse.text


@pytest.mark.parametrize("text", ["Ⅻ ℵ", "안녕하세요", "Café ²"])
def test_letters_outside_ascii_are_spoken(emulator: EmulatorProcess, text: str) -> None:
    # Letters count as speakable, so every base voice must produce audio for them rather than fail.
    for voice in ("cixingnansheng", "jingdiannvsheng", "wenrounansheng"):
        r = speech(emulator, input=text, voice=voice)
        assert r.status_code == 200 and wav_seconds(r.content) > 0.1, (voice, r.text)


@pytest.mark.parametrize("text", ["", "   ", "😀😀", "hi\x00"], ids=["empty", "whitespace", "emoji", "nul"])
def test_preview_and_clone_reject_unspeakable_sample_text(
    emulator: EmulatorProcess, client: StepFunClient, reference: bytes, text: str
) -> None:
    file_id = client.upload_file(reference, "for-sample-text.wav").id
    with httpx.Client(base_url=emulator.base_url, headers=AUTH, timeout=60) as http:
        voices_before = http.get("/audio/voices", params={"limit": 100}).json()["data"]
        body = {"model": "step-tts-2", "file_id": file_id, "sample_text": text}
        assert_input_invalid(http.post("/audio/voices/preview", json=body))
        assert_input_invalid(http.post("/audio/voices", json=body))
        assert http.get("/audio/voices", params={"limit": 100}).json()["data"] == voices_before


def test_preview_skips_punctuation_only_sentences(client: StepFunClient, reference: bytes) -> None:
    file_id = client.upload_file(reference, "preview.wav").id
    preview = client.preview_voice(file_id, sample_text="Hi. ... !!! Bye.")
    assert preview.sample_audio is not None and wav_seconds(preview.sample_audio) > 0.3


# ---- 3. one input is cloned once, however many requests for it arrive at the same time


def test_concurrent_clones_of_one_file_make_one_voice(
    emulator: EmulatorProcess, client: StepFunClient, reference: bytes
) -> None:
    samples, rate = sf.read(io.BytesIO(reference), dtype="float32")
    content = wav_bytes(samples * 0.8, rate)  # audio no other test clones
    file_id = client.upload_file(content, "retried.wav").id

    def clone(_: int) -> dict[str, Any]:
        r = httpx.post(
            f"{emulator.base_url}/audio/voices",
            json={"model": "step-tts-2", "file_id": file_id, "sample_text": "Hi. ... !!! Bye."},
            headers=AUTH,
            timeout=120,
        )
        assert r.status_code == 200, r.text
        answer: dict[str, Any] = r.json()
        return answer

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(clone, range(6)))
    ids = {a["id"] for a in answers}
    assert len(ids) == 1
    assert sorted(a["duplicated"] for a in answers) == [False] + [True] * 5

    listed = httpx.get(
        f"{emulator.base_url}/audio/voices", params={"limit": 100}, headers=AUTH, timeout=10
    ).json()["data"]
    assert all(set(v) == {"id", "file_id", "created_at"} for v in listed)
    assert [v["id"] for v in listed if v["file_id"] == file_id] == list(ids)
