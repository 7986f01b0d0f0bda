"""The fault matrix (issue 13 §4): each fault injected for real — the emulator's fault injection, processes
stopped and SIGKILLed — then what the user saw, and the shared invariants afterwards (conftest `matrix_row`):
no lost or doubled usage, one paid clone per provider voice, one registration and one payout on chain, no
stuck job. Rows already pinned elsewhere are listed in scripts/fault_matrix.py, not repeated here.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import func, select

from bentos.chain import AnvilChainSettings
from bentos.chain.outbox import OutboxItem
from bentos.core.embedder import Embedder, RemoteEmbedder
from bentos.devkit.anvil import ensure_anvil, start_anvil
from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.evm_node import DevNodeError
from bentos.devkit.harness import EMULATOR_KEY, RunningPlatform, start_platform, wait_for
from bentos.devkit.processes import free_port
from bentos.devkit.throwaway import ThrowawayPostgres, ThrowawayRedis, ThrowawayUnavailable
from bentos.store.db import DatabaseSettings, make_engine, session_factory
from bentos.store.models import IdempotencyRecord, Persona
from encoders import AudioClip
from encoders.voices import VoiceSet
from tests.reliability.conftest import MatrixRow, fault_overrides
from tests.service.test_end_to_end import create_live_persona

# The whole matrix runs in the slow pass (CI runs it; `make reliability` reports it).
pytestmark = pytest.mark.slow

# Several sentences: the provider streams one audio chunk per sentence, so a slow stream has gaps to slow.
LONG_TEXT = "A trickle of speech. It comes slowly. Then a little more. And the end of it."


@dataclass
class Heard:
    """What a caller of POST /tts got: the status, the error code, Retry-After, the audio, or a broken body."""

    status: int
    code: str | None = None
    retry_after: str | None = None
    audio: int = 0  # bytes received
    broken: str | None = None  # the body stopped short (the status line had been sent)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.broken is None and self.audio > 0

    def __str__(self) -> str:
        if self.broken:
            return f"{self.status}, body cut off ({self.broken})"
        if self.status == 200:
            return f"200 audio ({self.audio} bytes)"
        return f"{self.status} {self.code}" + (
            f", Retry-After {self.retry_after}" if self.retry_after else ""
        )


def speak(
    running: RunningPlatform,
    key: str,
    voice: str,
    text: str,
    *,
    timeout: float = 30.0,
    idempotency_key: str | None = None,
    on_audio: Callable[[], None] | None = None,
) -> Heard:
    """POST /tts and read the stream to its end; `on_audio` is called once the first audio bytes arrived."""
    headers = {"Authorization": f"Bearer {key}"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    start = time.monotonic()
    body = {"voice": voice, "text": text, "format": "mp3"}
    with httpx.stream("POST", f"{running.base_url}/tts", json=body, headers=headers, timeout=timeout) as r:
        if r.status_code != 200:
            r.read()
            error = r.json()["error"]
            return Heard(r.status_code, error["code"], r.headers.get("retry-after"))
        received = 0
        try:
            for chunk in r.iter_bytes():
                if chunk and not received and on_audio is not None:
                    on_audio()
                received += len(chunk)
        except httpx.HTTPError as exc:
            return Heard(200, audio=received, broken=type(exc).__name__, seconds=time.monotonic() - start)
        return Heard(200, audio=received, seconds=time.monotonic() - start)


def speech_requests(emulator: EmulatorProcess) -> int:
    return int(emulator.admin("stats")["requests"].get("POST /v1/audio/speech", 0))


def provider_state(running: RunningPlatform) -> dict[str, object]:
    return dict(httpx.get(f"{running.base_url}/health", timeout=10).json()["provider"])


def recover_provider(running: RunningPlatform, voice: str) -> None:
    """After a fault that opened the breaker: let a probe close it (a caller of its own, not counted)."""
    _, key = running.sign_up("consumer")
    wait_for(
        lambda: speak(running, key, voice, "Probe.").ok and provider_state(running)["state"] == "ok",
        timeout=30,
        interval=0.2,
        what="the provider to be healthy again",
    )


# ---- provider faults on a speech call --------------------------------------------------------------------


def test_invalid_provider_key_on_tts_is_a_503_with_a_code_and_nothing_billed(
    fault_platform: RunningPlatform, fault_emulator: EmulatorProcess, live_voice: str, matrix_row: MatrixRow
) -> None:
    matrix_row.fault = "provider 401 invalid key (TTS)"
    caller, key = fault_platform.sign_up("consumer")
    before = speech_requests(fault_emulator)
    fault_emulator.admin("keys", {"key": EMULATOR_KEY, "state": "invalid"})
    heard = speak(fault_platform, key, live_voice, "Hello there.")
    health = provider_state(fault_platform)
    fault_emulator.admin("keys", {"key": EMULATOR_KEY, "state": "valid"})
    matrix_row.result = str(heard)
    assert (heard.status, heard.code) == (503, "provider_misconfigured"), heard
    assert speech_requests(fault_emulator) - before == 1, "a wrong key is never retried"
    assert health["state"] == "degraded" and "invalid_api_key" in str(health.get("reason"))
    assert EMULATOR_KEY not in str(health)
    matrix_row.check(fault_platform, seen_ok=0, callers=[caller], emulator=fault_emulator)
    assert speak(fault_platform, key, live_voice, "Back again.").ok  # a fixed key needs no restart


def test_exhausted_provider_quota_on_tts_is_a_503_with_a_code_and_nothing_billed(
    fault_platform: RunningPlatform, fault_emulator: EmulatorProcess, live_voice: str, matrix_row: MatrixRow
) -> None:
    matrix_row.fault = "provider 402 quota exhausted (TTS)"
    caller, key = fault_platform.sign_up("consumer")
    fault_emulator.admin("keys", {"key": EMULATOR_KEY, "state": "quota_exceeded"})
    heard = speak(fault_platform, key, live_voice, "Hello there.")
    health = provider_state(fault_platform)
    fault_emulator.admin("keys", {"key": EMULATOR_KEY, "state": "valid"})
    matrix_row.result = str(heard)
    assert (heard.status, heard.code) == (503, "provider_misconfigured"), heard
    assert "quota_exceeded" in str(health.get("reason")), health  # the operator is told which
    matrix_row.check(fault_platform, seen_ok=0, callers=[caller], emulator=fault_emulator)


def test_a_provider_429_is_waited_out_per_retry_after_billed_once_and_opens_no_breaker(
    fault_platform: RunningPlatform, fault_emulator: EmulatorProcess, live_voice: str, matrix_row: MatrixRow
) -> None:
    matrix_row.fault = "provider 429 with Retry-After (TTS)"
    caller, key = fault_platform.sign_up("consumer")
    fault_emulator.admin(
        "faults", {"fail_next": 1, "status": 429, "type": "rate_limit_exceeded", "retry_after": 0.4}
    )
    start = time.monotonic()
    heard = speak(fault_platform, key, live_voice, "Patience pays.")
    waited = time.monotonic() - start
    matrix_row.result = f"{heard} after {waited:.1f} s"
    assert heard.ok, heard
    assert waited >= 0.4, "the provider's Retry-After was not honoured"
    assert provider_state(fault_platform)["state"] == "ok"  # a 429 never counts toward the breaker
    matrix_row.check(fault_platform, seen_ok=1, callers=[caller], emulator=fault_emulator)


def test_text_the_provider_blocks_is_a_451_and_nothing_billed(
    fault_platform: RunningPlatform, fault_emulator: EmulatorProcess, live_voice: str, matrix_row: MatrixRow
) -> None:
    matrix_row.fault = "provider 451 content blocked (TTS)"
    caller, key = fault_platform.sign_up("consumer")
    before = speech_requests(fault_emulator)
    fault_emulator.admin("faults", {"fail_next": 1, "status": 451, "type": "censorship_blocked"})
    heard = speak(fault_platform, key, live_voice, "Something the moderator dislikes.")
    matrix_row.result = str(heard)
    assert (heard.status, heard.code) == (451, "content_blocked"), heard
    assert speech_requests(fault_emulator) - before == 1, "a blocked text is never retried"
    assert provider_state(fault_platform)["state"] == "ok"
    matrix_row.check(fault_platform, seen_ok=0, callers=[caller], emulator=fault_emulator)


def test_a_transient_provider_503_is_retried_and_the_call_billed_once(
    fault_platform: RunningPlatform, fault_emulator: EmulatorProcess, live_voice: str, matrix_row: MatrixRow
) -> None:
    matrix_row.fault = "provider 503 twice, then fine (TTS)"
    caller, key = fault_platform.sign_up("consumer")
    before = speech_requests(fault_emulator)
    fault_emulator.admin("faults", {"fail_next": 2, "status": 503, "type": "server_error"})
    heard = speak(fault_platform, key, live_voice, "Third time lucky.")
    matrix_row.result = str(heard)
    assert heard.ok, heard
    assert speech_requests(fault_emulator) - before == 3
    matrix_row.check(fault_platform, seen_ok=1, callers=[caller], emulator=fault_emulator)


def test_provider_500s_are_retried_a_bounded_number_of_times_then_a_clear_503_and_nothing_billed(
    fault_platform: RunningPlatform, fault_emulator: EmulatorProcess, live_voice: str, matrix_row: MatrixRow
) -> None:
    matrix_row.fault = "provider 500 on every attempt (TTS)"
    caller, key = fault_platform.sign_up("consumer")
    before = speech_requests(fault_emulator)
    fault_emulator.admin("faults", {"fail_next": 50, "status": 500, "type": "server_error"})
    heard = speak(fault_platform, key, live_voice, "This will not work.")
    sent = speech_requests(fault_emulator) - before
    fault_emulator.admin("reset", {})
    matrix_row.result = f"{heard} after {sent} attempts"
    assert (heard.status, heard.code) == (503, "provider_unavailable"), heard
    assert heard.retry_after is not None and int(heard.retry_after) >= 1
    assert sent == fault_platform.platform.provider_settings.max_attempts  # bounded
    matrix_row.check(fault_platform, seen_ok=0, callers=[caller], emulator=fault_emulator)
    recover_provider(fault_platform, live_voice)


def test_a_provider_that_never_answers_times_out_into_a_clear_503_and_nothing_billed(
    fault_platform: RunningPlatform, fault_emulator: EmulatorProcess, live_voice: str, matrix_row: MatrixRow
) -> None:
    matrix_row.fault = "provider read timeout on every attempt (TTS)"
    caller, key = fault_platform.sign_up("consumer")
    settings = fault_platform.platform.provider_settings
    stall_ms = int(settings.read_timeout_s * 1000) + 700
    fault_emulator.admin("faults", {"stall_next": settings.max_attempts, "stall_ms": stall_ms})
    heard = speak(fault_platform, key, live_voice, "Is anybody there?")
    matrix_row.result = str(heard)
    assert (heard.status, heard.code) == (503, "provider_unavailable"), heard
    matrix_row.check(fault_platform, seen_ok=0, callers=[caller], emulator=fault_emulator)
    recover_provider(fault_platform, live_voice)


def test_a_slow_stream_that_completes_is_delivered_whole_and_billed_once(
    fault_platform: RunningPlatform, fault_emulator: EmulatorProcess, live_voice: str, matrix_row: MatrixRow
) -> None:
    matrix_row.fault = "provider slow stream, completes (TTS)"
    caller, key = fault_platform.sign_up("consumer")
    normal = speak(fault_platform, key, live_voice, LONG_TEXT)
    fault_emulator.admin("faults", {"chunk_delay_ms": 150, "path_prefix": "/v1/audio/speech"})
    slow = speak(fault_platform, key, live_voice, LONG_TEXT + "!")
    matrix_row.result = f"{slow} in {slow.seconds:.1f} s"
    assert normal.ok and slow.ok, (normal, slow)
    assert abs(slow.audio - normal.audio) < normal.audio // 4  # the whole audio, not a cut-off part
    assert slow.seconds >= 0.15  # it did trickle
    matrix_row.check(fault_platform, seen_ok=2, callers=[caller], emulator=fault_emulator)


def test_a_stream_that_stalls_past_the_read_timeout_is_cut_off_and_not_billed(
    fault_platform: RunningPlatform, fault_emulator: EmulatorProcess, live_voice: str, matrix_row: MatrixRow
) -> None:
    matrix_row.fault = "provider stream stalls mid-body past the read timeout (TTS)"
    caller, key = fault_platform.sign_up("consumer")
    stall_ms = int(fault_platform.platform.provider_settings.read_timeout_s * 1000) + 700
    fault_emulator.admin("faults", {"chunk_delay_ms": stall_ms, "path_prefix": "/v1/audio/speech"})
    heard = speak(fault_platform, key, live_voice, LONG_TEXT)
    fault_emulator.admin("reset", {})
    matrix_row.result = str(heard)
    assert heard.status == 200 and heard.broken is not None, (
        heard
    )  # a short body is never passed off as whole
    matrix_row.check(fault_platform, seen_ok=0, callers=[caller], emulator=fault_emulator)
    recover_provider(fault_platform, live_voice)


def test_a_caller_who_gives_up_on_a_slow_stream_and_retries_is_billed_once(
    fault_platform: RunningPlatform, fault_emulator: EmulatorProcess, live_voice: str, matrix_row: MatrixRow
) -> None:
    matrix_row.fault = "client timeout on a slow stream, retried with its Idempotency-Key (TTS)"
    caller, key = fault_platform.sign_up("consumer")
    fault_emulator.admin("faults", {"chunk_delay_ms": 300, "path_prefix": "/v1/audio/speech"})
    idem = "give-up-" + caller
    text = LONG_TEXT
    with pytest.raises(httpx.ReadTimeout):
        headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": idem}
        body = {"voice": live_voice, "text": text, "format": "mp3"}
        with httpx.stream(
            "POST", f"{fault_platform.base_url}/tts", json=body, headers=headers, timeout=0.15
        ) as r:
            assert r.status_code == 200
            for _ in r.iter_bytes():
                pass

    def relay_ended() -> bool:  # the key's claim is dropped or finished once the platform ends the relay
        with fault_platform.platform.sessions() as session:
            row = session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.key == idem))
        return row is None or row.status_code is not None

    wait_for(relay_ended, timeout=30, what="the platform to end the abandoned relay")
    fault_emulator.admin("reset", {})
    again = speak(fault_platform, key, live_voice, text, idempotency_key=idem)
    matrix_row.result = f"client read timeout mid-stream; retry with the key → {again}"
    assert again.ok, again
    # Whether the cut stream was billed (the provider made it) or not, the request is metered exactly once.
    matrix_row.check(fault_platform, seen_ok=1, callers=[caller], emulator=fault_emulator)


# ---- infrastructure faults: processes stopped, killed and restarted (CI's slow pass) ----------------------

CONSENT = {"attested": True, "statement": "This is my own voice and I consent."}
REPO = Path(__file__).resolve().parents[2]


def start_persona(
    base_url: str, key: str, audio: bytes, name: str, idempotency_key: str | None = None
) -> httpx.Response:
    """POST /files then POST /voices; returns the /voices response (202 with voiceId and jobId)."""
    auth = {"Authorization": f"Bearer {key}"}
    up = httpx.post(f"{base_url}/files", headers=auth, files={"file": ("v.mp3", audio)}, timeout=60)
    assert up.status_code in (200, 201), up.text
    headers = {**auth, **({"Idempotency-Key": idempotency_key} if idempotency_key else {})}
    body = {"fileId": up.json()["fileId"], "name": name, "visibility": "public", "consent": CONSENT}
    return httpx.post(f"{base_url}/voices", headers=headers, json=body, timeout=60)


def persona_status(base_url: str, key: str, voice_id: str) -> str:
    r = httpx.get(f"{base_url}/voices/{voice_id}", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    return str(r.json()["status"]) if r.status_code == 200 else f"http {r.status_code}"


def wait_live(base_url: str, key: str, voice_ids: list[str], timeout: float = 120) -> None:
    def all_live() -> bool:
        states = [persona_status(base_url, key, v) for v in voice_ids]
        assert "failed" not in states, states
        return all(s == "live" for s in states)

    wait_for(all_live, timeout=timeout, interval=0.2, what=f"personas {voice_ids} to go live")


@dataclass
class Traffic:
    """Callers speaking in a loop on a thread while a fault happens: what each of them heard."""

    running: RunningPlatform
    key: str
    voice: str
    heard: list[Heard] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Traffic:
        def loop() -> None:
            i = 0
            while not self._stop.is_set():
                i += 1
                try:
                    self.heard.append(
                        speak(self.running, self.key, self.voice, f"Call {i} under fire.", timeout=20)
                    )
                except httpx.HTTPError as exc:
                    self.heard.append(Heard(0, code=type(exc).__name__))

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def summary(self) -> str:
        seen = Counter("ok" if h.ok else str(h.status) + (f" {h.code}" if h.code else "") for h in self.heard)
        return ", ".join(f"{n}× {what}" for what, n in sorted(seen.items()))


@pytest.mark.slow
def test_postgres_restarted_mid_run_loses_no_usage_and_strands_no_job(
    solo_emulator: EmulatorProcess, voice_set: VoiceSet, tmp_path: Path, matrix_row: MatrixRow
) -> None:
    matrix_row.fault = "PostgreSQL restarted (crash) mid-run"
    try:
        pg = ThrowawayPostgres().init()
    except ThrowawayUnavailable as exc:
        pytest.skip(f"no throwaway PostgreSQL: {exc}")
    running = None
    try:
        running = start_platform(fault_overrides(tmp_path / "data", solo_emulator, db_url=pg.url))
        _, creator = running.sign_up("creator")
        voice = str(create_live_persona(running, creator, voice_set.clips[1].mp3_path.read_bytes())["id"])
        caller, key = running.sign_up("consumer")
        solo_emulator.admin("faults", {"latency_ms": 1500, "path_prefix": "/v1/audio/voices"})
        pending = [
            str(
                start_persona(
                    running.base_url, creator, voice_set.clips[i].mp3_path.read_bytes(), f"P{i}"
                ).json()["voiceId"]
            )
            for i in (2, 3)
        ]
        with Traffic(running, key, voice) as traffic:
            wait_for(
                lambda: sum(h.ok for h in traffic.heard) >= 2, timeout=60, what="traffic before the crash"
            )
            pg.stop("immediate")  # a crash: no checkpoint, recovery on start
            pg.start()
            done = len(traffic.heard)
            wait_for(
                lambda: sum(h.ok for h in traffic.heard[done:]) >= 2, timeout=60, what="traffic after it"
            )
        solo_emulator.admin("reset", {})
        wait_live(running.base_url, creator, pending)
        matrix_row.result = f"TTS: {traffic.summary()}; personas in flight went live"
        assert sum(h.ok for h in traffic.heard) >= 4
        # While the database was away callers got a retryable 503 that says when, never a 500.
        assert all(h.status < 500 or h.code == "database_unavailable" or h.ok for h in traffic.heard), (
            traffic.summary()
        )
        matrix_row.check(
            running, seen_ok=sum(h.ok for h in traffic.heard), callers=[caller], emulator=solo_emulator
        )
    finally:
        if running is not None:
            running.stop()
        pg.destroy()


@pytest.mark.slow
def test_redis_restarted_mid_run_strands_no_job_and_clones_once(
    solo_emulator: EmulatorProcess, voice_set: VoiceSet, tmp_path: Path, matrix_row: MatrixRow
) -> None:
    matrix_row.fault = "Redis (queue=redis) restarted mid-run"
    try:
        server = ThrowawayRedis(tmp_path / "redis").start()
    except ThrowawayUnavailable as exc:
        pytest.skip(f"no throwaway Redis: {exc}")
    overrides = [
        *fault_overrides(tmp_path / "data", solo_emulator, redis_name="vp-fault-" + uuid.uuid4().hex[:8]),
        f"queue.url={server.url}",
    ]
    running = None
    try:
        running = start_platform(overrides)
        _, creator = running.sign_up("creator")
        solo_emulator.admin("faults", {"latency_ms": 1500, "path_prefix": "/v1/audio/voices"})
        pending = [
            str(
                start_persona(
                    running.base_url, creator, voice_set.clips[i].mp3_path.read_bytes(), f"R{i}"
                ).json()["voiceId"]
            )
            for i in (4, 5, 6)
        ]
        wait_for(
            lambda: any(persona_status(running.base_url, creator, v) == "registered" for v in pending),
            timeout=60,
            what="a pipeline to reach the clone step",
        )
        server.stop()
        server.start()
        solo_emulator.admin("reset", {})
        wait_live(running.base_url, creator, pending)
        matrix_row.result = "personas in flight went live after the restart"
        matrix_row.check(running, seen_ok=0, callers=[], emulator=solo_emulator)
    finally:
        if running is not None:
            running.stop()
        server.stop()


@pytest.mark.slow
def test_a_chain_node_down_and_back_delivers_queued_registrations_and_payouts_once(
    solo_emulator: EmulatorProcess, voice_set: VoiceSet, tmp_path: Path, matrix_row: MatrixRow
) -> None:
    matrix_row.fault = "chain node (anvil) down, then back"
    try:
        binary = ensure_anvil()
    except DevNodeError as exc:
        pytest.skip(f"no anvil: {exc}")
    chain = AnvilChainSettings(
        port=free_port(), state_dir=str(tmp_path / "chain"), artifact_dir=str(tmp_path / "artifacts")
    )
    overrides = [
        *fault_overrides(tmp_path / "data", solo_emulator),
        "chain=anvil",
        f"chain.port={chain.port}",
        f"chain.state_dir={chain.state_dir}",
        f"chain.artifact_dir={chain.artifact_dir}",
    ]
    node = start_anvil(binary, chain.port, chain.state_file, state_interval_s=chain.state_interval_s)
    running = None
    try:
        running = start_platform(overrides)
        wallet = "0x" + os.urandom(20).hex()
        _, creator = running.sign_up("creator", wallet)
        voice = str(create_live_persona(running, creator, voice_set.clips[7].mp3_path.read_bytes())["id"])
        wait_for(lambda: provenance(running, creator, voice) == "registered", timeout=60, what="registration")
        caller, key = running.sign_up("consumer")
        calls = [speak(running, key, voice, f"Paid sentence {i}.") for i in range(2)]
        assert all(h.ok for h in calls), calls

        node.stop()  # the node goes away
        queued = start_persona(running.base_url, creator, voice_set.clips[8].mp3_path.read_bytes(), "Offline")
        offline = str(queued.json()["voiceId"])
        wait_live(
            running.base_url, creator, [offline]
        )  # the chain intent waits in the outbox, the persona not
        settled = httpx.post(
            f"{running.base_url}/settlements", headers={"Authorization": f"Bearer {creator}"}, timeout=30
        )
        assert settled.status_code == 201, settled.text
        settlement = settled.json()
        health = httpx.get(f"{running.base_url}/health", timeout=10).json()
        assert health["chain"]["state"] == "degraded", health
        # A chain read while the node is away is a clear, retryable 503, never a 500.
        down = running.client(creator).get(f"/voices/{voice}/provenance")
        assert (down.status_code, down.json()["error"]["code"]) == (503, "chain_unavailable"), down.text
        assert down.json()["error"]["retryable"] and down.headers.get("retry-after"), down.headers
        assert provenance(running, creator, offline) != "registered"

        node = start_anvil(binary, chain.port, chain.state_file, state_interval_s=chain.state_interval_s)
        wait_for(
            lambda: provenance(running, creator, offline) == "registered",
            timeout=90,
            what="the queued registration",
        )

        def confirmed() -> bool:
            r = httpx.get(
                f"{running.base_url}/settlements/{settlement['settlementId']}",
                headers={"Authorization": f"Bearer {creator}"},
                timeout=10,
            )
            return bool(r.json()["status"] == "confirmed")

        wait_for(confirmed, timeout=90, what="the queued settlement to confirm")
        matrix_row.result = (
            "persona went live while down (chain: degraded); registration + payout sent on return"
        )
        registry = running.platform.chain
        assert registry.balance_of(wallet) == int(settlement["weiAmount"])  # paid exactly once
        report = matrix_row.check(
            running, seen_ok=2, callers=[caller], emulator=solo_emulator, chain=registry
        )
        assert report.registrations == 2
    finally:
        if running is not None:
            running.stop()
        node.stop()


def provenance(running: RunningPlatform, key: str, voice_id: str) -> str:
    r = running.client(key).get(f"/voices/{voice_id}/provenance")
    return str(r.json().get("status")) if r.status_code == 200 else f"http {r.status_code}"


@pytest.mark.slow
def test_a_platform_killed_mid_request_leaves_each_effect_complete_once_or_absent(
    solo_emulator: EmulatorProcess, voice_set: VoiceSet, tmp_path: Path, matrix_row: MatrixRow
) -> None:
    matrix_row.fault = "platform SIGKILLed mid TTS stream and mid persona create"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable,
        "-m",
        "bentos.devkit.platform_proc",
        str(port),
        *fault_overrides(tmp_path, solo_emulator),
        "server.idempotency_lease_s=2",  # the killed request's claim is taken over by a retry after 2 s
    ]

    def up() -> bool:
        try:
            return httpx.get(f"{base}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def launch() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(up, timeout=60, what="the platform process")
        return proc

    proc = launch()
    try:
        signup = httpx.post(
            f"{base}/accounts",
            json={"name": "C", "email": f"{uuid.uuid4().hex}@example.com", "role": "creator"},
        )
        creator = signup.json()["apiKey"]
        first = start_persona(base, creator, voice_set.clips[9].mp3_path.read_bytes(), "Before")
        voice = str(first.json()["voiceId"])
        wait_live(base, creator, [voice])
        consumer = httpx.post(
            f"{base}/accounts",
            json={"name": "U", "email": f"{uuid.uuid4().hex}@example.com", "role": "consumer"},
        ).json()
        caller, key = consumer["account"]["id"], consumer["apiKey"]

        # In flight at the kill: a persona whose clone the provider is slow to make, and a trickling TTS stream.
        solo_emulator.admin(
            "faults", {"chunk_delay_ms": 400, "latency_ms": 1500, "path_prefix": "/v1/audio/"}
        )
        created = start_persona(
            base, creator, voice_set.clips[10].mp3_path.read_bytes(), "During", "voices-k2"
        )
        assert created.status_code == 202, created.text
        shim = RunningPlatform.__new__(RunningPlatform)
        shim.base_url = base
        stream: list[Heard] = []
        audio_started = threading.Event()

        def speak_until_killed() -> None:
            try:
                stream.append(
                    speak(shim, key, voice, LONG_TEXT, idempotency_key="tts-k1", on_audio=audio_started.set)
                )
            except Exception as exc:  # the server died under the caller: record what broke, never raise here
                stream.append(Heard(0, code=type(exc).__name__, broken=type(exc).__name__))

        speaking = threading.Thread(target=speak_until_killed, daemon=True)
        speaking.start()
        # Kill only once the stream is under way: the relay (and its hold) exist, the audio is not all sent.
        assert audio_started.wait(timeout=30), f"the TTS stream never started: {stream}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        speaking.join(timeout=30)
        solo_emulator.admin("reset", {})
        assert stream and not stream[0].ok, stream  # the caller saw the stream break

        proc = launch()
        replay = start_persona(
            base, creator, voice_set.clips[10].mp3_path.read_bytes(), "During", "voices-k2"
        )
        assert replay.status_code == 202 and replay.json()["voiceId"] == created.json()["voiceId"], (
            replay.text
        )
        wait_live(base, creator, [voice, str(created.json()["voiceId"])])
        again = speak(shim, key, voice, LONG_TEXT, idempotency_key="tts-k1")  # the same request, retried
        matrix_row.result = (
            f"retry with its key → {again}; stream cut ({stream[0].broken}); "
            "persona create replayed → one persona, live"
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    sessions = session_factory(make_engine(DatabaseSettings(url=f"sqlite:///{tmp_path}/voxpersona.db")))
    with sessions() as session:
        personas = session.scalar(select(func.count()).select_from(Persona).where(Persona.name == "During"))
    assert personas == 1
    # The cut stream was never captured (the process died first); the retry, if served, is billed once.
    matrix_row.check(sessions, seen_ok=int(again.ok), callers=[caller], emulator=solo_emulator)
    assert again.ok, again  # the killed request's claim outlived its lease: the retry ran it again


class RestartingEncoder:
    """The encoder service as the platform sees it while it restarts: `down_calls` calls refused, then served
    by the real encoder (RemoteEmbedder's client side, on an event loop of its own)."""

    def __init__(self, real: Embedder, down_calls: int) -> None:
        self.real, self.down_calls, self.calls = real, down_calls, 0

    async def embed(self, clips: list[np.ndarray]) -> list[dict[str, object]]:
        self.calls += 1
        if self.calls <= self.down_calls:
            raise ConnectionRefusedError("encoder service restarting")
        seconds = len(clips[0]) / 16000
        clip = AudioClip(clips[0], 16000, seconds, "wav", 16000, 1, seconds, "", "", seconds)
        e = await self.real.aembed(clip)
        return [{"vector": e.vector.tolist(), "dim": e.dim, "hash": e.hash, "encoder": e.encoder,
                 "version": e.version, "pretrained": e.pretrained}]  # fmt: skip


@pytest.mark.slow
def test_an_encoder_restart_during_the_embed_step_is_retried_and_registers_once(
    solo_emulator: EmulatorProcess, voice_set: VoiceSet, tmp_path: Path, matrix_row: MatrixRow
) -> None:
    matrix_row.fault = "encoder service restarted during the embed step"
    # A platform of its own, with the default provider read timeout: the shared one's 1 s is too short for a
    # clone, and this fault is the encoder's, not the provider's.
    running = start_platform(fault_overrides(tmp_path / "data", solo_emulator))
    pipeline = running.platform.pipeline
    loop = asyncio.new_event_loop()
    looping = threading.Thread(target=loop.run_forever, daemon=True)
    looping.start()
    encoder = RestartingEncoder(pipeline.embedder, down_calls=4)  # more than one RemoteEmbedder call retries
    original, pipeline.embedder = pipeline.embedder, RemoteEmbedder(encoder.embed, loop)
    try:
        _, creator = running.sign_up("creator")
        created = start_persona(running.base_url, creator, voice_set.clips[11].mp3_path.read_bytes(), "Enc")
        voice = str(created.json()["voiceId"])
        wait_live(running.base_url, creator, [voice])
        assert encoder.calls > 4
        matrix_row.result = f"persona live after {encoder.calls - 1} refused encoder calls (step retried)"
        with running.platform.sessions() as session:
            intents = session.scalar(
                select(func.count())
                .select_from(OutboxItem)
                .where(OutboxItem.intent_key == f"register:{voice}")
            )
        assert intents == 1
        matrix_row.check(running, seen_ok=0, callers=[], emulator=solo_emulator)
    finally:
        pipeline.embedder = original
        loop.call_soon_threadsafe(loop.stop)
        looping.join(timeout=10)
        running.stop()
