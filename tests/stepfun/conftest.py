"""Fixtures for the StepFun tests: a shared loopback emulator, clients, and synthesised reference audio."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bentos.devkit.emulator_process import EmulatorProcess
from bentos.stepfun import StepFunClient
from tests.stepfun.stepfun_helpers import REFERENCE_TEXT, fast_settings, reference_wav


@pytest.fixture(scope="session")
def engine_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("engine-cache")


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory, engine_cache: Path) -> Iterator[EmulatorProcess]:
    # No rate limit here: tests of the limiter set it through /_admin/limits on their own emulator.
    state = tmp_path_factory.mktemp("emulator-state")
    with EmulatorProcess(state, rpm=0, concurrency=0, cache_dir=engine_cache, max_candidates=4) as emu:
        yield emu


@pytest.fixture()
def client(emulator: EmulatorProcess) -> Iterator[StepFunClient]:
    emulator.admin("reset", {})
    with StepFunClient(fast_settings(emulator.base_url)) as c:
        yield c


@pytest.fixture(scope="session")
def reference() -> bytes:
    return reference_wav()


@pytest.fixture(scope="session")
def cloned_voice(emulator: EmulatorProcess, reference: bytes) -> str:
    with StepFunClient(fast_settings(emulator.base_url)) as c:
        file = c.upload_file(reference, "reference.wav")
        return c.create_voice(file.id, text=REFERENCE_TEXT, sample_text="Hello from my clone.").id
