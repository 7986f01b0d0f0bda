"""Steps the consent and privacy tests share: upload, verify consent, create a live persona."""

from __future__ import annotations

from typing import Any

import httpx

from bentos.devkit.harness import wait_for

STATEMENT = "This is my own voice and I consent."


def upload(client: httpx.Client, audio: bytes) -> str:
    answer = client.post("/files", files={"file": ("my voice.mp3", audio, "audio/mpeg")})
    assert answer.status_code in (200, 201), answer.text
    return str(answer.json()["fileId"])


def public_body(file_id: str, challenge_id: str | None = None) -> dict[str, Any]:
    consent: dict[str, Any] = {"attested": True, "statement": STATEMENT}
    if challenge_id:
        consent["challengeId"] = challenge_id
    return {"fileId": file_id, "name": "Narrator", "visibility": "public", "consent": consent}


def record(client: httpx.Client, challenge_id: str, audio: bytes) -> dict[str, Any]:
    answer = client.post(f"/consent-challenges/{challenge_id}/recording", files={"file": ("me.mp3", audio)})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def verified_challenge(client: httpx.Client, file_id: str, recording: bytes) -> str:
    challenge = client.post("/consent-challenges", json={"fileId": file_id}).json()
    assert record(client, challenge["challengeId"], recording)["verified"] is True
    return str(challenge["challengeId"])


def live_persona(client: httpx.Client, audio: bytes, visibility: str = "private") -> dict[str, Any]:
    """A private persona from `audio`, once live (its creator's view)."""
    file_id = upload(client, audio)
    body = {**public_body(file_id), "visibility": visibility}
    created = client.post("/voices", json=body)
    assert created.status_code == 202, created.text
    voice_id = created.json()["voiceId"]

    def live() -> dict[str, Any] | None:
        detail: dict[str, Any] = client.get(f"/voices/{voice_id}").json()
        assert detail["status"] != "failed", detail.get("failure")
        return detail if detail["status"] == "live" else None

    return dict(wait_for(live, timeout=120, what="the persona to go live"))
