"""Complete revocation (provider file deleted, voice retired, replays forgotten), export and account erasure."""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from typing import Any

import httpx
from sqlalchemy import select

from bentos.core.accounts import open_admin
from bentos.devkit.harness import RunningPlatform, wait_for
from bentos.stepfun.errors import NotFound
from bentos.store.models import Account, LedgerTransaction, Persona, UsageEvent, VoiceClone
from bentos.store.session_models import MailMessage
from encoders.voices import VoiceSet
from tests.consent_privacy.flows import live_persona, public_body, upload


def _provider_file_gone(running: RunningPlatform, step_file_id: str) -> bool:
    try:
        running.platform.provider.get_file(step_file_id)  # the emulator's own state
    except NotFound:
        return True
    return False


def _speak(client: httpx.Client, voice_id: str, key: str) -> httpx.Response:
    body = {"voice": voice_id, "text": "Hello there, this is a test.", "format": "wav"}
    return client.post("/tts", json=body, headers={"Idempotency-Key": key})


def test_revocation_deletes_the_provider_file_and_forgets_replays(
    consent_platform: RunningPlatform, voice_set: VoiceSet
) -> None:
    clips = voice_set.by_speaker()[voice_set.speakers[5]]
    _, key = consent_platform.sign_up("creator")
    creator = consent_platform.client(key)
    persona = live_persona(creator, clips[0].mp3_path.read_bytes())
    step_file_id, step_voice_id = persona["stepFileId"], persona["stepVoiceId"]
    assert step_file_id and step_voice_id
    assert not _provider_file_gone(consent_platform, step_file_id)
    first = _speak(creator, persona["id"], "replay-me")
    assert first.status_code == 200 and first.content
    assert _speak(creator, persona["id"], "replay-me").headers.get("idempotent-replayed") == "true"

    _, other_key = consent_platform.sign_up("creator")
    _, admin_key = open_admin(consent_platform.platform.sessions, "Ops", "ops-revoke@example.com")
    assert consent_platform.client(other_key).delete(f"/voices/{persona['id']}").status_code == 404
    assert consent_platform.client().delete(f"/voices/{persona['id']}").status_code == 401
    assert consent_platform.client(admin_key).delete(f"/voices/{persona['id']}").status_code == 404

    assert creator.delete(f"/voices/{persona['id']}").status_code == 200
    wait_for(
        lambda: _provider_file_gone(consent_platform, step_file_id), timeout=30, what="the file deletion"
    )
    with consent_platform.platform.sessions() as session:
        clone = session.scalar(select(VoiceClone).where(VoiceClone.step_voice_id == step_voice_id))
        assert clone is not None and clone.provider_voice_retired_at is not None
    replay = _speak(creator, persona["id"], "replay-me")  # the stored audio is gone with the persona
    assert replay.status_code == 410 and replay.json()["error"]["code"] == "voice_revoked"
    detail = creator.get(f"/voices/{persona['id']}").json()
    assert detail["stepFileId"] == step_file_id and detail["status"] == "revoked"


def test_provider_file_deletion_survives_provider_faults(
    consent_platform: RunningPlatform, voice_set: VoiceSet, emulator: object
) -> None:
    clips = voice_set.by_speaker()[voice_set.speakers[0]]
    _, key = consent_platform.sign_up("creator")
    creator = consent_platform.client(key)
    persona = live_persona(creator, clips[2].mp3_path.read_bytes())
    emulator.admin("faults", {"fail_next": 3, "status": 503})  # type: ignore[attr-defined]
    assert creator.delete(f"/voices/{persona['id']}").status_code == 200
    gone = lambda: _provider_file_gone(consent_platform, persona["stepFileId"])  # noqa: E731
    wait_for(gone, timeout=60, what="the file deletion after the provider recovered")


def test_export_zip_holds_the_accounts_data(consent_platform: RunningPlatform, voice_set: VoiceSet) -> None:
    clips = voice_set.by_speaker()[voice_set.speakers[1]]
    account_id, key = consent_platform.sign_up("creator")
    creator = consent_platform.client(key)
    persona = live_persona(creator, clips[1].mp3_path.read_bytes())
    assert _speak(creator, persona["id"], "export-1").status_code == 200

    answer = creator.get("/accounts/me/export")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    names = set(archive.namelist())
    assert {"account.json", "uploads.json", "personas.json", "usage.csv", "statements/ledger.json"} <= names
    assert json.loads(archive.read("account.json"))["id"] == account_id
    assert [p["id"] for p in json.loads(archive.read("personas.json"))] == [persona["id"]]
    uploads = json.loads(archive.read("uploads.json"))
    audio = archive.read(f"uploads/{uploads[0]['id']}.{uploads[0]['format']}")
    assert audio == clips[1].mp3_path.read_bytes()
    assert "export-1" in archive.read("usage.csv").decode()
    assert consent_platform.client().get("/accounts/me/export").status_code == 401
    _, other_key = consent_platform.sign_up("consumer")
    other = zipfile.ZipFile(io.BytesIO(consent_platform.client(other_key).get("/accounts/me/export").content))
    assert json.loads(other.read("personas.json")) == []  # only one's own data


def test_account_erasure_revokes_everything_and_keeps_the_ledger(
    consent_platform: RunningPlatform, voice_set: VoiceSet
) -> None:
    clips = voice_set.by_speaker()[voice_set.speakers[2]]
    account_id, key = consent_platform.sign_up("creator")
    creator = consent_platform.client(key)
    persona = live_persona(creator, clips[2].mp3_path.read_bytes())
    assert _speak(creator, persona["id"], "before-erasure").status_code == 200
    assert consent_platform.client().delete("/accounts/me").status_code == 401

    erased = creator.delete("/accounts/me")
    assert erased.status_code == 200 and erased.json()["personasRevoked"] == 1
    assert creator.get("/accounts/me").status_code == 401  # the key stopped at once
    wait_for(
        lambda: _provider_file_gone(consent_platform, persona["stepFileId"]), timeout=30, what="deletion"
    )
    _, caller_key = consent_platform.sign_up("consumer")
    gone = _speak(consent_platform.client(caller_key), persona["id"], "after")
    assert gone.status_code in (404, 410)
    with consent_platform.platform.sessions() as session:
        account = session.get_one(Account, account_id)
        assert account.erased_at is not None and "@erased.invalid" in account.email
        assert account.name == "erased account"
        erased_persona = session.get_one(Persona, persona["id"])  # the creator's words go with them
        assert (erased_persona.name, erased_persona.description, erased_persona.persona_prompt) == (
            "erased persona",
            "",
            "",
        )
        usage = session.scalars(select(UsageEvent).where(UsageEvent.creator_id == account_id)).all()
        assert len(usage) == 1  # the ledger keeps what it must, under the account id only
        assert session.scalars(
            select(LedgerTransaction).where(LedgerTransaction.account_id == account_id)
        ).first()


def test_erasure_ends_sessions_and_forgets_the_password(consent_platform: RunningPlatform) -> None:
    email, password = f"erase-me-{secrets.token_hex(4)}@example.com", "a long enough password"
    body = {"name": "Erin", "email": email, "role": "consumer", "password": password}
    signed_up = httpx.post(f"{consent_platform.base_url}/accounts", json=body, timeout=30)
    assert signed_up.status_code == 201, signed_up.text
    sign_in = {"email": email, "password": password}
    opened = httpx.post(f"{consent_platform.base_url}/sessions", json=sign_in, timeout=30)
    assert opened.status_code == 201, opened.text
    in_session = consent_platform.client(opened.json()["sessionToken"])
    assert in_session.get("/accounts/me").status_code == 200

    assert in_session.delete("/accounts/me").status_code == 200
    assert in_session.get("/accounts/me").status_code == 401  # the session ended with the account
    again = httpx.post(f"{consent_platform.base_url}/sessions", json=sign_in, timeout=30)
    assert again.status_code == 401  # the password is gone, and the email with it
    reset = httpx.post(f"{consent_platform.base_url}/password-resets", json={"email": email}, timeout=30)
    assert reset.status_code == 202  # answered as for any address, and nothing is sent
    with consent_platform.platform.sessions() as session:
        assert session.scalars(select(MailMessage).where(MailMessage.to_email == email)).first() is None


def _final(client: httpx.Client, voice_id: str) -> dict[str, Any]:
    def settled() -> dict[str, Any] | None:
        detail: dict[str, Any] = client.get(f"/voices/{voice_id}").json()
        return detail if detail["status"] in ("live", "failed") else None

    return wait_for(settled, timeout=60, what=f"{voice_id} to finish its pipeline")


def test_a_withdrawn_voice_is_never_used_again(
    consent_platform: RunningPlatform, voice_set: VoiceSet
) -> None:
    audio = voice_set.by_speaker()[voice_set.speakers[3]][0].mp3_path.read_bytes()
    _, key = consent_platform.sign_up("creator")
    creator = consent_platform.client(key)
    first = live_persona(creator, audio)
    assert creator.delete(f"/voices/{first['id']}").status_code == 200

    for client in (creator, consent_platform.client(consent_platform.sign_up("creator")[1])):
        body = {**public_body(upload(client, audio)), "visibility": "private"}
        created = client.post("/voices", json=body)
        assert created.status_code == 202, created.text
        again = _final(client, created.json()["voiceId"])
        assert again["status"] == "failed" and again["failure"]["code"] == "voice_retired", again
        assert again.get("stepVoiceId") in (None, first["stepVoiceId"])
        speech = _speak(client, again["id"], f"retired-{secrets.token_hex(2)}")
        assert speech.status_code == 409  # never live, so never spoken with the withdrawn voice
