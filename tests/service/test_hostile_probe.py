"""Regression tests for what a hostile-user probe broke: shared blobs, replayed keys, provider outages,
duplicate clones, unbounded fields, discovery leaks, unspeakable text."""

from __future__ import annotations

import io
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import soundfile as sf
from sqlalchemy import func, select

from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.harness import EMULATOR_KEY, RunningPlatform, wait_for
from bentos.store.models import IdempotencyRecord, Persona, StoredFile, VoiceClone
from encoders.voices import VoiceSet
from tests.service.test_end_to_end import create_live_persona

CONSENT = {"attested": True, "statement": "This is my own voice and I consent."}


def _fresh_audio(voice_set: VoiceSet, index: int) -> bytes:
    """A clip no other test has uploaded (the emulator is shared and dedupes clones by content)."""
    samples, rate = sf.read(voice_set.clips[index].wav_path, dtype="float32")
    buf = io.BytesIO()
    sf.write(buf, samples * (0.8 + 0.2 * secrets.randbelow(1000) / 1000), rate, format="WAV")
    return buf.getvalue()


def _provider_voices_for(emulator: EmulatorProcess, step_file_id: str) -> list[str]:
    """Every voice the provider holds for one of its files (all pages)."""
    found, after = [], None
    with httpx.Client(base_url=emulator.base_url, headers={"Authorization": f"Bearer {EMULATOR_KEY}"}) as c:
        while True:
            params: dict[str, Any] = {"limit": 100, "order": "asc", **({"after": after} if after else {})}
            page = c.get("/audio/voices", params=params).json()
            found += [v["id"] for v in page["data"] if v.get("file_id") == step_file_id]
            if not page["has_more"]:
                return found
            after = page["last_id"]


def _provider_files_named(emulator: EmulatorProcess, filename: str) -> int:
    with httpx.Client(base_url=emulator.base_url, headers={"Authorization": f"Bearer {EMULATOR_KEY}"}) as c:
        return sum(1 for f in c.get("/files").json()["data"] if f["filename"] == filename)


def _create(running: RunningPlatform, key: str, file_id: str, **fields: Any) -> str:
    body = {"fileId": file_id, "name": "Twin", "visibility": "public", "consent": CONSENT, **fields}
    r = running.client(key).post("/voices", json=body)
    assert r.status_code == 202, r.text
    return str(r.json()["voiceId"])


def _wait_live(running: RunningPlatform, key: str, voice_id: str, timeout: float = 120) -> dict[str, Any]:
    client = running.client(key)

    def live() -> dict[str, Any] | None:
        detail = client.get(f"/voices/{voice_id}").json()
        return detail if detail["status"] == "live" else None

    return dict(wait_for(live, timeout=timeout, what=f"persona {voice_id} to go live"))


def test_deleting_a_persona_keeps_another_accounts_copy_of_the_same_audio(
    platform_server: RunningPlatform, voice_set: VoiceSet
) -> None:
    audio = _fresh_audio(voice_set, 7)
    _, d_key = platform_server.sign_up("creator")
    _, e_key = platform_server.sign_up("creator")
    d = create_live_persona(platform_server, d_key, audio)
    e = create_live_persona(platform_server, e_key, audio)
    e_client = platform_server.client(e_key)
    e_file = e_client.post("/files", files={"file": ("again.mp3", audio, "audio/mpeg")}).json()["fileId"]

    assert platform_server.client(d_key).delete(f"/voices/{d['id']}").status_code == 200

    sample = e_client.get(f"/voices/{e['id']}/sample")
    assert sample.status_code == 200 and len(sample.content) > 1000
    embedded = e_client.post("/embeddings", json={"fileId": e_file})
    assert embedded.status_code == 200, embedded.text
    again = _create(platform_server, e_key, e_file, name="Second")
    assert _wait_live(platform_server, e_key, again)["status"] == "live"

    # Once nobody references the audio any more, it is really gone.
    with platform_server.platform.sessions() as session:
        upload_key = session.scalar(select(StoredFile.blob_key).where(StoredFile.id == e_file))
    assert upload_key and platform_server.platform.blobs.exists(upload_key)
    for voice in (e["id"], again):
        assert e_client.delete(f"/voices/{voice}").status_code == 200
    assert not platform_server.platform.blobs.exists(upload_key)


def test_a_replayed_sign_up_never_returns_or_stores_the_api_key(platform_server: RunningPlatform) -> None:
    body = {"name": "Replay", "email": "replay-probe@example.com", "role": "consumer"}
    headers = {"Idempotency-Key": "signup-probe-1", "User-Agent": "first-client"}
    first = httpx.post(f"{platform_server.base_url}/accounts", json=body, headers=headers)
    assert first.status_code == 201 and first.json()["apiKey"]
    key = first.json()["apiKey"]

    replay = httpx.post(f"{platform_server.base_url}/accounts", json=body, headers=headers)
    assert replay.status_code == 201 and replay.headers.get("idempotent-replayed") == "true"
    assert replay.json()["account"]["id"] == first.json()["account"]["id"]
    assert replay.json()["apiKey"] is None
    # Another client with the same key and body is not the first caller: it gets no replay at all.
    other = httpx.post(
        f"{platform_server.base_url}/accounts",
        json=body,
        headers={**headers, "User-Agent": "someone-else"},
    )
    assert other.status_code == 409 and "apiKey" not in other.text
    with platform_server.platform.sessions() as session:
        bodies = session.scalars(select(IdempotencyRecord.body)).all()
    assert not any(b and key.encode() in b for b in bodies)


def test_a_provider_outage_longer_than_every_attempt_does_not_fail_the_persona_for_good(
    platform_server: RunningPlatform, emulator: EmulatorProcess, voice_set: VoiceSet
) -> None:
    _, key = platform_server.sign_up("creator")
    client = platform_server.client(key)
    up = client.post("/files", files={"file": ("v.wav", _fresh_audio(voice_set, 8))})
    # Far more failures than the client's retries × the job's attempts: the breaker opens repeatedly.
    emulator.admin("faults", {"fail_next": 1000, "status": 500, "path_prefix": "/v1/audio/voices"})
    voice_id = _create(platform_server, key, up.json()["fileId"])

    def failing() -> bool:
        detail = client.get(f"/voices/{voice_id}").json()
        return detail["failure"] is not None and detail["failure"]["retryable"]

    wait_for(failing, timeout=60, what="the clone step to fail while the provider is down")
    emulator.admin("reset", {})  # the provider recovers
    persona = _wait_live(platform_server, key, voice_id, timeout=90)
    assert persona["failure"] is None and persona["stepVoiceId"]


def test_one_upload_is_uploaded_and_cloned_once_however_many_personas_use_it(
    platform_server: RunningPlatform, emulator: EmulatorProcess, voice_set: VoiceSet
) -> None:
    _, key = platform_server.sign_up("creator")
    client = platform_server.client(key)
    up = client.post("/files", files={"file": ("v.wav", _fresh_audio(voice_set, 9))})
    file_id = up.json()["fileId"]
    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(lambda i: _create(platform_server, key, file_id, name=f"P{i}"), range(4)))
    personas = [_wait_live(platform_server, key, voice_id) for voice_id in ids]

    assert len({p["stepVoiceId"] for p in personas}) == 1
    with platform_server.platform.sessions() as session:
        step_file_id = session.scalar(select(StoredFile.step_file_id).where(StoredFile.id == file_id))
        billed = session.scalar(select(func.sum(Persona.clones_billed)).where(Persona.id.in_(ids)))
        clones = session.scalars(select(VoiceClone).where(VoiceClone.file_id == file_id)).all()
    assert step_file_id is not None
    assert _provider_files_named(emulator, f"{file_id}.wav") == 1
    assert _provider_voices_for(emulator, step_file_id) == [personas[0]["stepVoiceId"]]
    assert billed == 1 and len(clones) == 1 and clones[0].billed
    assert sum(not p["cloneDuplicated"] for p in personas) == 1


def test_a_clone_retried_after_a_client_timeout_is_counted_once(
    platform_server: RunningPlatform, emulator: EmulatorProcess, voice_set: VoiceSet
) -> None:
    """The provider finished the first (timed-out) request: the retry's `duplicated` voice was still paid."""
    _, key = platform_server.sign_up("creator")
    client = platform_server.client(key)
    up = client.post("/files", files={"file": ("v.wav", _fresh_audio(voice_set, 10))})
    file_id = up.json()["fileId"]
    # Clone the file at the provider behind the platform's back, as a timed-out first attempt would have.
    with platform_server.platform.sessions() as session:
        upload = session.get(StoredFile, file_id)
        assert upload is not None
    provider = platform_server.platform.provider
    step_file = provider.upload_file(
        platform_server.platform.blobs.get(upload.blob_key or ""), f"{file_id}.wav"
    )
    first = provider.create_voice(step_file.id, model="step-tts-2")
    with platform_server.platform.sessions.begin() as session:
        stored = session.get(StoredFile, file_id)
        assert stored is not None
        stored.step_file_id = step_file.id

    voice_id = _create(platform_server, key, file_id)
    persona = _wait_live(platform_server, key, voice_id)
    assert persona["stepVoiceId"] == first.id
    with platform_server.platform.sessions() as session:
        assert session.scalar(select(Persona.clones_billed).where(Persona.id == voice_id)) == 1


def test_a_duplicated_clone_says_its_sample_text_was_not_used(
    platform_server: RunningPlatform, voice_set: VoiceSet
) -> None:
    _, key = platform_server.sign_up("creator")
    audio = _fresh_audio(voice_set, 11)
    first = create_live_persona(platform_server, key, audio, sampleText="Hello from the first one.")
    assert first["notices"] == []
    file_id = platform_server.client(key).post("/files", files={"file": ("v.mp3", audio)}).json()["fileId"]
    second = _wait_live(
        platform_server, key, _create(platform_server, key, file_id, sampleText="Other words.")
    )
    assert second["stepVoiceId"] == first["stepVoiceId"] and second["cloneDuplicated"]
    assert len(second["notices"]) == 1 and "sampleText was not used" in second["notices"][0]


def test_every_text_field_is_bounded_and_an_oversized_one_stores_nothing(
    platform_server: RunningPlatform, voice_set: VoiceSet
) -> None:
    _, key = platform_server.sign_up("creator")
    client = platform_server.client(key)
    file_id = client.post("/files", files={"file": ("v.wav", _fresh_audio(voice_set, 0))})
    base = {"fileId": file_id.json()["fileId"], "name": "Bounded", "consent": CONSENT}
    with platform_server.platform.sessions() as session:
        before = session.scalar(select(func.count()).select_from(Persona))
    for field, value in [
        ("text", "x" * 1001),
        ("description", "x" * 2001),
        ("personaPrompt", "x" * 4001),
        ("name", "x" * 81),
        ("tags", ["x" * 31]),
        ("tags", [f"t{i}" for i in range(11)]),
    ]:
        r = client.post("/voices", json={**base, field: value})
        assert r.status_code == 422, (field, r.status_code)
        assert r.json()["error"]["code"] == "invalid_request" and field in r.json()["error"]["message"]
    big = client.post("/voices", json={**base, "text": "x" * 10_000_000})
    assert big.status_code in (413, 422) and "error" in big.json()
    with platform_server.platform.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Persona)) == before
    schema = client.get("/openapi.json").json()["components"]["schemas"]["CreateVoice"]["properties"]
    assert schema["text"]["anyOf"][0]["maxLength"] == 1000


def test_discovery_shows_other_creators_only_live_personas(
    platform_server: RunningPlatform, emulator: EmulatorProcess, voice_set: VoiceSet
) -> None:
    _, owner_key = platform_server.sign_up("creator")
    _, viewer_key = platform_server.sign_up("consumer")
    owner = platform_server.client(owner_key)
    up = owner.post("/files", files={"file": ("v.wav", _fresh_audio(voice_set, 1))})
    emulator.admin("keys", {"key": EMULATOR_KEY, "state": "invalid"})  # the clone fails for good
    try:
        voice_id = _create(platform_server, owner_key, up.json()["fileId"], name="Broken Probe")
        wait_for(
            lambda: owner.get(f"/voices/{voice_id}").json()["status"] == "failed",
            timeout=60,
            what="the persona to fail",
        )
    finally:
        emulator.admin("keys", {"key": EMULATOR_KEY, "state": "valid"})
    seen_by_viewer = platform_server.client(viewer_key).get("/voices", params={"q": "Broken Probe"}).json()
    seen_by_owner = owner.get("/voices", params={"q": "Broken Probe"}).json()
    assert seen_by_viewer["total"] == 0 and seen_by_viewer["data"] == []
    assert [p["id"] for p in seen_by_owner["data"]] == [voice_id]


def test_unspeakable_text_is_refused_before_it_reaches_the_provider(
    platform_server: RunningPlatform, emulator: EmulatorProcess, voice_set: VoiceSet
) -> None:
    _, creator_key = platform_server.sign_up("creator")
    persona = create_live_persona(platform_server, creator_key, _fresh_audio(voice_set, 2))
    _, key = platform_server.sign_up("consumer")
    client = platform_server.client(key)
    calls_before = emulator.admin("stats")["requests"].get("POST /v1/audio/speech", 0)
    for text in ["   \n\t ", "😀😀😀", "hello\x00world", "bell\x07", ""]:
        r = client.post("/tts", json={"voice": persona["id"], "text": text})
        assert r.status_code == 400, (text, r.status_code, r.text)
        assert r.json()["error"]["code"] == "invalid_text" and not r.json()["error"]["retryable"]
    assert emulator.admin("stats")["requests"].get("POST /v1/audio/speech", 0) == calls_before
    ok = client.post("/tts", json={"voice": persona["id"], "text": "Line one.\nLine two 😀."})
    assert ok.status_code == 200 and len(ok.content) > 1000
    assert platform_server.platform.provider_health.state != "degraded"
