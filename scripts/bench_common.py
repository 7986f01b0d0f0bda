"""Shared benchmark plumbing: thread pinning, percentiles, a printed table and a JSON results file; and for the
platform benchmarks the emulator, sign-up, personas, `bentoml serve`, process-tree memory and provider calls
timed through the StepFun client's public `transport` argument."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from platform import platform as machine_description
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import psutil

from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.processes import bentoml_serve, free_port, terminate, wait_port_closed, wait_ready
from bentos.stepfun.client import AsyncStepFunClient, StepFunClient
from bentos.stepfun.settings import ProviderSettings
from encoders.voices import VoiceClip, make_voices

if TYPE_CHECKING:
    from bentos.core.platform import Platform

RESULTS_DIR = Path(__file__).resolve().parent.parent / "bench_results"


def pin_threads(n: int) -> None:
    """Pin torch, BLAS and OpenMP to n threads so figures compare across runs (and child processes too)."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    threadpool_limits(n)  # numpy's OpenBLAS is loaded already: the environment variable alone comes too late
    os.environ["OMP_NUM_THREADS"] = str(n)


def summarize_ms(samples_s: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(samples_s, dtype=np.float64) * 1000
    return {
        "n": len(arr),
        "median_ms": round(float(np.median(arr)), 2),
        "p95_ms": round(float(np.percentile(arr, 95)), 2),
        "mean_ms": round(float(arr.mean()), 2),
    }


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    cols = list(dict.fromkeys(c for r in rows for c in r))  # every column any row has, in first-seen order
    widths = [max(len(str(c)), *(len(str(r.get(c, ""))) for r in rows)) for c in cols]
    print(f"\n{title}")
    print("  ".join(str(c).ljust(w) for c, w in zip(cols, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(str(r.get(c, "")).ljust(w) for c, w in zip(cols, widths, strict=True)))


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("unknown" where there is none)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "unknown"
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown")


def write_results(name: str, payload: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    meta = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_description(),
        "cpu": cpu_model(),  # speed figures only compare on the same CPU
        "cpus": os.cpu_count(),
    }
    path.write_text(json.dumps({"meta": meta, **payload}, indent=2))
    print(f"\nresults written to {path}")
    return path


# ---- the platform benchmarks (bench_pipeline, bench_tts, bench_embed_service, bench_memory) ----------------

DIRECT_KEY = "bench-direct-key"  # a second emulator tenant: its clones are fresh, never `duplicated`
WARM_KEY = "bench-warm-key"
SAMPLE_TEXT = "Hello! This is my voice on VoxPersona."  # bentos.core.pipeline.DEFAULT_SAMPLE_TEXT
CONSENT = {"attested": True, "statement": "This is my own voice."}
PIPELINE_TIMEOUT_S = 180.0
REPO = RESULTS_DIR.parent


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def pct(samples_s: Sequence[float], q: float) -> float:
    """The q-th percentile of durations in seconds, in ms."""
    return ms(float(np.percentile(np.asarray(samples_s), q)))


def add_platform_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every platform benchmark takes."""
    parser.add_argument("--encoder", choices=("seeded", "ge2e", "fusion"), default="seeded")
    parser.add_argument("--threads", type=int, default=1, help="torch/BLAS threads, here and in the services")
    parser.add_argument("--skip-bentoml", action="store_true", help="the in-process platform only")


def results_name(name: str, encoder: str) -> str:
    """bench_results/<name>.json for the default encoder, <name>-<encoder>.json for another."""
    return name if encoder == "seeded" else f"{name}-{encoder}"


def bench_clips(count: int) -> list[VoiceClip]:
    """At least `count` generated clips: 6 or more speakers × 3 utterances, each speaker's together."""
    return make_voices(speakers=max(6, -(-count // 3)), utterances=3).clips


@contextmanager
def bench_emulator(state_dir: Path, platform_key: str, warm_clip: VoiceClip) -> Iterator[EmulatorProcess]:
    """A loopback StepFun emulator with no rate or concurrency limit, tenants `platform_key` (the platform's),
    DIRECT_KEY (direct calls) and WARM_KEY, whose one clone warms the voice engine before anything is timed."""
    with EmulatorProcess(
        state_dir, api_keys=(platform_key, DIRECT_KEY, WARM_KEY), rpm=0, concurrency=0, max_candidates=4
    ) as emu:
        warm = ProviderSettings(base_url=emu.base_url, api_key=WARM_KEY)  # type: ignore[arg-type]
        with StepFunClient(warm) as client:
            client.create_voice(client.upload_file(warm_clip.mp3_path.read_bytes(), "warm.mp3").id)
        yield emu


def sign_up(base: str, role: str) -> str:
    """A fresh account on the platform at `base` → its API key."""
    r = httpx.post(
        f"{base}/accounts",
        json={"name": f"Bench {role}", "role": role, "email": f"bench-{role}-{time.time_ns()}@example.com"},
        timeout=30,
    )
    if r.status_code != 201:
        raise RuntimeError(f"POST /accounts: {r.status_code} {r.text[:300]}")
    return str(r.json()["apiKey"])


def create_persona(client: httpx.Client, clip: VoiceClip, name: str) -> tuple[str, float, float]:
    """Upload + POST /voices → (persona id, t upload started, t voices answered) in perf_counter seconds."""
    t0 = time.perf_counter()
    up = client.post("/files", files={"file": (clip.mp3_path.name, clip.mp3_path.read_bytes(), "audio/mpeg")})
    if up.status_code not in (200, 201):
        raise RuntimeError(f"POST /files: {up.status_code} {up.text[:300]}")
    file_id = up.json()["fileId"]
    # A public persona needs its speaker's verified consent: the creator reads the sentence (here: the same clip).
    challenge_id = client.post("/consent-challenges", json={"fileId": file_id}).json()["challengeId"]
    recording = {"file": (clip.mp3_path.name, clip.mp3_path.read_bytes(), "audio/mpeg")}
    verified = client.post(f"/consent-challenges/{challenge_id}/recording", files=recording)
    if verified.status_code != 200 or not verified.json()["verified"]:
        raise RuntimeError(f"consent recording: {verified.status_code} {verified.text[:300]}")
    consent = {**CONSENT, "challengeId": challenge_id}
    body = {"fileId": file_id, "name": name, "visibility": "public", "consent": consent}
    created = client.post("/voices", json=body)
    if created.status_code != 202:
        raise RuntimeError(f"POST /voices: {created.status_code} {created.text[:300]}")
    return str(created.json()["voiceId"]), t0, time.perf_counter()


def wait_live(client: httpx.Client, voice_id: str, interval_s: float = 0.02) -> dict[str, float]:
    """Poll GET /voices/{id} until live → when each state was first seen (perf_counter seconds)."""
    seen: dict[str, float] = {}
    deadline = time.perf_counter() + PIPELINE_TIMEOUT_S
    while time.perf_counter() < deadline:
        detail = client.get(f"/voices/{voice_id}").json()
        seen.setdefault(detail["status"], time.perf_counter())
        if detail["status"] == "live":
            return seen
        if detail["status"] == "failed":
            raise RuntimeError(f"persona {voice_id} failed: {detail.get('failure')}")
        time.sleep(interval_s)
    raise TimeoutError(f"persona {voice_id} not live within {PIPELINE_TIMEOUT_S}s")


def live_persona(base: str, key: str, clip: VoiceClip, name: str) -> str:
    """A persona of `key`'s account made from `clip`, once it is live → its id."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        voice_id = create_persona(client, clip, name)[0]
        wait_live(client, voice_id)
    return voice_id


def upload_files(base: str, key: str, clips: Sequence[VoiceClip]) -> list[str]:
    """POST /files each clip's WAV → the file ids."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        ids = []
        for clip in clips:
            r = client.post(
                "/files", files={"file": (clip.wav_path.name, clip.wav_path.read_bytes(), "audio/wav")}
            )
            if r.status_code not in (200, 201):
                raise RuntimeError(f"POST /files: {r.status_code} {r.text[:300]}")
            ids.append(str(r.json()["fileId"]))
    return ids


def metric_sum_count(base: str, metric: str) -> tuple[float, float]:
    """(Σ, count) of a Prometheus histogram on the platform's /metrics (all label sets together)."""
    total = count = 0.0
    for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
        name, _, value = line.rpartition(" ")
        if name.split("{")[0] == f"{metric}_sum":
            total += float(value)
        elif name.split("{")[0] == f"{metric}_count":
            count += float(value)
    return total, count


@contextmanager
def bentoml_platform(overrides: Sequence[str], data_dir: Path, threads: int) -> Iterator[tuple[str, int]]:
    """`bentoml serve` the PersonaPlatform (and its SpeakerEncoder dependency) with Hydra `overrides` on a free
    loopback port → (base URL, supervisor pid)."""
    port = free_port()
    env = {
        **os.environ,
        "VOXPERSONA_OVERRIDES": " ".join(overrides),
        "OMP_NUM_THREADS": str(threads),
        "PYTHONUNBUFFERED": "1",
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "bentoml.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            bentoml_serve("bentos.platform_service:PersonaPlatform", "127.0.0.1", port),
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    children: list[psutil.Process] = []
    try:
        try:
            wait_ready(f"{base}/readyz", proc, timeout_s=300, what="bentoml serve")
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}: {log_path.read_text()[-3000:]}") from None
        children = psutil.Process(proc.pid).children(recursive=True)
        yield base, proc.pid
    finally:
        # SIGTERM to the supervisor only (its workers run in their own sessions and exit with it), then wait
        # for the port to close; a worker of ours still alive after that is stopped by its own pid.
        terminate(proc, timeout_s=30)
        wait_port_closed("127.0.0.1", port, timeout_s=30)
        for child in children:
            if child.is_running():
                child.terminate()


def tree_memory(pid: int) -> dict[str, Any]:
    """RSS and USS (memory only this process holds) of `pid` and its descendants, per process and summed."""
    root = psutil.Process(pid)
    rows = []
    for proc in [root, *root.children(recursive=True)]:
        try:
            info = proc.memory_full_info()
            argv = proc.cmdline()
        except psutil.Error:
            continue
        if proc.pid == pid:
            label = "supervisor"
        elif "--service-name" in argv[:-1]:
            label = argv[argv.index("--service-name") + 1]
        else:
            label = " ".join(argv)[-60:]
        rows.append(
            {
                "pid": proc.pid,
                "role": label,
                "rss_mb": round(info.rss / 2**20, 1),
                "uss_mb": round(info.uss / 2**20, 1),
            }
        )
    return {
        "processes": rows,
        "rss_mb": round(sum(r["rss_mb"] for r in rows), 1),
        "uss_mb": round(sum(r["uss_mb"] for r in rows), 1),
    }


# ---- provider calls timed from outside the platform ----------------------------------------------------------

# (method, path under the provider's /v1) → the client operation that sends it.
_OPERATIONS = {
    ("POST", "/files"): "upload_file",
    ("GET", "/files"): "list_files",
    ("POST", "/audio/voices"): "create_voice",
    ("POST", "/audio/voices/preview"): "preview_voice",
    ("POST", "/audio/speech"): "speech",
}


@dataclass(frozen=True)
class ProviderCall:
    """One HTTP exchange with the provider, perf_counter seconds: sent, first body bytes, body closed."""

    operation: str
    start: float
    first_byte: float
    end: float


@dataclass
class ProviderCalls:
    """Every provider call a timed client made, in the order they finished (thread-safe)."""

    calls: list[ProviderCall] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, request: httpx.Request, start: float, first_byte: float | None, end: float) -> None:
        path = request.url.path.split("/v1", 1)[-1].rstrip("/")
        operation = _OPERATIONS.get((request.method, path), f"{request.method} {path}")
        with self._lock:
            self.calls.append(ProviderCall(operation, start, end if first_byte is None else first_byte, end))

    def between(self, start: float, end: float) -> list[ProviderCall]:
        with self._lock:
            return [c for c in self.calls if c.start >= start and c.end <= end]

    def of(self, operation: str) -> list[ProviderCall]:
        with self._lock:
            return [c for c in self.calls if c.operation == operation]


class _TimedStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, done: Callable[[float | None, float], None]) -> None:
        self._inner, self._done = inner, done
        self._first: float | None = None

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            if chunk and self._first is None:
                self._first = time.perf_counter()
            yield chunk

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._done(self._first, time.perf_counter())


class _AsyncTimedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, done: Callable[[float | None, float], None]) -> None:
        self._inner, self._done = inner, done
        self._first: float | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            if chunk and self._first is None:
                self._first = time.perf_counter()
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._done(self._first, time.perf_counter())


class TimedTransport(httpx.BaseTransport):
    """An httpx transport that records each exchange in `log`, from sending the request until the client
    closes the response body (after reading it)."""

    def __init__(self, log: ProviderCalls) -> None:
        self._inner, self._log = httpx.HTTPTransport(), log

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        start = time.perf_counter()
        response = self._inner.handle_request(request)
        assert isinstance(response.stream, httpx.SyncByteStream)
        response.stream = _TimedStream(
            response.stream, lambda first, end: self._log.add(request, start, first, end)
        )
        return response

    def close(self) -> None:
        self._inner.close()


class AsyncTimedTransport(httpx.AsyncBaseTransport):
    """`TimedTransport` for the async client (streamed speech: the first audio bytes are timed too)."""

    def __init__(self, log: ProviderCalls) -> None:
        self._inner, self._log = httpx.AsyncHTTPTransport(), log

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        start = time.perf_counter()
        response = await self._inner.handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _AsyncTimedStream(
            response.stream, lambda first, end: self._log.add(request, start, first, end)
        )
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def time_provider_calls(platform: Platform) -> ProviderCalls:
    """Give an in-process platform StepFun clients built with a timing transport (their public `transport`
    argument; same settings and breaker) for its pipeline and its speech routes → the log they fill."""
    log = ProviderCalls()
    settings, health = platform.provider_settings, platform.provider_health
    old_sync, old_async = platform.provider, platform.async_provider
    platform.provider = StepFunClient(settings, health=health, transport=TimedTransport(log))
    platform.pipeline.provider = platform.provider
    platform.async_provider = AsyncStepFunClient(settings, health=health, transport=AsyncTimedTransport(log))
    old_sync.close()
    asyncio.run(old_async.aclose())
    return log
