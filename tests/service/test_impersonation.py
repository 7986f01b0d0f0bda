"""With a real encoder (GE2E), an upload close to another creator's persona is flagged to the uploader."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.harness import RunningPlatform, platform_overrides, start_platform
from encoders.voices import VoiceSet
from tests.service.test_end_to_end import create_live_persona


@pytest.fixture(scope="module")
def ge2e_platform(
    emulator: EmulatorProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningPlatform]:
    data: Path = tmp_path_factory.mktemp("ge2e-platform")
    running = start_platform([*platform_overrides(data, emulator), "encoder=ge2e"])
    try:
        yield running
    finally:
        running.stop()


def test_upload_of_another_creators_voice_is_flagged(
    ge2e_platform: RunningPlatform, voice_set: VoiceSet
) -> None:
    by_speaker = voice_set.by_speaker()
    victim_clips, other_clips = by_speaker[voice_set.speakers[0]], by_speaker[voice_set.speakers[1]]
    _, owner_key = ge2e_platform.sign_up("creator")
    persona = create_live_persona(ge2e_platform, owner_key, victim_clips[0].mp3_path.read_bytes())
    assert persona["embedding"]["encoder"] == "ge2e" and persona["embedding"]["pretrained"] is True

    _, impostor_key = ge2e_platform.sign_up("creator")
    impostor = ge2e_platform.client(impostor_key)
    same_voice = impostor.post(
        "/files", files={"file": ("me.mp3", victim_clips[1].mp3_path.read_bytes())}
    ).json()
    assert same_voice["impersonation"] is not None
    assert same_voice["impersonation"]["personaId"] == persona["id"]
    assert same_voice["impersonation"]["cosine"] >= ge2e_platform.platform.cfg.encoder.impersonation_threshold

    different = impostor.post(
        "/files", files={"file": ("me.mp3", other_clips[0].mp3_path.read_bytes())}
    ).json()
    assert different["impersonation"] is None
    # The owner re-uploading their own voice is not an impersonation.
    own = ge2e_platform.client(owner_key).post(
        "/files", files={"file": ("again.mp3", victim_clips[2].mp3_path.read_bytes())}
    )
    assert own.json()["impersonation"] is None
