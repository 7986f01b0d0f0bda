"""The persona pipeline against an in-memory provider: states, one clone per upload, claims, retries, revival."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select, update

from bentos.core.jobs import Retry
from bentos.stepfun.errors import ProviderServerError, ProviderUnavailable, RateLimited
from bentos.store.models import Job, StoredFile, VoiceClone, utcnow
from tests.core.conftest import Core

if TYPE_CHECKING:
    from encoders.voices import VoiceSet


def _audio(voice_set: VoiceSet, i: int) -> bytes:
    return voice_set.clips[i].wav_path.read_bytes()


def test_a_persona_walks_every_state_to_live_and_pays_for_one_clone(core: Core, voice_set: VoiceSet) -> None:
    seen: list[str] = []
    core.pipeline.on_step = lambda _, state: seen.append(state)
    creator = core.account()
    persona_id = core.persona(creator, core.upload(creator, _audio(voice_set, 0)))
    core.pipeline.run(persona_id)
    persona = core.get(persona_id)
    assert seen == ["validated", "embedded", "registered", "cloned", "previewed", "live"]
    assert persona.state == "live" and persona.step_voice_id and persona.sample_blob_key
    assert persona.clones_billed == 1 and not persona.clone_duplicated
    assert core.provider.calls == {"upload": 1, "clone": 1, "speech": 0}  # the clone's sample is the preview


def test_personas_of_one_upload_share_one_provider_file_and_one_paid_voice(
    core: Core, voice_set: VoiceSet
) -> None:
    creator = core.account()
    file_id = core.upload(creator, _audio(voice_set, 1))
    ids = [core.persona(creator, file_id) for _ in range(3)]
    for persona_id in ids:
        core.pipeline.run(persona_id)
    personas = [core.get(p) for p in ids]
    assert {p.step_voice_id for p in personas} == {personas[0].step_voice_id}
    assert [p.clones_billed for p in personas] == [1, 0, 0]
    assert core.provider.calls["upload"] == 1 and core.provider.calls["clone"] == 1  # reused, not re-asked
    assert all(p.sample_blob_key == personas[0].sample_blob_key for p in personas)


def test_a_second_account_with_the_same_audio_gets_the_voice_without_paying_again(
    core: Core, voice_set: VoiceSet
) -> None:
    audio = _audio(voice_set, 2)
    first, second = core.account(), core.account()
    a = core.persona(first, core.upload(first, audio))
    b = core.persona(second, core.upload(second, audio))
    core.pipeline.run(a)
    core.pipeline.run(b)
    assert core.get(a).step_voice_id == core.get(b).step_voice_id
    assert (core.get(a).clones_billed, core.get(b).clones_billed) == (1, 0)
    assert core.provider.created_voices == 1


def test_a_voice_left_by_a_timed_out_attempt_is_adopted_and_paid_once(
    core: Core, voice_set: VoiceSet
) -> None:
    creator = core.account()
    file_id = core.upload(creator, _audio(voice_set, 3))
    persona_id = core.persona(creator, file_id)
    # The first attempt reached the provider, which created the voice; the answer was lost.
    with core.sessions() as session:
        upload = session.get(StoredFile, file_id)
        assert upload is not None and upload.blob_key
    step_file = core.provider.upload_file(core.blobs.get(upload.blob_key), f"{file_id}.wav")
    core.provider.create_voice(step_file.id, model="step-tts-2")
    with core.sessions.begin() as session:
        session.execute(update(StoredFile).where(StoredFile.id == file_id).values(step_file_id=step_file.id))
    core.pipeline.run(persona_id)
    assert core.get(persona_id).state == "live" and core.get(persona_id).clones_billed == 1
    assert core.provider.created_voices == 1


def test_a_lapsed_upload_claim_finds_the_provider_file_by_name_instead_of_uploading_again(
    core: Core, voice_set: VoiceSet
) -> None:
    creator = core.account()
    file_id = core.upload(creator, _audio(voice_set, 4))
    persona_id = core.persona(creator, file_id)
    core.provider.upload_file(b"...", f"{file_id}.wav")  # a crashed worker's upload that got through
    stale = utcnow() - timedelta(hours=1)
    with core.sessions.begin() as session:
        session.execute(
            update(StoredFile).where(StoredFile.id == file_id).values(step_upload_claimed_at=stale)
        )
    core.pipeline.run(persona_id)
    assert core.get(persona_id).state == "live"
    assert core.provider.calls["upload"] == 1  # only the crashed one


def test_a_clone_another_worker_is_making_defers_without_spending_an_attempt(
    core: Core, voice_set: VoiceSet
) -> None:
    creator = core.account()
    file_id = core.upload(creator, _audio(voice_set, 5))
    first, second = core.persona(creator, file_id), core.persona(creator, file_id)
    core.pipeline.run(first)
    with core.sessions.begin() as session:  # pretend the clone is still in flight elsewhere
        session.execute(
            update(VoiceClone).values(step_voice_id=None, claimed_at=utcnow(), sample_blob_key=None)
        )
    with pytest.raises(Retry) as deferred:
        core.pipeline.run(second)
    assert deferred.value.delay <= 2.0
    with core.sessions() as session:
        attempts = session.scalar(select(Job.attempts).where(Job.persona_id == second))
    assert attempts == 0 and core.get(second).failure_code is None
    assert core.provider.calls["clone"] == 1


def test_an_open_breaker_is_retried_no_sooner_than_its_cool_down(core: Core, voice_set: VoiceSet) -> None:
    creator = core.account()
    persona_id = core.persona(creator, core.upload(creator, _audio(voice_set, 0)))
    core.provider.fail_clone.append(ProviderUnavailable("circuit open"))
    with pytest.raises(Retry) as retry:
        core.pipeline.run(persona_id)
    assert retry.value.delay >= core.provider.settings.breaker_reset_timeout_s
    persona = core.get(persona_id)
    assert persona.state == "registered" and persona.failure_retryable


def test_a_full_rate_limit_is_retried_no_sooner_than_it_says(core: Core, voice_set: VoiceSet) -> None:
    creator = core.account()
    persona_id = core.persona(creator, core.upload(creator, _audio(voice_set, 3)))
    core.provider.fail_clone.append(RateLimited("tier full", retry_after=12.0))
    with pytest.raises(Retry) as retry:
        core.pipeline.run(persona_id)
    assert retry.value.delay >= 12.0
    assert core.get(persona_id).failure_code == "provider_rate_limited"


def test_a_retryable_failure_is_revived_until_the_provider_recovers_then_given_up_on(
    core: Core, voice_set: VoiceSet
) -> None:
    creator = core.account()
    persona_id = core.persona(creator, core.upload(creator, _audio(voice_set, 1)))
    outage = [ProviderServerError("down") for _ in range(2)]
    core.provider.fail_clone.extend(outage)
    with pytest.raises(Retry):
        core.pipeline.run(persona_id)  # attempt 1 of 2
    core.pipeline.run(persona_id)  # attempt 2: failed, retryable
    assert core.get(persona_id).state == "failed" and core.get(persona_id).failure_retryable

    assert core.pipeline.revive_retryable() == [persona_id]  # back to the failed step, with a new job
    assert core.get(persona_id).state == "registered"
    core.pipeline.run(persona_id)  # the provider is back
    assert core.get(persona_id).state == "live" and core.get(persona_id).failure_code is None

    other = core.persona(creator, core.upload(creator, _audio(voice_set, 2)))
    for _ in range(3):  # max_revivals = 2: the third run's failure is final
        core.provider.fail_clone.extend([ProviderServerError("down"), ProviderServerError("down")])
        with pytest.raises(Retry):
            core.pipeline.run(other)
        core.pipeline.run(other)
        core.pipeline.revive_retryable()
    persona = core.get(other)
    assert persona.state == "failed" and persona.failure_retryable is False
    assert "gave up" in (persona.failure_message or "")
    with core.sessions() as session:
        assert session.scalar(select(func.count()).where(Job.persona_id == other)) == 3
