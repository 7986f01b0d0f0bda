"""The emulator keeps its state across restarts; provider configs build settings without side effects."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig

from bentos.devkit.emulator_process import EmulatorProcess
from bentos.stepfun import ProviderSettings, StepFunClient
from tests.stepfun.stepfun_helpers import REFERENCE_TEXT, fast_settings, reference_wav

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def provider_config(name: str) -> DictConfig:
    """The provider group composed through the root config (it supplies data_dir)."""
    with initialize_config_dir(str(CONFIGS), version_base=None):
        cfg = compose("config", overrides=[f"provider={name}"])
    provider: DictConfig = cfg.provider
    return provider


def test_restart_keeps_files_and_voices(tmp_path: Path, engine_cache: Path) -> None:
    port_state = tmp_path / "state"
    opts = {"rpm": 0, "concurrency": 0, "cache_dir": engine_cache, "max_candidates": 4}
    with EmulatorProcess(port_state, **opts) as emu, StepFunClient(fast_settings(emu.base_url)) as c:
        file = c.upload_file(reference_wav("flite:rms", REFERENCE_TEXT), "rms.wav")
        voice = c.create_voice(file.id)
    with EmulatorProcess(port_state, **opts) as emu, StepFunClient(fast_settings(emu.base_url)) as c:
        assert voice.id in [v.id for v in c.list_voices().data]
        assert c.get_file(file.id).id == file.id
        again = c.create_voice(file.id)
        assert again.id == voice.id and again.duplicated
        assert c.speech(model="step-tts-2", input="Still me.", voice=voice.id).audio


def test_emulator_config_builds_settings_and_starts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXPERSONA_DATA", "/tmp/vp-state")
    settings = instantiate(provider_config("emulator"))
    assert isinstance(settings, ProviderSettings) and settings.is_emulator
    assert settings.base_url == "http://127.0.0.1:8765/v1"
    assert (
        settings.emulator is not None and str(settings.emulator.state_dir) == "/tmp/vp-state/stepfun-emulator"
    )
    assert settings.emulator.rpm == 10 and settings.emulator.concurrency == 5  # StepFun's V0 tier


def test_stepfun_config_reads_key_from_env_and_hides_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEP_API_KEY", "sk-from-env-abcdef123")
    settings = instantiate(provider_config("stepfun"))
    assert settings.base_url == "https://api.stepfun.com/v1" and settings.secret == "sk-from-env-abcdef123"
    assert "sk-from-env" not in repr(settings) and "sk-from-env" not in settings.model_dump_json()
    monkeypatch.delenv("STEP_API_KEY")
    assert instantiate(provider_config("stepfun")).api_key is None
