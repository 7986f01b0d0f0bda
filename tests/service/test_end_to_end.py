"""A creator's voice becomes a persona others call, metered and anchored on chain, then revoked."""

from __future__ import annotations

import io
from typing import Any

import httpx
import soundfile as sf

from bentos.devkit.harness import RunningPlatform, wait_for
from encoders.voices import VoiceSet

WALLET = "0x" + "ab" * 20


def create_live_persona(running: RunningPlatform, key: str, audio: bytes, **fields: Any) -> dict[str, Any]:
    creator = running.client(key)
    up = creator.post("/files", files={"file": ("my voice.mp3", audio, "audio/mpeg")})
    assert up.status_code in (200, 201), up.text
    body = {
        "fileId": up.json()["fileId"],
        "name": "Narrator",
        "visibility": "public",
        "tags": ["calm"],
        "consent": {"attested": True, "statement": "This is my own voice and I consent."},
        **fields,
    }
    created = creator.post("/voices", json=body)
    assert created.status_code == 202, created.text
    voice_id = created.json()["voiceId"]

    def live() -> dict[str, Any] | None:
        detail = creator.get(f"/voices/{voice_id}").json()
        assert detail["status"] != "failed", detail["failure"]
        return detail if detail["status"] == "live" else None

    return dict(wait_for(live, timeout=120, what="the persona to go live"))


def test_persona_lifecycle_upload_to_revocation(
    platform_server: RunningPlatform, voice_set: VoiceSet
) -> None:
    _, creator_key = platform_server.sign_up("creator", WALLET)
    _, consumer_key = platform_server.sign_up("consumer")
    persona = create_live_persona(platform_server, creator_key, voice_set.clips[0].mp3_path.read_bytes())
    voice_id = persona["id"]
    assert persona["embedding"]["hash"].startswith("0x") and persona["stepVoiceId"]
    creator, consumer = platform_server.client(creator_key), platform_server.client(consumer_key)

    sample = creator.get(persona["sampleAudioUrl"])
    assert sample.status_code == 200 and sf.info(io.BytesIO(sample.content)).duration > 0.5

    text = "Good evening, and welcome to the late news."
    for fmt in ("wav", "mp3"):
        spoken = consumer.post("/tts", json={"voice": voice_id, "text": text, "format": fmt})
        assert spoken.status_code == 200, spoken.text
        info = sf.info(io.BytesIO(spoken.content))
        assert info.duration > 1.0, fmt
        assert spoken.headers["x-usage-chars"] == str(len(text))

    usage = consumer.get("/usage").json()
    assert usage["totals"]["calls"] == 2 and usage["totals"]["chars"] == 2 * len(text)
    assert all(c["amount"] > 0 and c["personaId"] == voice_id for c in usage["calls"])
    earnings = creator.get("/usage").json()["earnings"]
    assert earnings[0]["calls"] == 2 and 0 < earnings[0]["creatorShare"] < earnings[0]["amount"]

    def registered() -> dict[str, Any] | None:
        prov = creator.get(f"/voices/{voice_id}/provenance").json()
        return prov if prov["status"] == "registered" else None

    prov = wait_for(registered, timeout=60, what="chain registration")
    assert prov["embeddingHash"] == persona["embedding"]["hash"] == prov["chain"]["onchainHash"]

    assert consumer.delete(f"/voices/{voice_id}").status_code == 403  # only the creator may revoke
    assert creator.delete(f"/voices/{voice_id}").json() == {"id": voice_id, "status": "revoked"}
    refused = consumer.post("/tts", json={"voice": voice_id, "text": text})
    assert refused.status_code == 410 and refused.json()["error"]["code"] == "voice_revoked"
    assert creator.get(f"/voices/{voice_id}/sample").status_code == 404
    wait_for(
        lambda: creator.get(f"/voices/{voice_id}/provenance").json()["status"] == "revoked",
        timeout=60,
        what="the chain revocation",
    )
    assert consumer.get("/usage").json()["totals"]["calls"] == 2  # the refused call was not metered


def test_openai_compatible_speech(platform_server: RunningPlatform, voice_set: VoiceSet) -> None:
    _, creator_key = platform_server.sign_up("creator")
    persona = create_live_persona(platform_server, creator_key, voice_set.clips[3].wav_path.read_bytes())
    _, consumer_key = platform_server.sign_up("consumer")
    # What the OpenAI SDK sends: POST {base}/v1/audio/speech with model/input/voice/response_format.
    r = httpx.post(
        f"{platform_server.base_url}/v1/audio/speech",
        headers={"Authorization": f"Bearer {consumer_key}"},
        json={
            "model": "tts-1",
            "input": "Hello from any OpenAI client.",
            "voice": persona["id"],
            "response_format": "wav",
        },
        timeout=60,
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("audio/wav") and sf.info(io.BytesIO(r.content)).duration > 0.5
