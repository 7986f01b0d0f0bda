"""Retries, backoff, Retry-After, the circuit breaker, configuration errors and secrecy — over real HTTP."""

from __future__ import annotations

import logging
import time

import pytest

from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.processes import free_port
from bentos.stepfun import (
    InputRejected,
    ProviderConfigError,
    ProviderConnectionError,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    RetryEvent,
    StepFunClient,
)
from bentos.stepfun.health import CONFIG_ERRORS
from tests.stepfun.stepfun_helpers import fast_settings

SPEECH = {"model": "step-tts-mini", "input": "Hi.", "voice": "cixingnansheng", "response_format": "pcm"}


def speech_requests(emulator: EmulatorProcess) -> int:
    return int(emulator.admin("stats")["requests"].get("POST /v1/audio/speech", 0))


def retrying_client(
    emulator: EmulatorProcess, events: list[RetryEvent], **overrides: object
) -> StepFunClient:
    return StepFunClient(fast_settings(emulator.base_url, **overrides), on_retry=events.append, seed=7)


def test_503s_are_retried_with_capped_full_jitter_backoff(emulator: EmulatorProcess) -> None:
    emulator.admin("reset", {})
    emulator.admin("faults", {"fail_next": 3, "status": 503, "type": "server_error"})
    events: list[RetryEvent] = []
    with retrying_client(emulator, events, backoff_base_s=0.02, backoff_cap_s=0.03) as c:
        assert c.speech(**SPEECH).audio
    assert speech_requests(emulator) == 4
    assert [e.attempt for e in events] == [1, 2, 3]
    assert all(isinstance(e.error, ProviderServerError) for e in events)
    ceilings = [0.02, 0.03, 0.03]  # min(cap, base·2^(n-1))
    assert all(0 <= e.wait_s <= cap for e, cap in zip(events, ceilings, strict=True))


def test_attempts_are_bounded(emulator: EmulatorProcess) -> None:
    emulator.admin("reset", {})
    emulator.admin("faults", {"fail_next": 10, "status": 500, "type": "server_error"})
    with retrying_client(emulator, [], max_attempts=3) as c, pytest.raises(ProviderServerError) as err:
        c.speech(**SPEECH)
    assert err.value.status == 500 and err.value.retryable
    assert speech_requests(emulator) == 3


def test_429_honours_retry_after(emulator: EmulatorProcess) -> None:
    emulator.admin("reset", {})
    emulator.admin(
        "faults", {"fail_next": 1, "status": 429, "type": "rate_limit_exceeded", "retry_after": 0.3}
    )
    events: list[RetryEvent] = []
    start = time.monotonic()
    with retrying_client(emulator, events) as c:
        assert c.speech(**SPEECH).audio
    assert time.monotonic() - start >= 0.3
    assert len(events) == 1 and events[0].wait_s >= 0.3 and isinstance(events[0].error, RateLimited)
    emulator.admin("faults", {"retry_after": None})


def test_retry_after_beyond_limit_goes_to_the_caller(emulator: EmulatorProcess) -> None:
    emulator.admin("reset", {})
    emulator.admin(
        "faults", {"fail_next": 1, "status": 429, "type": "rate_limit_exceeded", "retry_after": 120}
    )
    with retrying_client(emulator, [], retry_after_max_s=5) as c, pytest.raises(RateLimited) as err:
        c.speech(**SPEECH)
    assert err.value.retry_after == pytest.approx(120, abs=1) and speech_requests(emulator) == 1


def test_emulator_rate_limit_answers_429_with_retry_after(tmp_path, engine_cache) -> None:  # type: ignore[no-untyped-def]
    with EmulatorProcess(tmp_path, rpm=2, concurrency=5, cache_dir=engine_cache) as emu:
        with StepFunClient(fast_settings(emu.base_url, retry_after_max_s=0.5)) as c:
            c.system_voices()
            c.system_voices()
            with pytest.raises(RateLimited) as err:
                c.system_voices()
        assert err.value.status == 429 and err.value.retry_after is not None and err.value.retry_after > 50


def test_read_timeouts_are_retried(emulator: EmulatorProcess) -> None:
    emulator.admin("reset", {})
    emulator.admin("faults", {"stall_next": 1, "stall_ms": 1500})
    events: list[RetryEvent] = []
    with retrying_client(emulator, events, read_timeout_s=0.4) as c:
        assert c.system_voices()
    assert len(events) == 1 and isinstance(events[0].error, ProviderTimeout)


def test_connection_refused_is_retried_then_raised() -> None:
    events: list[RetryEvent] = []
    with (
        StepFunClient(
            fast_settings(f"http://127.0.0.1:{free_port()}/v1", max_attempts=2), on_retry=events.append
        ) as c,
        pytest.raises(ProviderConnectionError),
    ):
        c.system_voices()
    assert len(events) == 1


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"status": 400, "type": "request_params_invalid"}, InputRejected),
        ({"status": 451, "type": "censorship_blocked"}, Exception),
        ({"status": 402, "type": "quota_exceeded"}, ProviderConfigError),
        ({"status": 401, "type": "invalid_api_key"}, ProviderConfigError),
    ],
)
def test_caller_and_config_errors_are_never_retried(
    emulator: EmulatorProcess, fault: dict, error: type[Exception]
) -> None:
    emulator.admin("reset", {})
    emulator.admin("faults", {"fail_next": 1, **fault})
    events: list[RetryEvent] = []
    with retrying_client(emulator, events) as c, pytest.raises(error) as err:
        c.speech(**SPEECH)
    assert getattr(err.value, "status", None) == fault["status"]
    assert events == [] and speech_requests(emulator) == 1


def test_invalid_key_degrades_health_logs_once_and_recovers(
    emulator: EmulatorProcess, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.admin("reset", {})
    before = CONFIG_ERRORS.labels(code="invalid_api_key")._value.get()
    with StepFunClient(fast_settings(emulator.base_url, api_key="sk-wrong-key-123456")) as bad:
        with caplog.at_level(logging.ERROR, logger="bentos.stepfun"):
            for _ in range(2):
                with pytest.raises(ProviderConfigError) as err:
                    bad.system_voices()
        assert err.value.code == "invalid_api_key" and err.value.status == 401
        assert bad.health.state == "degraded" and "invalid_api_key" in (bad.health.reason or "")
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1
        assert CONFIG_ERRORS.labels(code="invalid_api_key")._value.get() == before + 2
        assert speech_requests(emulator) == 0
        emulator.admin("keys", {"key": "sk-wrong-key-123456", "state": "valid"})
        bad.system_voices()
        assert bad.health.state == "ok"
        emulator.admin("keys", {"key": "sk-wrong-key-123456", "state": "quota_exceeded"})
        with pytest.raises(ProviderConfigError) as err:
            bad.system_voices()
        assert (
            err.value.status == 402 and err.value.code == "quota_exceeded" and bad.health.state == "degraded"
        )


def test_breaker_opens_after_failures_and_recovers_after_cool_down(emulator: EmulatorProcess) -> None:
    emulator.admin("reset", {})
    emulator.admin("faults", {"fail_next": 100, "status": 503, "type": "server_error"})
    settings = fast_settings(
        emulator.base_url, max_attempts=1, breaker_fail_max=3, breaker_reset_timeout_s=0.5
    )
    with StepFunClient(settings) as c:
        for _ in range(3):
            with pytest.raises(ProviderServerError):
                c.speech(**SPEECH)
        assert c.health.state == "degraded"
        with pytest.raises(ProviderUnavailable):
            c.speech(**SPEECH)
        assert speech_requests(emulator) == 3, "an open breaker makes no call"
        emulator.admin("reset", {})
        deadline = time.monotonic() + 5
        while True:
            try:
                assert c.speech(**SPEECH).audio
                break
            except ProviderUnavailable:
                assert time.monotonic() < deadline, "breaker never let a probe through"
                time.sleep(0.05)
        assert c.health.state == "ok" and c.breaker.current_state == "closed"


def test_stream_retries_only_before_first_byte(emulator: EmulatorProcess) -> None:
    emulator.admin("reset", {})
    emulator.admin("faults", {"fail_next": 2, "status": 503, "type": "server_error"})
    events: list[RetryEvent] = []
    with retrying_client(emulator, events) as c:
        chunks = list(c.stream_speech(**SPEECH, stream_format="audio"))
    assert chunks and len(events) == 2 and speech_requests(emulator) == 3


def test_api_key_never_leaks(emulator: EmulatorProcess, caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-SECRET-do-not-log-0123456789"
    emulator.admin("reset", {})
    emulator.admin(
        "faults", {"fail_next": 1, "status": 503, "type": "server_error", "message": f"echo {secret}"}
    )
    caught: list[BaseException] = []
    settings = fast_settings(emulator.base_url, api_key=secret, max_attempts=2)
    with caplog.at_level(logging.DEBUG), StepFunClient(settings) as c:
        with pytest.raises(ProviderConfigError) as err:
            c.system_voices()
        caught.append(err.value)
        texts = [
            repr(c),
            str(c.settings),
            repr(c.settings),
            c.settings.model_dump_json(),
            str(c.health.reason),
        ]
    texts += [str(e) for e in caught] + [repr(e) for e in caught] + [caplog.text]
    texts += [r.getMessage() for r in caplog.records]
    assert not [t for t in texts if secret in t]
    assert "***" in str(caught[0]) or "Incorrect" in str(caught[0])
