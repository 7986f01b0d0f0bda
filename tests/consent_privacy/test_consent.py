"""Verified consent: a public persona needs a recording of a random sentence by the upload's own speaker."""

from __future__ import annotations

from typing import Any

from bentos.core.accounts import open_admin
from bentos.devkit.harness import RunningPlatform, wait_for
from encoders.voices import VoiceSet
from tests.consent_privacy.flows import public_body, record, upload, verified_challenge


def test_public_persona_needs_the_same_speaker_reading_the_sentence(
    consent_platform: RunningPlatform, voice_set: VoiceSet
) -> None:
    speaker, stranger = (voice_set.by_speaker()[s] for s in voice_set.speakers[:2])
    _, key = consent_platform.sign_up("creator")
    creator = consent_platform.client(key)
    file_id = upload(creator, speaker[0].mp3_path.read_bytes())

    refused = creator.post("/voices", json=public_body(file_id))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "consent_not_verified"

    challenge = creator.post("/consent-challenges", json={"fileId": file_id, "language": "en"}).json()
    assert challenge["sentence"] and challenge["expiresAt"]
    other_voice = record(creator, challenge["challengeId"], stranger[0].mp3_path.read_bytes())
    assert other_voice["verified"] is False and other_voice["cosine"] < other_voice["threshold"]
    still_refused = creator.post("/voices", json=public_body(file_id, challenge["challengeId"]))
    assert still_refused.status_code == 403
    assert still_refused.json()["error"]["code"] == "consent_not_verified"

    same_voice = record(creator, challenge["challengeId"], speaker[1].mp3_path.read_bytes())
    assert same_voice["verified"] is True and same_voice["cosine"] >= same_voice["threshold"]
    created = creator.post("/voices", json=public_body(file_id, challenge["challengeId"]))
    assert created.status_code == 202, created.text

    # The upload may still make private personas with the attestation alone, as before.
    private = {**public_body(file_id), "visibility": "private", "name": "Just me"}
    assert creator.post("/voices", json=private).status_code == 202


def test_challenges_are_their_uploads_owners_only(
    consent_platform: RunningPlatform, voice_set: VoiceSet
) -> None:
    clips = voice_set.by_speaker()[voice_set.speakers[2]]
    _, key = consent_platform.sign_up("creator")
    creator = consent_platform.client(key)
    file_id = upload(creator, clips[0].mp3_path.read_bytes())
    challenge_id = creator.post("/consent-challenges", json={"fileId": file_id}).json()["challengeId"]

    _, other_key = consent_platform.sign_up("creator")
    _, admin_key = open_admin(consent_platform.platform.sessions, "Ops", "ops-consent@example.com")
    recording = {"file": ("me.mp3", clips[1].mp3_path.read_bytes())}
    for who in (consent_platform.client(other_key), consent_platform.client(admin_key)):
        assert who.post("/consent-challenges", json={"fileId": file_id}).status_code == 404
        answer = who.post(f"/consent-challenges/{challenge_id}/recording", files=recording)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    anonymous = consent_platform.client()
    assert anonymous.post("/consent-challenges", json={"fileId": file_id}).status_code == 401
    assert anonymous.post(f"/consent-challenges/{challenge_id}/recording", files=recording).status_code == 401

    unknown_language = creator.post("/consent-challenges", json={"fileId": file_id, "language": "fr"})
    assert unknown_language.status_code == 422
    too_short = creator.post(
        f"/consent-challenges/{challenge_id}/recording", files={"file": ("x.wav", b"RIFF")}
    )
    assert too_short.status_code in (415, 422)


def test_a_verified_recording_is_anchored_with_the_persona(
    consent_platform: RunningPlatform, voice_set: VoiceSet
) -> None:
    clips = voice_set.by_speaker()[voice_set.speakers[3]]
    _, key = consent_platform.sign_up("creator")
    creator = consent_platform.client(key)
    file_id = upload(creator, clips[0].mp3_path.read_bytes())
    challenge_id = verified_challenge(creator, file_id, clips[1].mp3_path.read_bytes())
    voice_id = creator.post("/voices", json=public_body(file_id, challenge_id)).json()["voiceId"]

    def live() -> dict[str, Any] | None:
        detail: dict[str, Any] = creator.get(f"/voices/{voice_id}").json()
        assert detail["status"] != "failed", detail.get("failure")
        return detail if detail["status"] == "live" and detail.get("chain") else None

    detail = wait_for(live, timeout=120, what="the persona to go live")
    assert detail["stepFileId"] and detail["stepVoiceId"]  # the creator can check what revocation deletes

    from bentos.core.pipeline import metadata_hash
    from bentos.store.models import Persona, StoredFile

    with consent_platform.platform.sessions() as session:
        persona = session.get_one(Persona, voice_id)
        stored = session.get_one(StoredFile, file_id)
        assert persona.consent_recording_sha256 is not None
        anchored = metadata_hash(persona, stored)
        persona.consent_recording_sha256 = None
        assert metadata_hash(persona, stored) != anchored  # the recording's hash is part of what is anchored
        session.rollback()


def test_expired_challenge_is_refused(consent_platform: RunningPlatform, voice_set: VoiceSet) -> None:
    clips = voice_set.by_speaker()[voice_set.speakers[4]]
    _, key = consent_platform.sign_up("creator")
    creator = consent_platform.client(key)
    file_id = upload(creator, clips[0].mp3_path.read_bytes())
    challenge_id = creator.post("/consent-challenges", json={"fileId": file_id}).json()["challengeId"]

    from datetime import UTC, datetime, timedelta

    from bentos.store.notify_models import ConsentChallenge

    with consent_platform.platform.sessions.begin() as session:
        session.get_one(ConsentChallenge, challenge_id).expires_at = datetime.now(UTC) - timedelta(seconds=1)
    late = creator.post(
        f"/consent-challenges/{challenge_id}/recording",
        files={"file": ("me.mp3", clips[1].mp3_path.read_bytes())},
    )
    assert late.status_code == 410 and late.json()["error"]["code"] == "challenge_expired"


def test_an_edit_to_public_needs_the_same_verified_consent(
    consent_platform: RunningPlatform, voice_set: VoiceSet
) -> None:
    speaker = voice_set.by_speaker()[voice_set.speakers[4]]
    _, key = consent_platform.sign_up("creator")
    creator = consent_platform.client(key)
    file_id = upload(creator, speaker[0].mp3_path.read_bytes())
    private = creator.post("/voices", json={**public_body(file_id), "visibility": "private"})
    assert private.status_code == 202, private.text
    voice_id = private.json()["voiceId"]

    for visibility in ("public", "unlisted"):  # private → the marketplace: not without the voice check
        refused = creator.patch(f"/voices/{voice_id}", json={"visibility": visibility})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "consent_not_verified"
    assert creator.get(f"/voices/{voice_id}").json()["visibility"] == "private"
    assert creator.get(f"/voices/{voice_id}/versions").json()["items"] == []  # the refused edit left nothing

    verified_challenge(creator, file_id, speaker[1].mp3_path.read_bytes())
    opened = creator.patch(f"/voices/{voice_id}", json={"visibility": "public"})
    assert opened.status_code == 200, opened.text
    assert creator.get(f"/voices/{voice_id}").json()["visibility"] == "public"
