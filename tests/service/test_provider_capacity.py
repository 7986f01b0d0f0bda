"""The provider's tier through the platform (issue "Reliability" §2): at StepFun's V0 tier (10 requests/min, 5 in
flight) one caller's burst gets its share and then 429s that say when to come back — never a 503 — the breaker
stays closed, and the next caller is still served. A provider's 429s never trip the breaker; its 5xx do."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.harness import EMULATOR_KEY, RunningPlatform, platform_overrides, start_platform, wait_for
from encoders.voices import VoiceSet
from tests.service.test_end_to_end import create_live_persona

V0 = {"rpm": 10, "concurrency": 5}
INTERACTIVE_WAIT_S = 2.0  # configs/provider/*.yaml tier.interactive_wait_s


@dataclass
class Answer:
    status: int
    code: str | None
    retry_after: str | None
    seconds: float


def _speak(running: RunningPlatform, key: str, voice: str, text: str) -> Answer:
    start = time.monotonic()
    r = httpx.post(
        f"{running.base_url}/v1/audio/speech",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "tts-1", "input": text, "voice": voice, "response_format": "mp3"},
        timeout=60,
    )
    code = r.json()["error"]["code"] if r.status_code != 200 else None
    return Answer(r.status_code, code, r.headers.get("retry-after"), time.monotonic() - start)


def _assert_says_when(answer: Answer) -> None:
    """A 429/503 carries Retry-After: whole seconds, at least 1."""
    assert answer.retry_after is not None, answer
    assert answer.retry_after.isdigit() and int(answer.retry_after) >= 1, answer


def _provider_health(running: RunningPlatform) -> dict[str, Any]:
    provider: dict[str, Any] = httpx.get(f"{running.base_url}/health", timeout=10).json()["provider"]
    return provider


@pytest.fixture(scope="module")
def v0_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    """An emulator at StepFun's V0 tier and a platform whose limiter is configured to match."""
    state = tmp_path_factory.mktemp("v0-emulator")
    data = tmp_path_factory.mktemp("v0-platform")
    with EmulatorProcess(state, api_keys=(EMULATOR_KEY,), max_candidates=4, **V0) as emu:
        tier = [f"provider.tier.rpm={V0['rpm']}", f"provider.tier.concurrency={V0['concurrency']}"]
        running = start_platform(platform_overrides(data, emu) + tier)
        try:
            yield running
        finally:
            running.stop()


@pytest.fixture(scope="module")
def v0_voice(v0_platform: RunningPlatform, voice_set: VoiceSet) -> str:
    _, creator = v0_platform.sign_up("creator")
    return str(create_live_persona(v0_platform, creator, voice_set.clips[5].wav_path.read_bytes())["id"])


@pytest.fixture(scope="module")
def burst(v0_platform: RunningPlatform, v0_voice: str) -> list[Answer]:
    """One caller's 14 quick calls, one after another."""
    _, key = v0_platform.sign_up("consumer")
    return [_speak(v0_platform, key, v0_voice, f"Quick call number {i}.") for i in range(1, 15)]


def test_a_burst_gets_its_share_then_429s_with_retry_after_never_a_503(
    v0_platform: RunningPlatform, burst: list[Answer]
) -> None:
    statuses = [a.status for a in burst]
    served = statuses.count(200)
    assert 503 not in statuses, burst
    # Served first, then refused: at most the caller's share (half of the 10 requests a minute).
    assert 1 <= served <= V0["rpm"] // 2 and statuses == [200] * served + [429] * (14 - served), burst
    for refused in burst[served:]:
        assert refused.code == "provider_rate_limited"
        _assert_says_when(refused)
        assert refused.seconds < INTERACTIVE_WAIT_S + 3  # a bounded wait, not the provider's minute
    health = _provider_health(v0_platform)
    assert health["state"] == "ok", health  # the breaker stayed closed: nobody else is refused for it


def test_a_second_caller_right_after_the_burst_is_served_within_its_share(
    v0_platform: RunningPlatform, v0_voice: str, burst: list[Answer]
) -> None:
    assert burst[-1].status == 429  # caller 1 is being refused right now
    _, key = v0_platform.sign_up("consumer")
    answer = _speak(v0_platform, key, v0_voice, "My turn, please.")
    assert answer.status == 200, answer
    assert _provider_health(v0_platform)["state"] == "ok"


def test_provider_429s_never_trip_the_breaker_but_5xx_do_and_every_refusal_says_when(
    platform_server: RunningPlatform, emulator: EmulatorProcess, voice_set: VoiceSet
) -> None:
    _, creator = platform_server.sign_up("creator")
    voice = str(create_live_persona(platform_server, creator, voice_set.clips[7].wav_path.read_bytes())["id"])
    _, key = platform_server.sign_up("consumer")
    speech = "/v1/audio/speech"
    # The provider's own 429s, far more than the breaker's fail_max (5): every call retries, then is refused.
    emulator.admin(
        "faults",
        {
            "fail_next": 24,
            "status": 429,
            "type": "rate_limit_exceeded",
            "retry_after": 0.05,
            "path_prefix": speech,
        },
    )
    limited = [_speak(platform_server, key, voice, f"Rate limited {i}.") for i in range(4)]
    assert [a.status for a in limited] == [429] * 4, limited
    for answer in limited:
        assert answer.code == "provider_rate_limited"
        _assert_says_when(answer)
    assert _provider_health(platform_server)["state"] == "ok"

    # The provider failing: 5xx trip the breaker; what callers get says when to come back.
    emulator.admin("faults", {"fail_next": 40, "status": 503, "type": "server_error", "path_prefix": speech})
    failing = [_speak(platform_server, key, voice, f"Failing {i}.") for i in range(3)]
    assert {a.status for a in failing} == {503}, failing
    for answer in failing:
        assert answer.code == "provider_unavailable"
        _assert_says_when(answer)
    assert _provider_health(platform_server)["state"] == "degraded"

    # Once the provider answers again the breaker's probe closes it (cool-down: 1 s in the test harness).
    emulator.admin("reset", {})
    wait_for(
        lambda: _speak(platform_server, key, voice, "Back again.").status == 200,
        timeout=30,
        interval=0.2,
        what="the breaker to close again",
    )
    assert _provider_health(platform_server)["state"] == "ok"
