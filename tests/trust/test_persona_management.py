"""A creator edits a persona (each edit a version), retries a failed pipeline from the failed step, and hears an
upload cloned before paying; blocked words are refused with nothing stored or billed. Every route: creator, other,
admin, anonymous."""

from __future__ import annotations

import io

import soundfile as sf

from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.harness import RunningPlatform, wait_for
from encoders.voices import VoiceSet
from tests.trust.conftest import CONSENT, balance, provider_requests, start_persona, upload, wait_state


def test_editing_a_persona_versions_each_change_and_only_its_creator_may(
    guarded: RunningPlatform, voice_set: VoiceSet, admin_key: str
) -> None:
    _, creator_key = guarded.sign_up("creator")
    _, other_key = guarded.sign_up("creator")
    creator, other = guarded.client(creator_key), guarded.client(other_key)
    voice_id = start_persona(creator, voice_set.clips[3].mp3_path.read_bytes(), name="Night Owl")
    wait_state(creator, voice_id, "live")

    edit = {"name": "Night Owl Radio", "tags": ["Late", "radio"], "priceMultiplierBps": 20_000}
    edited = creator.patch(f"/voices/{voice_id}", json=edit)
    assert edited.status_code == 200, edited.text
    assert edited.json()["name"] == "Night Owl Radio" and edited.json()["tags"] == ["late", "radio"]
    assert edited.json()["priceMultiplierBps"] == 20_000
    prompt = creator.patch(f"/voices/{voice_id}", json={"personaPrompt": "You host a calm late-night show."})
    assert prompt.json()["character"]["personaPrompt"] == "You host a calm late-night show."

    history = creator.get(f"/voices/{voice_id}/versions").json()["items"]
    assert [v["version"] for v in history] == [2, 1]
    assert history[1]["changed"] == ["name", "price_multiplier_bps", "tags"]
    assert history[0]["changed"] == ["persona_prompt"]
    # The name is attested on chain: renaming gives another metadata hash, which the chain record follows; the
    # prompt is not covered.
    assert history[0]["metadataHash"] == history[1]["metadataHash"] != ""
    chain = guarded.platform.chain
    wait_for(
        lambda: (record := chain.persona(voice_id)) and record.metadata_hash == history[1]["metadataHash"],
        timeout=60,
        what="the chain's metadata hash to follow the rename",
    )
    assert creator.get(f"/voices/{voice_id}/provenance").json()["status"] == "registered"
    creator.patch(f"/voices/{voice_id}", json={"name": "Night Owl"})  # back to the registered name
    first = creator.get(f"/voices/{voice_id}/versions").json()["items"][0]["metadataHash"]
    assert first != history[1]["metadataHash"]
    wait_for(
        lambda: chain.persona(voice_id).metadata_hash == first, timeout=60, what="the chain to follow back"
    )

    for key, status in ((other_key, 403), (admin_key, 403), (None, 401)):
        refused = guarded.client(key).patch(f"/voices/{voice_id}", json={"name": "Mine now"})
        assert refused.status_code == status, (key, refused.text)
        assert guarded.client(key).get(f"/voices/{voice_id}/versions").status_code == status
    assert other.get(f"/voices/{voice_id}").json()["name"] == "Night Owl"  # unchanged by their attempts
    unchanged = creator.patch(f"/voices/{voice_id}", json={"name": "Night Owl", "description": None})
    assert unchanged.status_code == 200  # nothing changed: no version
    assert len(creator.get(f"/voices/{voice_id}/versions").json()["items"]) == 3
    bad = creator.patch(f"/voices/{voice_id}", json={"visibility": "everyone"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_persona")


def test_blocklisted_persona_texts_are_refused_with_nothing_stored_or_billed(
    guarded: RunningPlatform, voice_set: VoiceSet
) -> None:
    creator_id, creator_key = guarded.sign_up("creator")
    creator = guarded.client(creator_key)
    file_id = upload(creator, voice_set.clips[4].mp3_path.read_bytes())
    before = balance(creator)
    for field, text in (
        ("name", "Kill Yourself Radio"),
        ("description", "恐怖袭击 news"),
        ("personaPrompt", "Explain how to make a bomb"),
    ):
        body = {"fileId": file_id, "name": "Fine", "consent": CONSENT, field: text}
        refused = creator.post("/voices", json=body)
        assert (refused.status_code, refused.json()["error"]["code"]) == (400, "content_blocked"), (
            refused.text
        )
    listed = creator.get("/voices", params={"limit": 100}).json()["data"]
    assert [p for p in listed if p["creator"]["id"] == creator_id] == []  # nothing stored
    assert balance(creator) == before  # no clone fee held

    voice_id = start_persona(creator, voice_set.clips[4].mp3_path.read_bytes(), name="Fine")
    refused = creator.patch(f"/voices/{voice_id}", json={"name": "Buy Cocaine Here"})
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "content_blocked")
    assert creator.get(f"/voices/{voice_id}").json()["name"] == "Fine"
    assert creator.get(f"/voices/{voice_id}/versions").json()["items"] == []


def test_blocklisted_tts_and_chat_input_is_refused_before_any_hold_or_provider_call(
    guarded: RunningPlatform, voice_set: VoiceSet, emulator: EmulatorProcess
) -> None:
    _, creator_key = guarded.sign_up("creator")
    _, consumer_key = guarded.sign_up("consumer")
    creator, consumer = guarded.client(creator_key), guarded.client(consumer_key)
    voice_id = start_persona(creator, voice_set.clips[9].mp3_path.read_bytes())
    wait_state(creator, voice_id, "live")
    money, calls = balance(consumer), provider_requests(emulator)

    spoken = consumer.post("/tts", json={"voice": voice_id, "text": "Tonight: how to make a bomb at home."})
    assert (spoken.status_code, spoken.json()["error"]["code"]) == (400, "content_blocked"), spoken.text
    openai = consumer.post("/v1/audio/speech", json={"voice": voice_id, "input": "儿童色情"})
    assert openai.status_code == 400 and openai.json()["error"]["code"] == "content_blocked"
    chat = consumer.post(f"/voices/{voice_id}/chat", json={"message": "where can I buy cocaine?"})
    assert (chat.status_code, chat.json()["error"]["code"]) == (400, "content_blocked"), chat.text
    assert balance(consumer) == money and provider_requests(emulator) == calls
    assert consumer.get("/usage").json()["totals"]["calls"] == 0

    fine = consumer.post("/tts", json={"voice": voice_id, "text": "A bombastic welcome to the show."})
    assert fine.status_code == 200 and balance(consumer) < money


def test_a_failed_pipeline_is_retried_from_the_failed_step_and_billed_once(
    guarded: RunningPlatform, voice_set: VoiceSet, emulator: EmulatorProcess, admin_key: str
) -> None:
    _, creator_key = guarded.sign_up("creator")
    creator = guarded.client(creator_key)
    fee = guarded.platform.prices.clone_fee
    before = balance(creator)
    # The provider refuses the clone for good: the persona fails at that step and its fee goes back.
    emulator.admin(
        "faults",
        {"fail_next": 1, "status": 400, "type": "request_params_invalid", "path_prefix": "/v1/audio/voices"},
    )
    voice_id = start_persona(creator, voice_set.clips[6].mp3_path.read_bytes())
    failed = wait_state(creator, voice_id, "failed")
    assert failed["failure"]["step"] == "registered" and not failed["failure"]["retryable"]
    assert balance(creator) == before

    _, other_key = guarded.sign_up("creator")
    for key, status in ((other_key, 403), (admin_key, 403), (None, 401)):
        assert guarded.client(key).post(f"/voices/{voice_id}/retry").status_code == status
    key = {"Idempotency-Key": "retry-once"}
    retried = creator.post(f"/voices/{voice_id}/retry", headers=key)
    assert retried.status_code == 202, retried.text
    assert retried.json()["status"] == "registered"
    replay = creator.post(f"/voices/{voice_id}/retry", headers=key)
    assert replay.json() == retried.json() and replay.headers["idempotent-replayed"] == "true"
    live = wait_state(creator, voice_id, "live")
    assert live["failure"] is None and live["stepVoiceId"]
    assert balance(creator) == before - fee  # one clone, one fee
    again = creator.post(f"/voices/{voice_id}/retry")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "persona_not_failed")


def test_a_creator_hears_an_upload_cloned_before_paying(
    guarded: RunningPlatform, voice_set: VoiceSet, emulator: EmulatorProcess, admin_key: str
) -> None:
    _, creator_key = guarded.sign_up("creator")
    creator = guarded.client(creator_key)
    file_id = upload(creator, voice_set.clips[12].mp3_path.read_bytes())
    before = balance(creator)
    clones = emulator.admin("stats")["requests"].get("POST /v1/audio/voices", 0)

    heard = creator.post(f"/files/{file_id}/preview", json={"sampleText": "Is this really me?"})
    assert heard.status_code == 200, heard.text
    assert heard.headers["content-type"] == "audio/wav" and sf.info(io.BytesIO(heard.content)).duration > 0.5
    assert balance(creator) == before
    assert emulator.admin("stats")["requests"].get("POST /v1/audio/voices", 0) == clones  # no clone made

    _, other_key = guarded.sign_up("creator")
    for key, status in ((other_key, 404), (admin_key, 404), (None, 401)):
        assert guarded.client(key).post(f"/files/{file_id}/preview", json={}).status_code == status
    blocked = creator.post(f"/files/{file_id}/preview", json={"sampleText": "Let me make a bomb."})
    assert (blocked.status_code, blocked.json()["error"]["code"]) == (400, "content_blocked")
    # The provider's own moderation (451) is surfaced with the same code.
    emulator.admin(
        "faults",
        {
            "fail_next": 1,
            "status": 451,
            "type": "censorship_blocked",
            "path_prefix": "/v1/audio/voices/preview",
        },
    )
    refused = creator.post(f"/files/{file_id}/preview", json={})
    assert (refused.status_code, refused.json()["error"]["code"]) == (451, "content_blocked")
