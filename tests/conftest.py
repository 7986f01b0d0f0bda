"""Shared fixtures: generated test voices (never committed), the StepFun emulator, a running platform."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
import torch

from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.harness import EMULATOR_KEY, RunningPlatform, pg_schema, platform_overrides, start_platform
from encoders.voices import DEFAULT_CACHE, VoiceSet, make_voices

# Two cores: keep each test process from oversubscribing them.
torch.set_num_threads(int(os.environ.get("VOXPERSONA_TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def voice_set() -> VoiceSet:
    """6 speakers × 3 utterances of 5–8 s generated speech (WAV + MP3)."""
    return make_voices(DEFAULT_CACHE, speakers=6, utterances=3)


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    state = tmp_path_factory.mktemp("emulator")
    with EmulatorProcess(state, api_keys=(EMULATOR_KEY,), rpm=0, concurrency=64, max_candidates=4) as emu:
        yield emu


@pytest.fixture(autouse=True)
def _reset_emulator_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "emulator" in request.fixturenames:
        emu: EmulatorProcess = request.getfixturevalue("emulator")
        emu.admin("reset", {})


def backend_params() -> list[object]:
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres+redis", marks=[pytest.mark.postgres, pytest.mark.redis]),
    ]


@contextmanager
def backend_platform(
    backend: str, data: Path, emulator: EmulatorProcess, extra: Sequence[str] = ()
) -> Iterator[RunningPlatform]:
    """The platform on SQLite (embedded) or on a fresh PostgreSQL schema + its own Redis names, with `extra`
    overrides; stopped (and its Redis keys removed) afterwards."""
    if backend == "sqlite":
        running = start_platform([*platform_overrides(data, emulator), *extra])
        try:
            yield running
        finally:
            running.stop()
        return
    name = "vp-test-" + secrets.token_hex(4)
    with pg_schema() as url:
        running = start_platform([*platform_overrides(data, emulator, db_url=url, redis_name=name), *extra])
        try:
            yield running
        finally:
            running.stop()
            client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
            for key in client.scan_iter(f"*{name}*"):
                client.delete(key)


@pytest.fixture(scope="module", params=backend_params())
def platform_server(
    request: pytest.FixtureRequest, emulator: EmulatorProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningPlatform]:
    with backend_platform(request.param, tmp_path_factory.mktemp("platform"), emulator) as running:
        yield running


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path
