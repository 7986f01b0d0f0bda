"""Fault-matrix fixtures: an emulator of its own (so its voice count is this platform's), a platform on SQLite
with one live persona, and `matrix_row`, which checks the shared invariants after a fault and records the row
(`VOXPERSONA_FAULT_REPORT=<file>` collects every row as JSON lines for scripts/fault_matrix.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bentos.chain.registry import ChainRegistry
from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.harness import EMULATOR_KEY, RunningPlatform, platform_overrides, start_platform
from bentos.devkit.invariants import InvariantReport, check_invariants, provider_voice_count
from encoders.voices import VoiceSet
from tests.service.test_end_to_end import create_live_persona

REPORT_ENV = "VOXPERSONA_FAULT_REPORT"


def fault_overrides(data: Path, emulator: EmulatorProcess, **kwargs: Any) -> list[str]:
    """The test harness's platform overrides (they fund every account: creating a persona pays for its clone)."""
    return platform_overrides(data, emulator, **kwargs)


@pytest.fixture(scope="module")
def fault_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    state = tmp_path_factory.mktemp("fault-emulator")
    with EmulatorProcess(state, api_keys=(EMULATOR_KEY,), rpm=0, concurrency=64, max_candidates=4) as emu:
        yield emu


@pytest.fixture
def solo_emulator(tmp_path: Path) -> Iterator[EmulatorProcess]:
    """An emulator for one test's own platform: the provider's voice count is then that platform's alone."""
    with EmulatorProcess(
        tmp_path / "solo-emulator", api_keys=(EMULATOR_KEY,), rpm=0, concurrency=64, max_candidates=4
    ) as emu:
        yield emu


@pytest.fixture(autouse=True)
def _reset_fault_emulator(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "fault_emulator" in request.fixturenames:
        emu: EmulatorProcess = request.getfixturevalue("fault_emulator")
        emu.admin("reset", {})
        emu.admin("keys", {"key": EMULATOR_KEY, "state": "valid"})


@pytest.fixture(scope="module")
def fault_platform(
    fault_emulator: EmulatorProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningPlatform]:
    # max_attempts=3: the bounded retries of a failing provider end within a second in tests.
    overrides = fault_overrides(tmp_path_factory.mktemp("fault-platform"), fault_emulator)
    running = start_platform([*overrides, "provider.max_attempts=3", "provider.read_timeout_s=1.0"])
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def live_voice(fault_platform: RunningPlatform, voice_set: VoiceSet) -> str:
    _, creator = fault_platform.sign_up("creator", "0x" + os.urandom(20).hex())
    return str(create_live_persona(fault_platform, creator, voice_set.clips[0].mp3_path.read_bytes())["id"])


@dataclass
class MatrixRow:
    """One row of the fault matrix: the fault, what the user saw, and the invariants checked afterwards."""

    test: str
    fault: str = ""
    result: str = ""
    report: InvariantReport | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def check(
        self,
        running_or_sessions: Any,
        *,
        seen_ok: int,
        callers: list[str] | None = None,
        emulator: EmulatorProcess | None = None,
        chain: ChainRegistry | None = None,
        job_deadline_s: float = 60.0,
    ) -> InvariantReport:
        """Check the shared invariants (bentos/devkit/invariants.py), record them, and fail on any problem."""
        sessions = getattr(getattr(running_or_sessions, "platform", None), "sessions", running_or_sessions)
        voices = provider_voice_count(emulator.base_url, EMULATOR_KEY) if emulator is not None else None
        self.report = check_invariants(
            sessions,
            seen_ok=seen_ok,
            callers=callers,
            provider_voices=voices,
            chain=chain,
            job_deadline_s=job_deadline_s,
        )
        assert self.report.ok, self.report.problems
        return self.report


@pytest.fixture
def matrix_row(request: pytest.FixtureRequest) -> Iterator[MatrixRow]:
    row = MatrixRow(test=request.node.nodeid)
    yield row
    target = os.environ.get(REPORT_ENV)
    if target:
        line = {
            "test": row.test,
            "fault": row.fault,
            "result": row.result,
            "invariants": row.report.as_dict() if row.report is not None else None,
        }
        with Path(target).open("a") as out:
            out.write(json.dumps(line) + "\n")
