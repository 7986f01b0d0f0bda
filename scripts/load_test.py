"""A bounded mixed workload from N concurrent clients on loopback: throughput, latency percentiles per endpoint,
error rate, and the platform's usage rows against the clients' own count of successful speech calls.

    .venv/bin/python -m scripts.load_test [--clients 8] [--duration 60] [--json var/reliability/load.json]
                                          [--base-url URL] [--args "db=postgres queue=redis"]

Without --base-url it starts the platform as `make run ARGS="<args>"` does (scripts/platform.py: the StepFun
emulator at the configured tier, `bentoml serve` with the encoder service, the dev chain, the front end) on free
loopback ports, a temporary data_dir, a fresh PostgreSQL schema and its own Redis queue name (as the tests
isolate them: bentos.devkit.harness.pg_schema), so usage starts at zero; it stops everything afterwards.

Each client signs up (a few as creators), browses (GET /voices, /voices/{id}, /v1/limits, /voices/{id}/quote),
speaks (POST /tts; some calls carry an Idempotency-Key and are deliberately retried, sequentially or as a
concurrent duplicate: a retry must replay, never bill twice), and each creator makes one persona from a
generated voice (POST /files, POST /voices, GET /jobs/{id} until live). Chat is not exercised: the platform has
no chat route yet (the run checks /openapi.json and says so).

A 429 carrying Retry-After (the provider tier, or a caller's share of it, is in use) is counted apart, neither
as an error nor as a 5xx; 409 `idempotency_in_progress` answering a concurrent duplicate is expected too.
Errors are 5xx, transport failures and any other 4xx. /tts idle p99 (one client, sequential) is measured before
the load, so "p99 of /tts under load ≤ 2× idle p99" can be judged. Prints tables; writes the figures as JSON.
A benchmark: it reports, it asserts nothing (tests/reliability/test_load.py asserts the invariants).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_JSON = REPO / "var" / "reliability" / "load.json"
DEFAULT_ARGS = "db=postgres queue=redis"
CONSENT = {"attested": True, "statement": "This is my own voice and I consent to its use."}
START_TIMEOUT_S = 600.0  # the first start may install anvil and warm the encoder on two busy cores
PIPELINE_GRACE_S = 120.0  # how long a persona started during the load may take to go live after it
IDLE_CALLS = 20
DEFAULT_TRIAL_CREDIT = 1_000_000_000  # ¥1,000 per account: clone fees and minutes of speech
TEXTS = (
    "Hello there, this is a quick check of the voice.",
    "The weather today is mild with a light breeze from the west.",
    "Thank you for calling, your order has shipped this morning.",
    "Please remember to bring your notebook to the meeting.",
    "Every good story starts with a single sentence.",
)
RUNNING_LINE = "VoxPersona is running"


# ---- what the clients saw ------------------------------------------------------------------------------------


@dataclass
class Sample:
    endpoint: str
    status: int  # 0: no answer (transport error)
    seconds: float
    outcome: str  # ok | rate_limited | expected | error


@dataclass
class Ledger:
    """Every request the clients made during the load window, and what they count as billed calls."""

    samples: list[Sample] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    replays_ok: int = 0
    replay_mismatches: int = 0
    concurrent_duplicates: int = 0
    personas_live: int = 0
    personas_stuck: int = 0
    upload_to_live_s: list[float] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.notes) < 30:
            self.notes.append(text)


@dataclass
class Account:
    id: str
    key: str
    role: str
    # The speech calls it got in full: plain calls counted, keyed ones by their request id `idem:<account>:<key>`
    # (a retry replays, so a key counts once however often it is sent).
    plain_ok: int = 0
    keyed_ok: set[str] = field(default_factory=set)
    # X-Request-Id of the plain calls: routes_speech.py documents it as the metered call's id.
    plain_ids: set[str] = field(default_factory=set)

    @property
    def calls_ok(self) -> int:
        return self.plain_ok + len(self.keyed_ok)


def classify(response: httpx.Response | None, expected: tuple[int, ...]) -> str:
    if response is None:
        return "error"
    status = response.status_code
    if status < 400 or status in expected:
        return "ok" if status < 400 else "expected"
    if status == 429 and response.headers.get("retry-after"):
        return "rate_limited"
    return "error"


class Caller:
    """One client: an httpx.AsyncClient, its account, and the ledger it writes to."""

    def __init__(self, base_url: str, ledger: Ledger, record: bool = True) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(120, connect=10))
        self.ledger = ledger
        self.record = record
        self.account: Account | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.account.key}"} if self.account else {}

    async def call(
        self,
        endpoint: str,
        method: str,
        url: str,
        *,
        expected: tuple[int, ...] = (),
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> tuple[httpx.Response | None, str, float]:
        """One request, its body read in full (streamed audio included) → (response, outcome, seconds)."""
        start = time.perf_counter()
        response: httpx.Response | None = None
        try:
            response = await self.http.request(
                method, url, headers={**self.headers, **(headers or {})}, **kwargs
            )
        except httpx.HTTPError as exc:
            self.ledger.note(f"{endpoint}: {type(exc).__name__}: {exc}")
        seconds = time.perf_counter() - start
        outcome = classify(response, expected)
        if outcome == "error" and response is not None:
            self.ledger.note(f"{endpoint}: {response.status_code} {response.text[:200]}")
        if self.record:
            status = response.status_code if response is not None else 0
            self.ledger.samples.append(Sample(endpoint, status, seconds, outcome))
        return response, outcome, seconds

    async def sign_up(self, role: str) -> Account:
        body: dict[str, Any] = {
            "name": f"Load {role}",
            "email": f"load-{role}-{secrets.token_hex(5)}@example.com",
            "role": role,
        }
        if role == "creator":
            body["payoutWallet"] = "0x" + secrets.token_hex(20)
        r, outcome, _ = await self.call("POST /accounts", "POST", "/accounts", json=body)
        if r is None or outcome != "ok":
            raise RuntimeError(
                f"sign-up failed: {r.status_code if r else 'no answer'} {r.text[:200] if r else ''}"
            )
        data = r.json()
        self.account = Account(data["account"]["id"], data["apiKey"], role)
        return self.account

    async def speak(
        self, voice: str, text: str, key: str | None = None, endpoint: str = "POST /tts"
    ) -> tuple[httpx.Response | None, str, float]:
        """POST /tts; a full success is counted on the account (a key once, however often it is sent)."""
        assert self.account is not None
        headers = {"Idempotency-Key": key} if key else {}
        r, outcome, seconds = await self.call(
            endpoint, "POST", "/tts", json={"voice": voice, "text": text}, headers=headers, expected=(409,)
        )
        if r is not None and outcome == "expected" and _error_code(r) != "idempotency_in_progress":
            outcome = "error"  # only a concurrent duplicate may be answered 409
            self.ledger.note(f"{endpoint}: 409 {r.text[:200]}")
            if self.record:
                self.ledger.samples[-1].outcome = "error"
        if r is not None and outcome == "ok":
            if key:
                self.account.keyed_ok.add(f"idem:{self.account.id}:{key}")
            else:
                self.account.plain_ok += 1
                self.account.plain_ids.add(r.headers.get("x-request-id", ""))
        return r, outcome, seconds

    async def aclose(self) -> None:
        await self.http.aclose()


def _error_code(response: httpx.Response) -> str | None:
    try:
        return str(response.json()["error"]["code"])
    except Exception:
        return None


def _retry_after(response: httpx.Response | None) -> float:
    try:
        return float(response.headers.get("retry-after", "1")) if response is not None else 1.0
    except ValueError:
        return 1.0


# ---- personas --------------------------------------------------------------------------------------------------


def voice_clips(count: int) -> list[bytes]:
    """`count` generated MP3 voices (5–8 s; encoders.voices, the test set): one per persona made."""
    from encoders.voices import DEFAULT_CACHE, make_voices

    clips = make_voices(DEFAULT_CACHE, speakers=6, utterances=3).clips
    return [clips[i % len(clips)].mp3_path.read_bytes() for i in range(count)]


async def make_persona(caller: Caller, audio: bytes, name: str, deadline: float) -> str | None:
    """Upload, create a public persona, poll its job until live (or `deadline`) → its id, None if not live."""
    ledger = caller.ledger
    started = time.perf_counter()
    up, outcome, _ = await caller.call(
        "POST /files", "POST", "/files", files={"file": (f"{name}.mp3", audio, "audio/mpeg")}
    )
    if up is None or outcome != "ok":
        return None
    file_id = up.json()["fileId"]
    # A public persona needs its speaker's verified consent: the creator reads the sentence (here: the same clip).
    challenge, outcome, _ = await caller.call(
        "POST /consent-challenges", "POST", "/consent-challenges", json={"fileId": file_id}
    )
    if challenge is None or outcome != "ok":
        return None
    challenge_id = challenge.json()["challengeId"]
    recorded, outcome, _ = await caller.call(
        "POST /consent-challenges/{id}/recording",
        "POST",
        f"/consent-challenges/{challenge_id}/recording",
        files={"file": (f"{name}-consent.mp3", audio, "audio/mpeg")},
    )
    if recorded is None or outcome != "ok" or not recorded.json()["verified"]:
        return None
    consent = {**CONSENT, "challengeId": challenge_id}
    body = {"fileId": file_id, "name": name, "visibility": "public", "consent": consent}
    created, outcome, _ = await caller.call("POST /voices", "POST", "/voices", json=body)
    if created is None or outcome != "ok":
        return None
    voice_id, job_id = created.json()["voiceId"], created.json()["jobId"]
    while time.monotonic() < deadline:
        job, outcome, _ = await caller.call("GET /jobs/{id}", "GET", f"/jobs/{job_id}")
        if job is not None and outcome == "ok":
            progress = job.json()
            if progress["state"] == "live":
                ledger.personas_live += 1
                ledger.upload_to_live_s.append(time.perf_counter() - started)
                return str(voice_id)
            if progress["status"] == "failed" or progress["state"] == "failed":
                ledger.note(f"persona {voice_id} failed: {progress.get('failure')}")
                ledger.personas_stuck += 1
                return None
        await asyncio.sleep(0.5)  # a client's polling interval, under the deadline above
    ledger.note(f"persona {voice_id} not live in time")
    ledger.personas_stuck += 1
    return None


# ---- the workload ---------------------------------------------------------------------------------------------


@dataclass
class Shared:
    voices: list[str]  # live public personas every client may speak with
    clips: list[bytes]
    stop_at: float  # monotonic: the load window ends
    rng_seed: int


async def browse(caller: Caller, shared: Shared, rng: random.Random) -> str | None:
    """Discover and look at a persona → a voice id to speak with."""
    page, outcome, _ = await caller.call("GET /voices", "GET", "/voices", params={"limit": 20})
    data = page.json()["data"] if page is not None and outcome == "ok" else []
    found = [v["id"] for v in data if v.get("status") == "live"]  # your own personas are listed in any state
    voice = rng.choice(found or shared.voices)
    await caller.call("GET /voices/{id}", "GET", f"/voices/{voice}")
    return voice


async def tts_round(caller: Caller, voice: str, rng: random.Random) -> None:
    """One speech call: plain (60 %), keyed (20 %), keyed + a sequential retry (12 %), keyed + a concurrent
    duplicate (8 %). A retry must replay the first answer's bytes."""
    ledger = caller.ledger
    text = f"{rng.choice(TEXTS)} Number {rng.randrange(10_000)}."
    roll = rng.random()
    if roll < 0.6:
        r, outcome, _ = await caller.speak(voice, text)
    elif roll < 0.92:
        key = f"load-{secrets.token_hex(8)}"
        r, outcome, _ = await caller.speak(voice, text, key)
        if roll >= 0.8 and r is not None and outcome == "ok":
            again, again_outcome, _ = await caller.speak(voice, text, key, endpoint="POST /tts retry")
            if again is not None and again_outcome == "ok":
                if again.headers.get("idempotent-replayed") == "true" and again.content == r.content:
                    ledger.replays_ok += 1
                else:
                    ledger.replay_mismatches += 1
                    ledger.note("a retried key did not replay the first answer")
    else:
        key = f"load-dup-{secrets.token_hex(8)}"
        ledger.concurrent_duplicates += 1
        results = await asyncio.gather(
            caller.speak(voice, text, key), caller.speak(voice, text, key, endpoint="POST /tts retry")
        )
        r, outcome, _ = results[0]
    if r is not None and outcome == "rate_limited":
        await asyncio.sleep(min(_retry_after(r), 2.0))  # a polite client honours Retry-After (capped)


async def run_client(index: int, caller: Caller, shared: Shared, creator: bool) -> None:
    rng = random.Random(shared.rng_seed * 1000 + index)
    await caller.sign_up("creator" if creator else "consumer")
    # A creator makes its persona at a random moment in the first third of the window, alongside its calls.
    create_at = time.monotonic() + rng.uniform(0, max(0.0, shared.stop_at - time.monotonic()) / 3)
    creating: asyncio.Task[str | None] | None = None
    while time.monotonic() < shared.stop_at:
        if creator and creating is None and time.monotonic() >= create_at:
            audio = shared.clips[(index + 1) % len(shared.clips)]
            creating = asyncio.create_task(
                make_persona(caller, audio, f"Load {index}", shared.stop_at + PIPELINE_GRACE_S)
            )
        roll = rng.random()
        if roll < 0.45:
            voice = await browse(caller, shared, rng)
            if voice:
                await tts_round(caller, voice, rng)
        elif roll < 0.65:
            await tts_round(caller, rng.choice(shared.voices), rng)
        elif roll < 0.8:
            await caller.call("GET /v1/limits", "GET", "/v1/limits")
        else:
            voice = rng.choice(shared.voices)
            chars = rng.randrange(1, 500)
            await caller.call(
                "GET /voices/{id}/quote", "GET", f"/voices/{voice}/quote", params={"chars": chars}
            )
    if creating is not None:
        made = await creating
        if made:
            shared.voices.append(made)


async def measure_idle(base_url: str, voice: str, ledger: Ledger, accounts: list[Account]) -> list[float]:
    """/tts latencies of one client calling sequentially on an otherwise idle platform (2 warm-up calls)."""
    caller = Caller(base_url, ledger, record=False)
    try:
        accounts.append(await caller.sign_up("consumer"))
        timings = []
        for i in range(IDLE_CALLS + 2):
            r, outcome, seconds = await caller.speak(voice, f"{TEXTS[i % len(TEXTS)]} Idle {i}.")
            if outcome != "ok":
                ledger.note(f"idle /tts answered {r.status_code if r is not None else 'nothing'}")
                continue
            if i >= 2:
                timings.append(seconds)
        return timings
    finally:
        await caller.aclose()


async def usage_of(base_url: str, account: Account) -> tuple[int, set[str]]:
    """GET /usage of `account` → (calls billed, request ids of the latest 500)."""
    auth = {"Authorization": f"Bearer {account.key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=auth, timeout=60) as http:
        r = await http.get("/usage", params={"limit": 500})
        r.raise_for_status()
        data = r.json()
    return int(data["totals"]["calls"]), {line["requestId"] for line in data["calls"]}


async def run_load(base_url: str, clients: int, duration_s: float, seed: int = 0) -> dict[str, Any]:
    """The whole run against `base_url` → the figures (see main's JSON)."""
    ledger, setup = Ledger(), Ledger()
    accounts: list[Account] = []
    creators = max(1, clients // 4)
    clips = await asyncio.to_thread(voice_clips, creators + 1)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        paths = (await http.get("/openapi.json")).json().get("paths", {})
    chat_routes = sorted(p for p in paths if "chat" in p.lower())

    # A first persona to speak with, made before the clock starts.
    seeder = Caller(base_url, setup, record=False)
    try:
        accounts.append(await seeder.sign_up("creator"))
        seed_voice = await make_persona(seeder, clips[0], "Load seed", time.monotonic() + 300)
    finally:
        await seeder.aclose()
    if seed_voice is None:
        raise RuntimeError(f"the seed persona did not go live: {setup.notes}")

    idle = await measure_idle(base_url, seed_voice, setup, accounts)

    shared = Shared([seed_voice], clips, time.monotonic() + duration_s, seed)
    callers = [Caller(base_url, ledger) for _ in range(clients)]
    started = time.perf_counter()
    try:
        results = await asyncio.gather(
            *(run_client(i, c, shared, creator=i < creators) for i, c in enumerate(callers)),
            return_exceptions=True,
        )
    finally:
        for c in callers:
            await c.aclose()
    elapsed = time.perf_counter() - started
    for result in results:
        if isinstance(result, BaseException):
            ledger.note(f"a client stopped: {type(result).__name__}: {result}")
    accounts += [c.account for c in callers if c.account is not None]

    # The platform's own count against the clients'.
    expected = billed = lost = doubled = 0
    named = headers_seen = 0
    for account in accounts:
        calls, ids = await usage_of(base_url, account)
        headers_seen += len(account.plain_ids)
        named += len(account.plain_ids & ids)
        expected += account.calls_ok
        billed += calls
        if calls > 500:  # more rows than one page lists: compare the counts only
            lost += max(0, account.calls_ok - calls)
            doubled += max(0, calls - account.calls_ok)
            continue
        # Keyed calls by id; plain calls by count (their X-Request-Id is not the metered id: see the notes).
        keyed_billed = {i for i in ids if i.startswith("idem:")}
        plain_billed = calls - len(keyed_billed)
        lost += len(account.keyed_ok - keyed_billed) + max(0, account.plain_ok - plain_billed)
        doubled += len(keyed_billed - account.keyed_ok) + max(0, plain_billed - account.plain_ok)
    if headers_seen and named < headers_seen:
        ledger.note(
            f"X-Request-Id of POST /tts names the metered call (GET /usage requestId) for {named} of "
            f"{headers_seen} plain calls (routes_speech.py documents it does)"
        )
    return summarize(
        ledger, clients, duration_s, elapsed, idle, (expected, billed, lost, doubled), chat_routes, setup
    )


def _percentiles(seconds: list[float]) -> dict[str, float | None]:
    if not seconds:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None}
    arr = np.asarray(seconds) * 1000
    return {f"p{q}_ms": round(float(np.percentile(arr, q)), 1) for q in (50, 95, 99)}


def summarize(
    ledger: Ledger,
    clients: int,
    duration_s: float,
    elapsed: float,
    idle: list[float],
    usage: tuple[int, int, int, int],
    chat_routes: list[str],
    setup: Ledger,
) -> dict[str, Any]:
    endpoints: dict[str, dict[str, Any]] = {}
    for name in sorted({s.endpoint for s in ledger.samples}):
        mine = [s for s in ledger.samples if s.endpoint == name]
        answered = [s.seconds for s in mine if s.outcome == "ok"]  # refusals (429, 409) are timed apart
        endpoints[name] = {
            "count": len(mine),
            **_percentiles(answered),
            "errors": sum(s.outcome == "error" for s in mine),
            "rate_limited": sum(s.outcome == "rate_limited" for s in mine),
            "expected_4xx": sum(s.outcome == "expected" for s in mine),
        }
    requests = len(ledger.samples)
    errors = sum(s.outcome == "error" for s in ledger.samples)
    tts_load = [s.seconds for s in ledger.samples if s.endpoint == "POST /tts" and s.outcome == "ok"]
    expected, billed, lost, doubled = usage
    return {
        "clients": clients,
        "duration_s": round(elapsed, 1),
        "duration_asked_s": duration_s,
        "requests": requests,
        "throughput_rps": round(requests / elapsed, 2) if elapsed else 0.0,
        "error_rate": round(errors / requests, 4) if requests else 0.0,
        "errors": errors,
        "server_5xx": sum(s.status >= 500 for s in ledger.samples),
        "rate_limited_429": sum(s.outcome == "rate_limited" for s in ledger.samples),
        "endpoints": endpoints,
        "tts_idle_calls": len(idle),
        "tts_idle_p50_ms": _percentiles(idle)["p50_ms"],
        "tts_idle_p99_ms": _percentiles(idle)["p99_ms"],
        "tts_load_p50_ms": _percentiles(tts_load)["p50_ms"],
        "tts_load_p99_ms": _percentiles(tts_load)["p99_ms"],
        "usage_expected": expected,
        "usage_billed": billed,
        "lost_usage": lost,
        "doubled_usage": doubled,
        "replays_ok": ledger.replays_ok,
        "replay_mismatches": ledger.replay_mismatches,
        "concurrent_duplicates": ledger.concurrent_duplicates,
        "personas_live": ledger.personas_live,
        "personas_stuck": ledger.personas_stuck,
        "upload_to_live_s": [round(s, 1) for s in ledger.upload_to_live_s],
        "chat": "exercised" if chat_routes else "not exercised: the platform has no chat route yet",
        "notes": ledger.notes + [f"setup: {n}" for n in setup.notes],
    }


# ---- starting the platform as `make run` does ----------------------------------------------------------------


def _chosen(overrides: list[str], group: str) -> str | None:
    for o in overrides:
        name, _, value = o.partition("=")
        if name.lstrip("+~") == group:
            return value
    return None


@contextlib.contextmanager
def launched_platform(
    args: list[str], workdir: Path, trial_credit: int = 0
) -> Iterator[tuple[str, dict[str, Any]]]:
    """`python -m scripts.run <args>` (what `make run ARGS=...` runs) on free ports, a fresh PostgreSQL schema
    (db=postgres) and its own Redis queue name (queue=redis) → (base URL, what was started)."""
    from hydra.utils import instantiate

    from bentos.core.config import load_config
    from bentos.devkit.harness import pg_schema
    from bentos.devkit.processes import free_port, terminate, wait_port_closed

    postgres = _chosen(args, "db") == "postgres"
    redis_name = f"vp-load-{secrets.token_hex(4)}" if _chosen(args, "queue") == "redis" else None
    with pg_schema() if postgres else contextlib.nullcontext("") as db_url:
        port = free_port()
        overrides = [
            *args,
            f"data_dir={workdir / 'data'}",
            f"server.port={port}",
            f"server.frontend_port={free_port()}",
            f"server.public_base_url=http://127.0.0.1:{port}",
        ]
        if _chosen(args, "provider") in (None, "emulator"):
            overrides.append(f"provider.emulator.port={free_port()}")
        if _chosen(args, "chain") in (None, "anvil"):
            overrides.append(f"chain.port={free_port()}")
        if db_url:
            overrides.append(f"db.url='{db_url}'")
        if redis_name:
            overrides.append(f"queue.name={redis_name}")
        cfg = load_config([*overrides, *([] if _chosen(args, "chain") else ["chain=anvil"])])
        if trial_credit and "trial_credit" in cfg.billing and _chosen(args, "billing.trial_credit") is None:
            # Sign-up credit enough for a creator's clone fee and a client's minute of speech (no top-up
            # route to call): a refused 402 would measure the wallet, not the platform.
            overrides.append(f"billing.trial_credit={trial_credit}")
        tier = instantiate(cfg.provider).tier
        info = {
            "args": " ".join(args),
            "trial_credit": trial_credit if "trial_credit" in cfg.billing else None,
            "tier": None if tier is None else {"rpm": tier.rpm, "concurrency": tier.concurrency,
                                               "caller_share": tier.caller_share},
        }  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k != "STEP_API_KEY"}  # never load the real provider
        env.update({"PYTHONUNBUFFERED": "1", "BENTOML_HOME": str(workdir / "bentoml")})
        log_path = workdir / "platform.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "scripts.run", *overrides],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while RUNNING_LINE not in log_path.read_text(errors="replace"):
                if proc.poll() is not None:
                    raise RuntimeError(f"the platform exited with {proc.returncode}: {_tail(log_path)}")
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"the platform was not up in {START_TIMEOUT_S:.0f} s: {_tail(log_path)}"
                    )
                time.sleep(0.5)  # polling the runner's log under the deadline above
            yield base, {**info, "log": str(log_path)}
        finally:
            # SIGTERM lets scripts/platform.py stop what it started (front end, bentoml, emulator, anvil).
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            terminate(proc, timeout_s=90)
            wait_port_closed("127.0.0.1", port, timeout_s=30)
            if redis_name:
                _drop_redis_keys(redis_name)


def _drop_redis_keys(name: str) -> None:
    import redis

    client = redis.Redis.from_url(os.environ.get("VOXPERSONA_REDIS_URL", "redis://127.0.0.1:6379/0"))
    for key in client.scan_iter(f"*{name}*"):
        client.delete(key)


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:]


# ---- output ---------------------------------------------------------------------------------------------------


def print_report(result: dict[str, Any]) -> None:
    from scripts.bench_common import print_table

    rows = [
        {
            "endpoint": name,
            "count": e["count"],
            "p50_ms": e["p50_ms"],
            "p95_ms": e["p95_ms"],
            "p99_ms": e["p99_ms"],
            "errors": e["errors"],
            "429": e["rate_limited"],
            "409 dup": e["expected_4xx"],
        }
        for name, e in result["endpoints"].items()
    ]
    title = (
        f"load: {result['clients']} clients × {result['duration_s']} s, {result['requests']} requests, "
        f"{result['throughput_rps']} req/s, error rate {result['error_rate']:.2%}, "
        f"{result['server_5xx']} 5xx, {result['rate_limited_429']} 429"
    )
    print_table(title, rows)
    idle, load = result["tts_idle_p99_ms"], result["tts_load_p99_ms"]
    ratio = f"{load / idle:.2f}×" if idle and load else "n/a"
    print(
        f"\n/tts p99 idle {idle} ms ({result['tts_idle_calls']} sequential calls) vs under load {load} ms: {ratio}"
    )
    print(
        f"usage: {result['usage_expected']} successful calls counted by the clients, {result['usage_billed']} "
        f"billed; lost {result['lost_usage']}, doubled {result['doubled_usage']}; replays ok "
        f"{result['replays_ok']}, mismatched {result['replay_mismatches']}; concurrent duplicates "
        f"{result['concurrent_duplicates']}"
    )
    print(
        f"personas made during the load: {result['personas_live']} live, {result['personas_stuck']} not live "
        f"(upload→live s: {result['upload_to_live_s']}); chat: {result['chat']}"
    )
    if result.get("tier"):
        print(f"provider tier: {result['tier']}")
    for note in result["notes"][:10]:
        print(f"  note: {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where the figures go")
    parser.add_argument("--base-url", help="a running platform (default: start one as make run does)")
    parser.add_argument("--args", default=DEFAULT_ARGS, help="make run's ARGS for the platform started")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--trial-credit",
        type=int,
        default=DEFAULT_TRIAL_CREDIT,
        help="micro-CNY credited at sign-up on the platform started here (billing.trial_credit)",
    )
    opts = parser.parse_args(argv)
    # SIGTERM (a supervisor's timeout) unwinds like Ctrl-C: the platform started here is stopped, not orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with contextlib.ExitStack() as stack:
        if opts.base_url:
            base, info = opts.base_url.rstrip("/"), {"args": None, "tier": None}
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vp-load-")))
            print(
                f'starting the platform: make run ARGS="{opts.args}" (free ports, fresh schema)', flush=True
            )
            base, info = stack.enter_context(launched_platform(opts.args.split(), workdir, opts.trial_credit))
            print(f"platform up at {base}; tier {info['tier']}", flush=True)
        result = asyncio.run(run_load(base, opts.clients, opts.duration, opts.seed))
    result = {
        **result,
        "base_url": base,
        "platform_args": info["args"],
        "tier": info["tier"],
        "trial_credit": info.get("trial_credit"),
    }
    print_report(result)
    opts.json.parent.mkdir(parents=True, exist_ok=True)
    opts.json.write_text(json.dumps(result, indent=2))
    print(f"\nresults written to {opts.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
