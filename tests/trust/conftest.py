"""A platform with the blocking impersonation guard on (GE2E, the default encoder, has a calibrated threshold),
an admin made the way operators make one, and helpers to wait for a persona's state."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from bentos.core.accounts import open_admin
from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.harness import RunningPlatform, wait_for
from tests.conftest import backend_params, backend_platform

CONSENT = {"attested": True, "statement": "This is my own voice and I consent."}


GUARD_ON = ["encoder=ge2e", "moderation.impersonation_review=true"]


@pytest.fixture(scope="module", params=backend_params())
def guarded(
    request: pytest.FixtureRequest, emulator: EmulatorProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningPlatform]:
    with backend_platform(request.param, tmp_path_factory.mktemp("trust"), emulator, GUARD_ON) as running:
        yield running


@pytest.fixture(scope="module")
def admin_key(guarded: RunningPlatform) -> str:
    _, key = open_admin(guarded.platform.sessions, "Ops", f"ops-{secrets.token_hex(4)}@example.com")
    return key


def upload(client: httpx.Client, audio: bytes) -> str:
    up = client.post("/files", files={"file": ("voice.mp3", audio, "audio/mpeg")})
    assert up.status_code in (200, 201), up.text
    return str(up.json()["fileId"])


def start_persona(client: httpx.Client, audio: bytes, **fields: Any) -> str:
    body = {
        "fileId": upload(client, audio),
        "name": "Narrator",
        "visibility": "public",
        "consent": CONSENT,
        **fields,
    }
    created = client.post("/voices", json=body)
    assert created.status_code == 202, created.text
    return str(created.json()["voiceId"])


def wait_state(client: httpx.Client, voice_id: str, *states: str, timeout: float = 120) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        detail: dict[str, Any] = client.get(f"/voices/{voice_id}").json()
        return detail if detail["status"] in states else None

    return dict(wait_for(reached, timeout=timeout, what=f"persona {voice_id} to reach {states}"))


def balance(client: httpx.Client) -> int:
    return int(client.get("/balance").json()["available"])


def provider_requests(emulator: EmulatorProcess) -> int:
    return sum(emulator.admin("stats")["requests"].values())


WaitState = Callable[..., dict[str, Any]]
