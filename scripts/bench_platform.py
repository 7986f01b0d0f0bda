"""Platform benchmark (issue 5): pipeline latency upload→live and the share spent in provider calls;
`/tts` added latency over calling the StepFun emulator directly (total and time to first byte); encoder
service throughput (concurrent clients, where adaptive batching forms batches, vs sequential clients, vs the
model called directly); memory of the running platform (in-process uvicorn, and the `bentoml serve` tree).

    .venv/bin/python -m scripts.bench_platform [--personas 8] [--tts-calls 30] [--embed-requests 64]
                                               [--encoder seeded|ge2e] [--format mp3|wav] [--skip-bentoml]

Everything runs on 127.0.0.1: the emulator subprocess, the platform in-process (uvicorn, as the tests run
it) and then under `bentoml serve` (as `make run` runs it). Prints tables and writes
bench_results/platform.json (platform-<encoder>.json for a non-default encoder). Targets: `/tts` overhead
< 10 ms p50 and first byte ≤ 1.1× the direct call. Generated voices: the latencies rank versions of the
platform; the emulator's synthesis time stands in for StepFun's, which over the internet is far larger.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.harness import EMULATOR_KEY, RunningPlatform, platform_overrides, start_platform
from bentos.devkit.processes import bentoml_serve, free_port, terminate, wait_port_closed, wait_ready
from bentos.stepfun.client import StepFunClient
from bentos.stepfun.settings import ProviderSettings
from scripts.bench_common import pin_threads, print_table, summarize_ms, write_results
from scripts.make_voices import VoiceClip, make_voices

REPO = Path(__file__).resolve().parent.parent
EMULATOR_CACHE = REPO / ".cache" / "emulator-bench"  # base-voice statistics, reused across runs
DIRECT_KEY = "bench-direct-key"  # a second emulator tenant: its clones are fresh, never `duplicated`
WARM_KEY = "bench-warm-key"
TTS_TEXT = "Good evening, and welcome to the late news from the harbour."
SAMPLE_TEXT = "Hello! This is my voice on VoxPersona."  # bentos.core.pipeline.DEFAULT_SAMPLE_TEXT
CONSENT = {"attested": True, "statement": "This is my own voice."}
PIPELINE_TIMEOUT_S = 180.0
UPSTREAM_METRIC = (
    "voxpersona_provider_first_byte_seconds"  # the platform's own histogram (bentos.core.metrics)
)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def pct(samples_s: list[float], q: float) -> float:
    return ms(float(np.percentile(np.asarray(samples_s), q)))


# ---- 1. pipeline latency ----


class PipelineProbe:
    """Hooks the in-process platform: each pipeline state change (time), each provider call (start, end)."""

    def __init__(self, running: RunningPlatform) -> None:
        self.steps: dict[str, list[tuple[str, float]]] = {}
        self.calls: list[tuple[float, float, str]] = []
        self._lock = threading.Lock()
        pipeline = running.platform.pipeline
        previous_on_step = pipeline.on_step
        provider = running.platform.provider
        execute = provider._execute

        def on_step(persona_id: str, state: str) -> None:
            with self._lock:
                self.steps.setdefault(persona_id, []).append((state, time.perf_counter()))
            if previous_on_step is not None:
                previous_on_step(persona_id, state)

        def timed_execute(call: Any) -> Any:
            start = time.perf_counter()
            try:
                return execute(call)
            finally:
                with self._lock:
                    self.calls.append((start, time.perf_counter(), call.operation))

        pipeline.on_step = on_step
        provider._execute = timed_execute  # type: ignore[method-assign]

    def finished(self, persona_id: str) -> tuple[str, float] | None:
        with self._lock:
            for state, at in self.steps.get(persona_id, []):
                if state in ("live", "failed"):
                    return state, at
        return None

    def calls_between(self, start: float, end: float) -> list[tuple[float, float, str]]:
        with self._lock:
            return [c for c in self.calls if c[0] >= start and c[1] <= end]


def create_persona(client: httpx.Client, clip: VoiceClip, name: str) -> tuple[str, float, float]:
    """Upload + POST /voices → (persona id, t upload started, t voices answered)."""
    t0 = time.perf_counter()
    up = client.post("/files", files={"file": (clip.mp3_path.name, clip.mp3_path.read_bytes(), "audio/mpeg")})
    if up.status_code not in (200, 201):
        raise RuntimeError(f"POST /files: {up.status_code} {up.text[:300]}")
    body = {"fileId": up.json()["fileId"], "name": name, "visibility": "public", "consent": CONSENT}
    created = client.post("/voices", json=body)
    if created.status_code != 202:
        raise RuntimeError(f"POST /voices: {created.status_code} {created.text[:300]}")
    return str(created.json()["voiceId"]), t0, time.perf_counter()


def wait_live_http(client: httpx.Client, voice_id: str, interval_s: float = 0.02) -> dict[str, float]:
    """Poll GET /voices/{id} (another process: polling costs it little) → when each state was first seen."""
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


def pipeline_inprocess(
    running: RunningPlatform, key: str, clips: list[VoiceClip], warm: VoiceClip
) -> dict[str, Any]:
    """Personas one after another (no overlap), timed by the pipeline's own step hook (no polling load)."""
    probe = PipelineProbe(running)
    client = running.client(key)

    def one(clip: VoiceClip, name: str) -> dict[str, Any]:
        voice_id, t0, t_accepted = create_persona(client, clip, name)
        deadline = time.perf_counter() + PIPELINE_TIMEOUT_S
        while (done := probe.finished(voice_id)) is None:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"persona {voice_id} not live within {PIPELINE_TIMEOUT_S}s")
            time.sleep(0.005)
        state, t_live = done
        if state != "live":
            raise RuntimeError(f"persona {voice_id} failed: {client.get(f'/voices/{voice_id}').json()}")
        assert client.get(f"/voices/{voice_id}").json()["status"] == "live"
        calls = probe.calls_between(t0, t_live)
        steps = probe.steps[voice_id]
        marks = [("accepted", t_accepted), *steps]
        step_s = {f"{a}→{b}": tb - ta for (a, ta), (b, tb) in itertools.pairwise(marks)}
        return {
            "voice_id": voice_id,
            "total_s": t_live - t0,
            "upload_accept_s": t_accepted - t0,
            "provider_s": sum(end - start for start, end, _ in calls),
            "provider_ops": [c[2] for c in calls],
            "steps_s": step_s,
        }

    one(warm, "warm-up")  # lazy imports, VAD model, chain deployment: not part of the steady state
    runs = [one(clip, f"Persona {i}") for i, clip in enumerate(clips)]
    totals = [r["total_s"] for r in runs]
    shares = [r["provider_s"] / r["total_s"] for r in runs]
    step_names = list(runs[0]["steps_s"])
    steps = {s: ms(statistics.median(r["steps_s"].get(s, 0.0) for r in runs)) for s in step_names}
    return {
        "runs": runs,
        "latency": summarize_ms(totals),
        "p50_ms": pct(totals, 50),
        "p95_ms": pct(totals, 95),
        "provider_share_median": round(statistics.median(shares), 3),
        "provider_ms_median": ms(statistics.median(r["provider_s"] for r in runs)),
        "provider_ops": runs[0]["provider_ops"],
        "steps_median_ms": steps,
        "voice_ids": [r["voice_id"] for r in runs],
    }


def provider_direct(emu: EmulatorProcess, clips: list[VoiceClip], ops: list[str]) -> dict[str, Any]:
    """The pipeline's provider calls (same files, same operations) made straight to the emulator, as a
    second tenant so no clone comes back `duplicated`."""
    settings = ProviderSettings(base_url=emu.base_url, api_key=DIRECT_KEY)  # type: ignore[arg-type]
    times = []
    with StepFunClient(settings) as client:
        for clip in clips:
            data = clip.mp3_path.read_bytes()
            start = time.perf_counter()
            file_id = client.upload_file(data, clip.mp3_path.name).id
            voice = client.create_voice(file_id, model="step-tts-2", sample_text=SAMPLE_TEXT)
            if "speech" in ops:
                client.speech(model="step-tts-2", voice=voice.id, input=SAMPLE_TEXT, response_format="wav")
            times.append(time.perf_counter() - start)
    made = ["upload_file", "create_voice", *(["speech"] if "speech" in ops else [])]
    return {"ops": made, "latency": summarize_ms(times), "p50_ms": pct(times, 50), "p95_ms": pct(times, 95)}


def pipeline_bentoml(base: str, key: str, clips: list[VoiceClip], warm: VoiceClip) -> dict[str, Any]:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        wait_live_http(client, create_persona(client, warm, "warm-up")[0])  # lazy loads, chain deployment
        totals, ids, seen = [], [], []
        for i, clip in enumerate(clips):
            voice_id, t0, _ = create_persona(client, clip, f"Served {i}")
            states = wait_live_http(client, voice_id)
            totals.append(states["live"] - t0)
            seen.append({state: ms(at - t0) for state, at in states.items()})
            ids.append(voice_id)
    return {
        "latency": summarize_ms(totals),
        "p50_ms": pct(totals, 50),
        "p95_ms": pct(totals, 95),
        "voice_ids": ids,
        "states_first_seen_ms": seen,
        "note": "polled every 20 ms over HTTP",
    }


# ---- 2. /tts overhead ----


def stream_once(client: httpx.Client, url: str, body: dict[str, Any]) -> tuple[float, float, int]:
    """→ (time to first body byte, total time, bytes)."""
    start = time.perf_counter()
    first: float | None = None
    size = 0
    with client.stream("POST", url, json=body) as response:
        if response.status_code != 200:
            response.read()
            raise RuntimeError(f"POST {url}: {response.status_code} {response.text[:300]}")
        for chunk in response.iter_raw():
            if chunk and first is None:
                first = time.perf_counter()
            size += len(chunk)
    end = time.perf_counter()
    return (first or end) - start, end - start, size


@contextmanager
def server_side_timers(running: RunningPlatform) -> Iterator[dict[str, list[float]]]:
    """In-process only: time the platform's own work inside POST /tts (auth, persona lookup, metering) and the
    upstream call as the platform sees it (its StepFun client's time to first chunk, and to the last)."""
    from bentos.api import routes_speech

    names = ("auth", "persona", "meter", "upstream_ttfb", "upstream_total")
    timings: dict[str, list[float]] = {name: [] for name in names}
    originals = {
        "caller": routes_speech.caller,
        "_persona": routes_speech._persona,
        "_meter": routes_speech._meter,
    }
    provider = running.platform.async_provider
    stream_speech = provider.stream_speech

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                timings[name].append(time.perf_counter() - start)

        return wrapper

    async def timed_stream(*args: Any, **kwargs: Any) -> AsyncIterator[bytes]:
        start = time.perf_counter()
        upstream = stream_speech(*args, **kwargs)
        try:
            async for chunk in upstream:
                if len(timings["upstream_ttfb"]) == len(timings["upstream_total"]):
                    timings["upstream_ttfb"].append(time.perf_counter() - start)
                yield chunk
            timings["upstream_total"].append(time.perf_counter() - start)
        finally:
            await upstream.aclose()

    for attr, name in (("caller", "auth"), ("_persona", "persona"), ("_meter", "meter")):
        setattr(routes_speech, attr, timed(name, originals[attr]))
    provider.stream_speech = timed_stream  # type: ignore[method-assign]
    try:
        yield timings
    finally:
        for attr, fn in originals.items():
            setattr(routes_speech, attr, fn)
        provider.stream_speech = stream_speech  # type: ignore[method-assign]


def metric_sum_count(base: str, metric: str) -> tuple[float, float]:
    """(Σ, count) of a Prometheus histogram on BentoML's /metrics (all label sets together)."""
    total = count = 0.0
    for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
        name, _, value = line.rpartition(" ")
        if name.split("{")[0] == f"{metric}_sum":
            total += float(value)
        elif name.split("{")[0] == f"{metric}_count":
            count += float(value)
    return total, count


def tts_overhead(
    base: str,
    keys: tuple[str, str],
    voice_id: str,
    emu: EmulatorProcess,
    calls: int,
    fmt: str,
    text: str,
) -> dict[str, Any]:
    """Same text, voice and format both ways, sequential, interleaved (the order alternates every pair).

    keys: (creator, consumer): the creator reads the persona's StepFun voice id; the consumer calls /tts."""
    creator_key, consumer_key = keys
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {creator_key}"}, timeout=60) as plat:
        step_voice = plat.get(f"/voices/{voice_id}").json()["stepVoiceId"]
    plat_body = {"voice": voice_id, "text": text, "format": fmt}
    # Exactly the body the platform sends upstream (SpeechRequest.payload(): unset fields left out).
    direct_body = {"model": "step-tts-2", "input": text, "voice": step_voice, "response_format": fmt}
    headers = {"Authorization": f"Bearer {EMULATOR_KEY}"}
    series: dict[str, dict[str, list[float]]] = {
        k: {"ttfb": [], "total": [], "bytes": []} for k in ("platform", "direct")
    }
    with (
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {consumer_key}"}, timeout=60) as plat,
        httpx.Client(headers=headers, timeout=60) as direct,
    ):
        runs = {
            "platform": lambda: stream_once(plat, "/tts", plat_body),
            "direct": lambda: stream_once(direct, f"{emu.base_url}/audio/speech", direct_body),
        }
        for _ in range(3):  # warm both connection pools and the synthesis path
            runs["platform"]()
            runs["direct"]()
        for i in range(calls):
            for name in ("platform", "direct") if i % 2 == 0 else ("direct", "platform"):
                ttfb, total, size = runs[name]()
                series[name]["ttfb"].append(ttfb)
                series[name]["total"].append(total)
                series[name]["bytes"].append(size)
    p, d = series["platform"], series["direct"]
    paired = [a - b for a, b in zip(p["total"], d["total"], strict=True)]
    paired_ttfb = [a - b for a, b in zip(p["ttfb"], d["ttfb"], strict=True)]
    result: dict[str, Any] = {"format": fmt, "text_chars": len(text), "calls": calls}
    for name, s in series.items():
        result[name] = {
            "ttfb_p50_ms": pct(s["ttfb"], 50),
            "ttfb_p95_ms": pct(s["ttfb"], 95),
            "total_p50_ms": pct(s["total"], 50),
            "total_p95_ms": pct(s["total"], 95),
            "bytes_median": int(statistics.median(s["bytes"])),
        }
    result["overhead_p50_ms"] = round(
        result["platform"]["total_p50_ms"] - result["direct"]["total_p50_ms"], 2
    )
    result["overhead_p95_ms"] = round(
        result["platform"]["total_p95_ms"] - result["direct"]["total_p95_ms"], 2
    )
    result["overhead_paired_median_ms"] = ms(statistics.median(paired))
    result["ttfb_overhead_paired_median_ms"] = ms(statistics.median(paired_ttfb))
    result["ttfb_ratio_p50"] = round(result["platform"]["ttfb_p50_ms"] / result["direct"]["ttfb_p50_ms"], 3)
    result["meets_overhead_target"] = result["overhead_p50_ms"] < 10
    result["meets_ttfb_target"] = result["ttfb_ratio_p50"] <= 1.1
    return result


# ---- 3. encoder throughput ----


def upload_files(base: str, key: str, clips: list[VoiceClip]) -> list[str]:
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


async def _embed_load(
    base: str, key: str, file_ids: list[str], requests: int, concurrency: int
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    todo = iter(range(requests))
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120, limits=limits) as client:

        async def call(i: int) -> None:
            start = time.perf_counter()
            r = await client.post("/embeddings", json={"fileId": file_ids[i % len(file_ids)]})
            if r.status_code == 200 and r.json().get("dim"):
                latencies.append(time.perf_counter() - start)
            else:
                errors[str(r.status_code)] = errors.get(str(r.status_code), 0) + 1

        async def worker() -> None:
            for i in todo:  # a shared iterator: each request is taken once
                await call(i)

        for i in range(min(4, len(file_ids))):  # warm-up, not counted
            await client.post("/embeddings", json={"fileId": file_ids[i]})
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {
        "concurrency": concurrency,
        "requests": requests,
        "ok": len(latencies),
        "errors": errors,
        "clips_per_s": round(len(latencies) / elapsed, 2),
        "latency": summarize_ms(latencies or [0.0]),
    }


def embed_load(base: str, key: str, file_ids: list[str], requests: int, concurrency: int) -> dict[str, Any]:
    return asyncio.run(_embed_load(base, key, file_ids, requests, concurrency))


def batch_size_metric(base: str) -> dict[str, float] | None:
    """BentoML's adaptive batch-size histogram for the encoder's embed, when /metrics exposes it."""
    try:
        text = httpx.get(f"{base}/metrics", timeout=10).text
    except httpx.HTTPError:
        return None
    total = count = 0.0
    for line in text.splitlines():
        if line.startswith("#") or "adaptive_batch_size" not in line or "embed" not in line:
            continue
        name, _, value = line.rpartition(" ")
        if "_sum" in name.split("{")[0]:
            total += float(value)
        elif "_count" in name.split("{")[0]:
            count += float(value)
    return {"batches": count, "clips": total, "mean_batch": round(total / count, 2)} if count else None


def encoder_direct(encoder: str, clips: list[VoiceClip], requests: int, batch: int) -> dict[str, Any]:
    """EncoderRuntime.embed_arrays in this process: one clip per call, and batches of `batch`; plus what
    decode + preprocess (done by the platform per /embeddings request, before the encoder service) costs."""
    from bentos.core.encoder_runtime import EncoderChoice, EncoderRuntime
    from encoders import load_audio

    runtime = EncoderRuntime.from_choice(EncoderChoice(name=encoder))
    runtime.warm_up()
    start = time.perf_counter()
    arrays = [load_audio(c.wav_path).samples for c in clips]
    preprocess_s = (time.perf_counter() - start) / len(clips)
    start = time.perf_counter()
    for i in range(requests):
        runtime.embed_arrays([arrays[i % len(arrays)]])
    single = requests / (time.perf_counter() - start)
    rounds = max(1, requests // batch)
    group = [arrays[i % len(arrays)] for i in range(batch)]
    start = time.perf_counter()
    for _ in range(rounds):
        runtime.embed_arrays(group)
    batched = rounds * batch / (time.perf_counter() - start)
    return {
        "describe": runtime.describe(),
        "one_by_one_clips_per_s": round(single, 2),
        f"batch{batch}_clips_per_s": round(batched, 2),
        "preprocess_ms_per_clip": ms(preprocess_s),
    }


# ---- 4. memory + the bentoml process ----


def tree_memory(pid: int) -> dict[str, Any]:
    root = psutil.Process(pid)
    rows = []
    for proc in [root, *root.children(recursive=True)]:
        try:
            info = proc.memory_full_info()
        except psutil.Error:
            continue
        argv = proc.cmdline()
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


@contextmanager
def bentoml_platform(
    emu: EmulatorProcess, data_dir: Path, encoder: str, threads: int
) -> Iterator[tuple[str, int]]:
    """`bentoml serve` the PersonaPlatform (and its SpeakerEncoder dependency) on a free loopback port."""
    port = free_port()
    overrides = [*platform_overrides(data_dir, emu), f"encoder={encoder}"]
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


def sign_up(base: str, role: str) -> str:
    r = httpx.post(
        f"{base}/accounts",
        json={"name": f"Bench {role}", "role": role, "email": f"bench-{role}-{time.time_ns()}@example.com"},
        timeout=30,
    )
    if r.status_code != 201:
        raise RuntimeError(f"POST /accounts: {r.status_code} {r.text[:300]}")
    return str(r.json()["apiKey"])


# ---- main ----


def tts_row(where: str, r: dict[str, Any]) -> dict[str, Any]:
    p, d = r["platform"], r["direct"]
    return {
        "server": where,
        "fmt": r["format"],
        "n": r["calls"],
        "direct p50/p95 ms": f"{d['total_p50_ms']}/{d['total_p95_ms']}",
        "platform p50/p95 ms": f"{p['total_p50_ms']}/{p['total_p95_ms']}",
        "overhead p50 ms": r["overhead_p50_ms"],
        "paired med ms": r["overhead_paired_median_ms"],
        "TTFB direct/platform p50 ms": f"{d['ttfb_p50_ms']}/{p['ttfb_p50_ms']}",
        "TTFB ratio": r["ttfb_ratio_p50"],
        "targets": ("ok" if r["meets_overhead_target"] else "MISS")
        + "/"
        + ("ok" if r["meets_ttfb_target"] else "MISS"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--personas", type=int, default=8, help="pipeline runs (each from a different clip)")
    parser.add_argument("--served-personas", type=int, default=4, help="pipeline runs through bentoml serve")
    parser.add_argument("--tts-calls", type=int, default=30, help="calls each way, interleaved")
    parser.add_argument("--format", choices=("mp3", "wav"), default="mp3")
    parser.add_argument("--text", default=TTS_TEXT)
    parser.add_argument("--embed-requests", type=int, default=64, help="/embeddings requests per mode")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--encoder", choices=("seeded", "ge2e"), default="seeded")
    parser.add_argument("--threads", type=int, default=1, help="torch/BLAS threads, here and in the services")
    parser.add_argument("--skip-bentoml", action="store_true", help="in-process platform only")
    args = parser.parse_args()
    pin_threads(args.threads)
    started = time.perf_counter()
    load_before = os.getloadavg()

    voices = make_voices(speakers=6, utterances=3)
    clips = voices.clips
    if args.personas + 2 > len(clips):
        voices = make_voices(speakers=max(6, (args.personas + 2 + 2) // 3), utterances=3)
        clips = voices.clips
    persona_clips, warm_clip = clips[: args.personas], clips[-1]
    served_clips = [clips[(args.personas + i) % (len(clips) - 1)] for i in range(args.served_personas)]
    results: dict[str, Any] = {
        "args": vars(args),
        "note": "generated voices; emulator synthesis stands in for StepFun",
    }
    base_rss = psutil.Process().memory_info().rss

    with tempfile.TemporaryDirectory(prefix="bench-platform-") as tmp:
        tmp_path = Path(tmp)
        EMULATOR_CACHE.mkdir(parents=True, exist_ok=True)
        with EmulatorProcess(
            tmp_path / "emulator",
            api_keys=(EMULATOR_KEY, DIRECT_KEY, WARM_KEY),
            rpm=0,
            concurrency=0,
            max_candidates=4,
            cache_dir=EMULATOR_CACHE,
        ) as emu:
            # Warm the emulator's voice engine (base-voice statistics) so no persona pays for it.
            warm_settings = ProviderSettings(base_url=emu.base_url, api_key=WARM_KEY)  # type: ignore[arg-type]
            with StepFunClient(warm_settings) as warm:
                warm.create_voice(warm.upload_file(warm_clip.mp3_path.read_bytes(), "warm.mp3").id)

            # -- the platform in-process (uvicorn in a thread of this process, as the tests run it)
            print(
                f"in-process platform: {args.personas} personas, {args.tts_calls}×2 /tts calls …", flush=True
            )
            running = start_platform(
                [*platform_overrides(tmp_path / "inproc", emu), f"encoder={args.encoder}"]
            )
            try:
                _, creator = running.sign_up("creator")
                _, consumer = running.sign_up("consumer")
                pipe = pipeline_inprocess(running, creator, persona_clips, warm_clip)
                with server_side_timers(running) as timings:
                    tts_in = tts_overhead(
                        running.base_url,
                        (creator, consumer),
                        pipe["voice_ids"][0],
                        emu,
                        args.tts_calls,
                        args.format,
                        args.text,
                    )
                tts_in["server_side_ms_median"] = {
                    k: ms(statistics.median(v)) for k, v in timings.items() if v
                }
                file_ids = upload_files(running.base_url, creator, clips[:16])
                embed_in = embed_load(
                    running.base_url, creator, file_ids, args.embed_requests, args.concurrency
                )
                rss_inproc = psutil.Process().memory_info().rss
            finally:
                running.stop()
            direct_clone = provider_direct(emu, persona_clips, pipe["provider_ops"])
            results["pipeline"] = {
                "in_process": pipe,
                "provider_direct": direct_clone,
                "provider_share_direct_estimate": round(direct_clone["p50_ms"] / pipe["p50_ms"], 3),
            }
            results["tts"] = {"in_process": tts_in}
            results["embeddings"] = {"in_process_concurrent": embed_in}
            results["memory"] = {
                "in_process": {
                    "rss_mb": round(rss_inproc / 2**20, 1),
                    "bench_baseline_rss_mb": round(base_rss / 2**20, 1),
                }
            }

            # -- the platform under bentoml serve (supervisor + platform worker + encoder worker)
            if not args.skip_bentoml:
                print("bentoml serve: starting …", flush=True)
                t_boot = time.perf_counter()
                with bentoml_platform(emu, tmp_path / "served", args.encoder, args.threads) as (base, pid):
                    boot_s = time.perf_counter() - t_boot
                    print(f"bentoml serve ready in {boot_s:.1f} s", flush=True)
                    creator_b, consumer_b = sign_up(base, "creator"), sign_up(base, "consumer")
                    pipe_b = pipeline_bentoml(base, creator_b, served_clips, warm_clip)
                    # /tts on the same StepFun voice as in-process (the emulator answers `duplicated`), so
                    # both servers are compared on the same synthesis.
                    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {creator_b}"}) as c:
                        tts_voice = create_persona(c, persona_clips[0], "TTS voice")[0]
                        wait_live_http(c, tts_voice)
                    upstream_before = metric_sum_count(base, UPSTREAM_METRIC)
                    tts_b = tts_overhead(
                        base,
                        (creator_b, consumer_b),
                        tts_voice,
                        emu,
                        args.tts_calls,
                        args.format,
                        args.text,
                    )
                    upstream_after = metric_sum_count(base, UPSTREAM_METRIC)
                    n_up = upstream_after[1] - upstream_before[1]
                    if n_up:
                        tts_b["upstream_ttfb_mean_ms"] = ms((upstream_after[0] - upstream_before[0]) / n_up)
                    file_ids = upload_files(base, creator_b, clips[:16])
                    seq = embed_load(base, creator_b, file_ids, args.embed_requests, 1)
                    before = batch_size_metric(base) or {"batches": 0.0, "clips": 0.0}
                    conc = embed_load(base, creator_b, file_ids, args.embed_requests, args.concurrency)
                    after = batch_size_metric(base)
                    batches = None
                    if after and after["batches"] > before["batches"]:
                        # this phase only (its 4 sequential warm-up calls included)
                        n_batches, n_clips = (
                            after["batches"] - before["batches"],
                            after["clips"] - before["clips"],
                        )
                        batches = {
                            "batches": n_batches,
                            "clips": n_clips,
                            "mean_batch": round(n_clips / n_batches, 2),
                        }
                    mem_tree = tree_memory(pid)
                direct_served = provider_direct(emu, served_clips, pipe["provider_ops"])
                results["pipeline"]["bentoml"] = pipe_b
                results["pipeline"]["provider_direct_served_clips"] = direct_served
                results["tts"]["bentoml"] = tts_b
                results["embeddings"].update(
                    {"bentoml_sequential": seq, "bentoml_concurrent": conc, "bentoml_batch_metric": batches}
                )
                results["memory"]["bentoml"] = {**mem_tree, "boot_s": round(boot_s, 1)}

        results["embeddings"]["direct"] = encoder_direct(
            args.encoder, clips[:16], args.embed_requests, args.concurrency
        )

    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    results["loadavg_before"] = [round(x, 2) for x in load_before]
    results["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    report(results, args)


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    pipe = results["pipeline"]
    inp = pipe["in_process"]
    rows = [
        {
            "server": "in-process uvicorn",
            "n": inp["latency"]["n"],
            "p50 ms": inp["p50_ms"],
            "p95 ms": inp["p95_ms"],
            "provider ms p50": inp["provider_ms_median"],
            "provider share": inp["provider_share_median"],
            "outside provider": round(1 - inp["provider_share_median"], 3),
        }
    ]
    rows.append(
        {
            "server": "emulator direct (same calls)",
            "n": pipe["provider_direct"]["latency"]["n"],
            "p50 ms": pipe["provider_direct"]["p50_ms"],
            "p95 ms": pipe["provider_direct"]["p95_ms"],
            "provider share": f"≈{pipe['provider_share_direct_estimate']} of in-process p50",
        }
    )
    if "bentoml" in pipe:
        b = pipe["bentoml"]
        rows.append(
            {
                "server": "bentoml serve (polled)",
                "n": b["latency"]["n"],
                "p50 ms": b["p50_ms"],
                "p95 ms": b["p95_ms"],
            }
        )
        d = pipe["provider_direct_served_clips"]
        rows.append(
            {
                "server": "emulator direct (its clips)",
                "n": d["latency"]["n"],
                "p50 ms": d["p50_ms"],
                "p95 ms": d["p95_ms"],
                "provider share": f"≈{round(d['p50_ms'] / b['p50_ms'], 3)} of bentoml p50",
            }
        )
    print_table(f"1. pipeline upload→live ({args.encoder} encoder; provider ops {inp['provider_ops']})", rows)
    print_table("   median step times, in-process (ms)", [inp["steps_median_ms"]])
    if "bentoml" in pipe:
        seen = pipe["bentoml"]["states_first_seen_ms"]
        states = [st for st in seen[0] if all(st in x for x in seen)]
        first_seen = {st: round(statistics.median(x[st] for x in seen), 1) for st in states}
        print_table(
            "   bentoml: median ms from upload start until each state was first seen (20 ms polls)",
            [first_seen],
        )

    tts = results["tts"]
    rows = [tts_row("in-process uvicorn", tts["in_process"])]
    if "bentoml" in tts:
        rows.append(tts_row("bentoml serve", tts["bentoml"]))
    print_table(
        f"2. /tts vs emulator direct ({len(args.text)} chars; targets: overhead <10 ms p50 / TTFB ≤1.1×)",
        rows,
    )
    side = [{"server": "in-process (median)", **tts["in_process"]["server_side_ms_median"]}]
    if "upstream_ttfb_mean_ms" in tts.get("bentoml", {}):
        side.append(
            {"server": "bentoml (mean, /metrics)", "upstream_ttfb": tts["bentoml"]["upstream_ttfb_mean_ms"]}
        )
    print_table("   inside the platform during /tts (ms): own work and its upstream StepFun call", side)

    emb = results["embeddings"]
    rows = []
    for label, key in (
        ("in-process uvicorn, local encoder", "in_process_concurrent"),
        ("bentoml, sequential client (batch of 1)", "bentoml_sequential"),
        ("bentoml, concurrent clients (adaptive batching)", "bentoml_concurrent"),
    ):
        if key in emb:
            e = emb[key]
            rows.append(
                {
                    "path": label,
                    "clients": e["concurrency"],
                    "ok": e["ok"],
                    "errors": e["errors"] or "",
                    "clips/s": e["clips_per_s"],
                    "latency p50 ms": e["latency"]["median_ms"],
                    "p95 ms": e["latency"]["p95_ms"],
                }
            )
    d = emb["direct"]
    batch_key = next(k for k in d if k.startswith("batch"))
    rows.append(
        {
            "path": "EncoderRuntime.embed_arrays, one by one",
            "clients": 1,
            "clips/s": d["one_by_one_clips_per_s"],
        }
    )
    rows.append(
        {
            "path": f"EncoderRuntime.embed_arrays, {batch_key[5:].split('_')[0]} per call",
            "clients": 1,
            "clips/s": d[batch_key],
        }
    )
    print_table(
        f"3. embeddings throughput ({args.encoder}; decode+preprocess alone {d['preprocess_ms_per_clip']} "
        f"ms/clip; concurrent-phase batches {emb.get('bentoml_batch_metric')})",
        rows,
    )

    mem = results["memory"]
    rows = [
        {
            "what": "in-process platform (this process, incl. bench client)",
            "rss MB": mem["in_process"]["rss_mb"],
            "uss MB": "",
        },
        {
            "what": "  this process before the platform started",
            "rss MB": mem["in_process"]["bench_baseline_rss_mb"],
            "uss MB": "",
        },
    ]
    if "bentoml" in mem:
        m = mem["bentoml"]
        rows.append(
            {
                "what": f"bentoml serve tree (boot {m['boot_s']} s)",
                "rss MB": m["rss_mb"],
                "uss MB": m["uss_mb"],
            }
        )
        rows += [
            {"what": f"  {p['role']} (pid {p['pid']})", "rss MB": p["rss_mb"], "uss MB": p["uss_mb"]}
            for p in m["processes"]
        ]
    print_table("4. memory after the run", rows)
    print(
        f"\nload average before/after: {results['loadavg_before']} / {results['loadavg_after']}; "
        f"elapsed {results['elapsed_s']} s"
    )
    write_results("platform" if args.encoder == "seeded" else f"platform-{args.encoder}", results)


if __name__ == "__main__":
    main()
