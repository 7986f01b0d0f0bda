"""Client ↔ emulator over real HTTP on loopback: every endpoint and the documented fields."""

from __future__ import annotations

import asyncio
import io
import time

import httpx
import numpy as np
import pytest
import soundfile as sf
from pydantic import ValidationError

from bentos.devkit.emulator_process import EmulatorProcess
from bentos.stepfun import (
    AsyncStepFunClient,
    ContentBlocked,
    InputRejected,
    NotFound,
    SpeechRequest,
    StepFunClient,
)
from tests.stepfun.stepfun_helpers import KEY, fast_settings, reference_wav, wav_bytes


def decode(audio: bytes) -> tuple[np.ndarray, int]:
    samples, rate = sf.read(io.BytesIO(audio), dtype="float32")
    return samples, int(rate)


def test_file_lifecycle_upload_list_get_content_delete(client: StepFunClient, reference: bytes) -> None:
    uploaded = client.upload_file(reference, "me.wav")
    assert uploaded.id.startswith("file-") and uploaded.bytes == len(reference)
    assert uploaded.purpose == "storage" and uploaded.filename == "me.wav"
    assert uploaded.id in [f.id for f in client.list_files()]
    assert client.get_file(uploaded.id) == uploaded
    assert client.file_content(uploaded.id) == reference
    assert client.delete_file(uploaded.id).deleted
    with pytest.raises(NotFound):
        client.get_file(uploaded.id)


def test_upload_rejects_non_audio(client: StepFunClient) -> None:
    with pytest.raises(InputRejected) as err:
        client.upload_file(b"hello, not audio", "notes.txt")
    assert err.value.status == 400 and err.value.code == "input_invalid"


def test_system_voices_list_official_ids_with_details(client: StepFunClient) -> None:
    voices = {v.id: v for v in client.system_voices("step-tts-2")}
    assert len(voices) == 27 and voices["cixingnansheng"].name == "磁性男声"


def test_clone_returns_voice_with_sample_and_duplicate_reuses_it(
    client: StepFunClient, cloned_voice: str, reference: bytes
) -> None:
    again = client.upload_file(reference, "same-audio-again.wav")
    voice = client.create_voice(again.id, sample_text="Hello from my clone.")
    assert voice.id == cloned_voice and voice.duplicated
    assert voice.sample_audio is not None and decode(voice.sample_audio)[0].size > 0
    other_model = client.create_voice(again.id, model="step-tts-mini")
    assert other_model.id != cloned_voice and not other_model.duplicated


def test_clone_rejects_too_short_reference_without_retry(
    client: StepFunClient, emulator: EmulatorProcess
) -> None:
    short = client.upload_file(reference_wav("flite:slt", "Too short."), "short.wav")
    before = emulator.admin("stats")["requests"].get("POST /v1/audio/voices", 0)
    with pytest.raises(InputRejected) as err:
        client.create_voice(short.id)
    assert err.value.code == "input_invalid" and "audio_too_short" in err.value.message
    assert emulator.admin("stats")["requests"]["POST /v1/audio/voices"] == before + 1


def test_clone_rejects_non_clone_model(client: StepFunClient, cloned_voice: str) -> None:
    files = client.list_files()
    with pytest.raises(InputRejected, match="step-audio-2"):
        client.create_voice(files[0].id, model="step-audio-2")


def test_list_voices_pages(client: StepFunClient, cloned_voice: str, reference: bytes) -> None:
    file = client.upload_file(reference, "r.wav")
    client.create_voice(file.id, model="stepaudio-2.5-tts")
    first = client.list_voices(limit=1, order="asc")
    assert len(first.data) == 1 and first.has_more and first.first_id == first.last_id
    rest = client.list_voices(limit=100, order="asc", after=first.last_id)
    assert first.data[0].id not in [v.id for v in rest.data] and rest.data
    assert all(v.file_id for v in rest.data)


def test_preview_returns_audio_without_creating_a_voice(client: StepFunClient, reference: bytes) -> None:
    file = client.upload_file(reference, "p.wav")
    count = len(client.list_voices(limit=100).data)
    preview = client.preview_voice(file.id, "Just a preview.", model="step-tts-mini")
    assert preview.sample_text == "Just a preview." and preview.sample_audio and preview.request_id
    assert decode(preview.sample_audio)[0].size > 0
    assert len(client.list_voices(limit=100).data) == count


@pytest.mark.parametrize(("fmt", "rate"), [("wav", 8000), ("mp3", 24000), ("flac", 16000), ("opus", 48000)])
def test_speech_formats_and_sample_rates(client: StepFunClient, fmt: str, rate: int) -> None:
    audio = client.speech(
        model="step-tts-mini",
        input="Hello world.",
        voice="jingdiannvsheng",
        response_format=fmt,
        sample_rate=rate,
    )
    samples, got_rate = decode(audio.audio)
    assert got_rate == rate and samples.size > rate * 0.3
    assert (
        audio.content_type
        == {"wav": "audio/wav", "mp3": "audio/mpeg", "flac": "audio/flac", "opus": "audio/ogg"}[fmt]
    )


def test_speech_pcm_speed_and_volume(client: StepFunClient, cloned_voice: str) -> None:
    def pcm(**fields: object) -> np.ndarray:
        body = client.speech(
            model="step-tts-2",
            input="Speed and volume both matter here.",
            voice=cloned_voice,
            response_format="pcm",
            sample_rate=16000,
            **fields,
        ).audio
        return np.frombuffer(body, "<i2").astype(np.float32) / 32767

    normal, fast, quiet = pcm(), pcm(speed=2.0), pcm(volume=0.2)
    assert len(fast) < 0.75 * len(normal)
    assert np.sqrt(np.mean(quiet**2)) < 0.4 * np.sqrt(np.mean(normal**2))
    assert np.array_equal(normal, pcm()), "same inputs, same audio"


def test_speech_chinese_text_and_voice_label_change_the_audio(client: StepFunClient) -> None:
    plain = client.speech(
        model="step-tts-2", input="你好，欢迎使用。", voice="cixingnansheng", response_format="wav"
    )
    happy = client.speech(
        model="step-tts-2",
        input="你好，欢迎使用。",
        voice="cixingnansheng",
        response_format="wav",
        voice_label={"emotion": "高兴"},
    )
    assert decode(plain.audio)[0].size > 0 and plain.audio != happy.audio


def test_instruction_only_on_stepaudio_25(client: StepFunClient) -> None:
    audio = client.speech(
        model="stepaudio-2.5-tts", input="Hi.", voice="cixingnansheng", instruction="speak slowly"
    )
    assert audio.audio
    with pytest.raises(ValidationError, match="voice_label is not supported"):
        SpeechRequest(model="stepaudio-2.5-tts", input="Hi.", voice="x", voice_label={"style": "慢速"})
    with pytest.raises(ValidationError, match="instruction"):
        SpeechRequest(model="step-tts-2", input="Hi.", voice="x", instruction="slowly")


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"voice_label": {"emotion": "高兴", "style": "慢速"}}, "request_params_invalid"),
        ({"voice_label": {"emotion": "meh"}}, "request_params_invalid"),
        ({"model": "stepaudio-2.5-tts", "voice_label": {"emotion": "高兴"}}, "request_params_invalid"),
        ({"model": "step-tts-mini", "voice_label": {"style": "骄傲"}}, "request_params_invalid"),
        ({"input": "x" * 1001}, "input_invalid"),
        ({"model": "no-such-model"}, "request_params_invalid"),
        ({"voice": "voice-tone-unknown"}, "request_params_invalid"),
        ({"response_format": "aac"}, "request_params_invalid"),
        ({"sample_rate": 44100}, "request_params_invalid"),
        ({"speed": 3.0}, "request_params_invalid"),
        ({"volume": 0.0}, "request_params_invalid"),
    ],
)
def test_emulator_validates_speech_like_stepfun(emulator: EmulatorProcess, body: dict, kind: str) -> None:
    payload = {"model": "step-tts-2", "input": "Hello.", "voice": "cixingnansheng", **body}
    r = httpx.post(
        f"{emulator.base_url}/audio/speech", json=payload, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert r.status_code == 400 and r.json()["error"]["type"] == kind and r.json()["error"]["message"]


def test_blocked_content_is_451_and_not_retried(client: StepFunClient, emulator: EmulatorProcess) -> None:
    with pytest.raises(ContentBlocked):
        client.speech(model="step-tts-2", input="say [[blocked]] now", voice="cixingnansheng")
    assert emulator.admin("stats")["requests"]["POST /v1/audio/speech"] == 1


def test_sse_stream_decodes_deltas_and_done(client: StepFunClient) -> None:
    events = list(
        client.speech_events(
            model="step-tts-2", input="One. Two.", voice="cixingnansheng", response_format="pcm"
        )
    )
    assert [e.type for e in events][-1] == "speech.audio.done"
    deltas = [e for e in events if e.type == "speech.audio.delta"]
    assert len(deltas) >= 2 and all(e.audio for e in deltas)
    joined = client.speech(
        model="step-tts-2",
        input="One. Two.",
        voice="cixingnansheng",
        response_format="pcm",
        stream_format="sse",
    )
    assert joined.audio == b"".join(e.audio or b"" for e in deltas)


def test_streamed_speech_arrives_before_synthesis_ends(client: StepFunClient, cloned_voice: str) -> None:
    text = " ".join(f"This is sentence number {n} of a longer answer." for n in range(1, 7))
    start, arrivals = time.monotonic(), []
    chunks = []
    for chunk in client.stream_speech(
        model="step-tts-2", input=text, voice=cloned_voice, response_format="wav", stream_format="audio"
    ):
        arrivals.append(time.monotonic() - start)
        chunks.append(chunk)
    total = arrivals[-1]
    assert len(chunks) >= 4
    assert arrivals[1] < 0.6 * total, f"first audio at {arrivals[1]:.2f}s of {total:.2f}s"
    samples, _ = decode(b"".join(chunks))
    assert samples.size > 0


def test_return_url_points_at_downloadable_audio(client: StepFunClient) -> None:
    result = client.speech(
        model="step-tts-mini",
        input="Fetch me.",
        voice="cixingnansheng",
        return_url=True,
        response_format="wav",
    )
    assert result.url is not None
    r = httpx.get(result.url, headers={"Authorization": f"Bearer {KEY}"})
    assert decode(r.content)[0].size > 0


def test_async_client_same_operations(emulator: EmulatorProcess, cloned_voice: str) -> None:
    async def scenario() -> tuple[int, bytes, list[bytes]]:
        async with AsyncStepFunClient(fast_settings(emulator.base_url)) as c:
            file = await c.upload_file(wav_bytes(np.zeros(10, np.float32), 16000), "x.wav")
            await c.delete_file(file.id)
            voices = await c.system_voices()
            audio = await c.speech(
                model="step-tts-2", input="Async hello.", voice=cloned_voice, response_format="wav"
            )
            chunks = [
                ch
                async for ch in c.stream_speech(
                    model="step-tts-2",
                    input="A. B.",
                    voice=cloned_voice,
                    response_format="pcm",
                    stream_format="sse",
                )
            ]
            return len(voices), audio.audio, chunks

    count, audio, chunks = asyncio.run(scenario())
    assert count == 27 and decode(audio)[0].size > 0 and len(chunks) >= 2
