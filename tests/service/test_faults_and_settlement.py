"""Provider faults end to end, creator settlement paid on chain, and a killed platform resuming its pipeline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bentos.chain.outbox import OutboxItem
from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.harness import EMULATOR_KEY, RunningPlatform, platform_overrides, wait_for
from bentos.devkit.processes import free_port
from bentos.store.models import Persona, UsageEvent
from encoders.voices import VoiceSet
from tests.service.test_end_to_end import create_live_persona

CONSENT = {"attested": True, "statement": "This is my own voice and I consent."}
REPO = Path(__file__).resolve().parents[2]


def _create(running: RunningPlatform, key: str, audio: bytes) -> str:
    client = running.client(key)
    file_id = client.post("/files", files={"file": ("v.mp3", audio)}).json()["fileId"]
    r = client.post("/voices", json={"fileId": file_id, "name": "Faulty", "consent": CONSENT})
    assert r.status_code == 202, r.text
    return str(r.json()["voiceId"])


def _final(running: RunningPlatform, key: str, voice_id: str) -> dict[str, Any]:
    client = running.client(key)

    def done() -> dict[str, Any] | None:
        d = client.get(f"/voices/{voice_id}").json()
        return d if d["status"] in ("live", "failed") else None

    return dict(wait_for(done, timeout=120, what="the pipeline to finish"))


def test_invalid_provider_key_fails_the_persona_clearly_and_degrades_health(
    platform_server: RunningPlatform, emulator: EmulatorProcess, voice_set: VoiceSet
) -> None:
    _, key = platform_server.sign_up("creator")
    emulator.admin("keys", {"key": EMULATOR_KEY, "state": "invalid"})
    try:
        detail = _final(
            platform_server, key, _create(platform_server, key, voice_set.clips[15].mp3_path.read_bytes())
        )
        health = platform_server.client().get("/health").json()
    finally:
        emulator.admin("keys", {"key": EMULATOR_KEY, "state": "valid"})
    assert detail["status"] == "failed"
    assert detail["failure"]["code"] == "provider_misconfigured" and detail["failure"]["retryable"] is False
    assert detail["failure"]["step"] == "registered"  # it failed at the clone, after the chain intent
    assert EMULATOR_KEY not in str(detail)
    assert health["status"] == "degraded" and health["provider"]["state"] == "degraded"
    assert EMULATOR_KEY not in str(health)


def test_a_burst_of_429s_is_retried_and_the_persona_goes_live(
    platform_server: RunningPlatform, emulator: EmulatorProcess, voice_set: VoiceSet
) -> None:
    _, key = platform_server.sign_up("creator")
    before = emulator.admin("stats")
    emulator.admin(
        "faults",
        {
            "fail_next": 5,
            "status": 429,
            "type": "rate_limit_exceeded",
            "retry_after": 0.1,
            "path_prefix": "/v1/audio/voices",
        },
    )
    detail = _final(
        platform_server, key, _create(platform_server, key, voice_set.clips[16].mp3_path.read_bytes())
    )
    assert detail["status"] == "live", detail["failure"]
    after = emulator.admin("stats")
    assert after != before  # the emulator saw the retried calls
    with platform_server.platform.sessions() as session:
        persona = session.get(Persona, detail["id"])
        assert persona is not None
        # One clone is paid for; the emulator outlives a test module, so a variant re-using the audio gets
        # StepFun's `duplicated` answer instead — same voice, nothing billed.
        assert persona.clones_billed == (0 if persona.clone_duplicated else 1)


def test_creator_settles_earnings_and_is_paid_on_chain(
    platform_server: RunningPlatform, voice_set: VoiceSet
) -> None:
    chain = platform_server.platform.chain
    wallet = "0x" + os.urandom(20).hex()
    _, creator_key = platform_server.sign_up("creator", wallet)
    persona = create_live_persona(platform_server, creator_key, voice_set.clips[17].mp3_path.read_bytes())
    _, consumer_key = platform_server.sign_up("consumer")
    consumer, creator = platform_server.client(consumer_key), platform_server.client(creator_key)
    for text in ("First paid sentence.", "A second, somewhat longer paid sentence for the meter."):
        assert consumer.post("/tts", json={"voice": persona["id"], "text": text}).status_code == 200
    earnings = creator.get("/usage").json()["earnings"][0]

    settled = creator.post("/settlements")
    assert settled.status_code == 201, settled.text
    s = settled.json()
    assert s["creatorAmount"] == earnings["creatorShare"] == earnings["unsettled"]
    assert s["creatorAmount"] + s["platformAmount"] == s["amount"] == earnings["amount"]
    confirmed = wait_for(
        lambda: (r := creator.get(f"/settlements/{s['settlementId']}").json())["status"] == "confirmed" and r,
        timeout=60,
        what="the settlement to confirm",
    )
    assert confirmed["txHash"].startswith("0x")
    assert (
        chain.balance_of(wallet)
        == int(s["weiAmount"])
        == s["creatorAmount"] * platform_server.platform.prices.wei_per_micro
    )
    record = chain.settlement(s["settlementId"])
    assert record is not None and record.usage_digest == s["usageDigest"]

    again = creator.post("/settlements")
    assert again.status_code == 400 and again.json()["error"]["code"] == "nothing_to_settle"
    assert creator.get("/usage").json()["earnings"][0]["unsettled"] == 0
    with platform_server.platform.sessions() as session:
        unsettled = session.scalar(
            select(func.count())
            .select_from(UsageEvent)
            .where(UsageEvent.persona_id == persona["id"], UsageEvent.settlement_id.is_(None))
        )
    assert unsettled == 0


def test_settling_needs_a_payout_wallet(platform_server: RunningPlatform) -> None:
    _, key = platform_server.sign_up("creator")
    r = platform_server.client(key).post("/settlements")
    assert r.status_code == 422 and r.json()["error"]["code"] == "payout_wallet_missing"


@pytest.mark.slow  # a real SIGKILL and restart, ~30 s: CI's slow pass runs it
def test_killed_platform_resumes_the_pipeline_without_a_second_clone_or_registration(
    emulator: EmulatorProcess, voice_set: VoiceSet, tmp_path: Path
) -> None:
    port = free_port()
    overrides = platform_overrides(tmp_path, emulator)
    cmd = [sys.executable, "-m", "bentos.devkit.platform_proc", str(port), *overrides]

    def launch() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: _up(port), timeout=60, what="the platform process")
        return proc

    proc = launch()
    base = f"http://127.0.0.1:{port}"
    try:
        signup = httpx.post(
            f"{base}/accounts", json={"name": "K", "email": "kill@example.com", "role": "creator"}
        )
        key = signup.json()["apiKey"]
        auth = {"Authorization": f"Bearer {key}"}
        # Make the clone slow, so the kill lands while StepFun is cloning.
        emulator.admin("faults", {"latency_ms": 4000, "path_prefix": "/v1/audio/voices"})
        file_id = httpx.post(
            f"{base}/files",
            headers=auth,
            files={"file": ("v.mp3", voice_set.clips[4].mp3_path.read_bytes())},
            timeout=60,
        ).json()["fileId"]
        voice_id = httpx.post(
            f"{base}/voices",
            headers=auth,
            json={"fileId": file_id, "name": "Killed", "consent": CONSENT},
            timeout=60,
        ).json()["voiceId"]
        wait_for(
            lambda: httpx.get(f"{base}/voices/{voice_id}", headers=auth).json()["status"] == "registered",
            timeout=60,
            what="the clone step to start",
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        emulator.admin("reset", {})
        proc = launch()
        wait_for(
            lambda: httpx.get(f"{base}/voices/{voice_id}", headers=auth).json()["status"] == "live",
            timeout=120,
            what="the resumed pipeline to finish",
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    from bentos.store.db import DatabaseSettings, make_engine, session_factory

    sessions = session_factory(make_engine(DatabaseSettings(url=f"sqlite:///{tmp_path}/voxpersona.db")))
    with sessions() as session:
        persona = session.get(Persona, voice_id)
        assert persona is not None and persona.state == "live"
        # The clone the kill interrupted came back as `duplicated` (or never reached the provider): one voice,
        # paid once, and counted once.
        assert persona.clones_billed == 1
        registrations = session.scalar(
            select(func.count())
            .select_from(OutboxItem)
            .where(OutboxItem.intent_key == f"register:{voice_id}")
        )
        assert registrations == 1


def _up(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
