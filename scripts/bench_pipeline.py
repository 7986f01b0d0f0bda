"""Pipeline benchmark: upload→live latency (p50/p95) and the share of it spent in provider calls, against the
same provider calls made straight to the StepFun emulator.

    .venv/bin/python -m scripts.bench_pipeline [--personas 8] [--served-personas 4] [--encoder seeded|ge2e|fusion]
                                               [--skip-bentoml]

The platform runs in-process first (uvicorn in a thread, as the tests run it): its pipeline's `on_step` hook
times each state change, and its StepFun clients are built with a timing httpx transport (the client's public
`transport` argument), so every provider call is timed from outside the client. Then under `bentoml serve` (as
`make run` runs it), timed by polling GET /voices/{id}. Prints tables and writes bench_results/pipeline.json
(pipeline-<encoder>.json for a non-default encoder). The emulator's synthesis stands in for StepFun's, which
over the internet takes far longer.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.harness import EMULATOR_KEY, RunningPlatform, platform_overrides, start_platform
from bentos.stepfun.client import StepFunClient
from bentos.stepfun.settings import ProviderSettings
from encoders.voices import VoiceClip
from scripts.bench_common import (
    DIRECT_KEY,
    PIPELINE_TIMEOUT_S,
    SAMPLE_TEXT,
    ProviderCalls,
    add_platform_arguments,
    bench_clips,
    bench_emulator,
    bentoml_platform,
    create_persona,
    ms,
    pct,
    pin_threads,
    print_table,
    results_name,
    sign_up,
    summarize_ms,
    time_provider_calls,
    wait_live,
    write_results,
)


class StepLog:
    """When each persona reached each pipeline state, through the pipeline's public `on_step` hook."""

    def __init__(self, running: RunningPlatform) -> None:
        self.steps: dict[str, list[tuple[str, float]]] = {}
        self._lock = threading.Lock()
        pipeline = running.platform.pipeline
        previous = pipeline.on_step

        def on_step(persona_id: str, state: str) -> None:
            with self._lock:
                self.steps.setdefault(persona_id, []).append((state, time.perf_counter()))
            if previous is not None:
                previous(persona_id, state)

        pipeline.on_step = on_step

    def finished(self, persona_id: str) -> tuple[str, float] | None:
        with self._lock:
            for state, at in self.steps.get(persona_id, []):
                if state in ("live", "failed"):
                    return state, at
        return None


def pipeline_inprocess(
    running: RunningPlatform, key: str, clips: list[VoiceClip], warm: VoiceClip
) -> dict[str, Any]:
    """Personas one after another (no overlap), timed by the step hook (no polling load on the server)."""
    steps = StepLog(running)
    calls: ProviderCalls = time_provider_calls(running.platform)
    client = running.client(key)

    def one(clip: VoiceClip, name: str) -> dict[str, Any]:
        voice_id, t0, t_accepted = create_persona(client, clip, name)
        deadline = time.perf_counter() + PIPELINE_TIMEOUT_S
        while (done := steps.finished(voice_id)) is None:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"persona {voice_id} not live within {PIPELINE_TIMEOUT_S}s")
            time.sleep(0.005)
        state, t_live = done
        if state != "live":
            raise RuntimeError(f"persona {voice_id} failed: {client.get(f'/voices/{voice_id}').json()}")
        made = calls.between(t0, t_live)
        marks = [("accepted", t_accepted), *steps.steps[voice_id]]
        return {
            "voice_id": voice_id,
            "total_s": t_live - t0,
            "upload_accept_s": t_accepted - t0,
            "provider_s": sum(c.end - c.start for c in made),
            "provider_ops": [c.operation for c in made],
            "steps_s": {f"{a}→{b}": tb - ta for (a, ta), (b, tb) in itertools.pairwise(marks)},
        }

    one(warm, "warm-up")  # lazy imports, VAD model, chain deployment: not part of the steady state
    runs = [one(clip, f"Persona {i}") for i, clip in enumerate(clips)]
    totals = [r["total_s"] for r in runs]
    shares = [r["provider_s"] / r["total_s"] for r in runs]
    step_names = list(runs[0]["steps_s"])
    return {
        "runs": runs,
        "latency": summarize_ms(totals),
        "p50_ms": pct(totals, 50),
        "p95_ms": pct(totals, 95),
        "provider_share_median": round(statistics.median(shares), 3),
        "provider_ms_median": ms(statistics.median(r["provider_s"] for r in runs)),
        "provider_ops": runs[0]["provider_ops"],
        "steps_median_ms": {
            s: ms(statistics.median(r["steps_s"].get(s, 0.0) for r in runs)) for s in step_names
        },
        "voice_ids": [r["voice_id"] for r in runs],
        "provider_timing": "httpx transport on the platform's StepFun clients (public `transport` argument)",
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
        wait_live(client, create_persona(client, warm, "warm-up")[0])  # lazy loads, chain deployment
        totals, ids, seen = [], [], []
        for i, clip in enumerate(clips):
            voice_id, t0, _ = create_persona(client, clip, f"Served {i}")
            states = wait_live(client, voice_id)
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


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    inp = results["in_process"]
    rows = [
        {
            "server": "in-process uvicorn",
            "n": inp["latency"]["n"],
            "p50 ms": inp["p50_ms"],
            "p95 ms": inp["p95_ms"],
            "provider ms p50": inp["provider_ms_median"],
            "provider share": inp["provider_share_median"],
            "outside provider": round(1 - inp["provider_share_median"], 3),
        },
        {
            "server": "emulator direct (same calls)",
            "n": results["provider_direct"]["latency"]["n"],
            "p50 ms": results["provider_direct"]["p50_ms"],
            "p95 ms": results["provider_direct"]["p95_ms"],
            "provider share": f"≈{results['provider_share_direct_estimate']} of in-process p50",
        },
    ]
    if "bentoml" in results:
        served, direct = results["bentoml"], results["provider_direct_served_clips"]
        rows += [
            {
                "server": "bentoml serve (polled)",
                "n": served["latency"]["n"],
                "p50 ms": served["p50_ms"],
                "p95 ms": served["p95_ms"],
            },
            {
                "server": "emulator direct (its clips)",
                "n": direct["latency"]["n"],
                "p50 ms": direct["p50_ms"],
                "p95 ms": direct["p95_ms"],
                "provider share": f"≈{round(direct['p50_ms'] / served['p50_ms'], 3)} of bentoml p50",
            },
        ]
    print_table(f"pipeline upload→live ({args.encoder} encoder; provider ops {inp['provider_ops']})", rows)
    print_table("median step times, in-process (ms)", [inp["steps_median_ms"]])
    if "bentoml" in results:
        seen = results["bentoml"]["states_first_seen_ms"]
        states = [st for st in seen[0] if all(st in x for x in seen)]
        print_table(
            "bentoml: median ms from upload start until each state was first seen (20 ms polls)",
            [{st: round(statistics.median(x[st] for x in seen), 1) for st in states}],
        )
    write_results(results_name("pipeline", args.encoder), results)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--personas", type=int, default=8, help="in-process runs (each from a different clip)"
    )
    parser.add_argument("--served-personas", type=int, default=4, help="runs through bentoml serve")
    add_platform_arguments(parser)
    args = parser.parse_args()
    pin_threads(args.threads)
    started = time.perf_counter()
    clips = bench_clips(args.personas + args.served_personas + 1)
    persona_clips, warm_clip = clips[: args.personas], clips[-1]
    served_clips = [clips[(args.personas + i) % (len(clips) - 1)] for i in range(args.served_personas)]
    results: dict[str, Any] = {"args": vars(args), "note": "generated voices; emulator synthesis stands in"}
    with (
        tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp,
        bench_emulator(Path(tmp) / "emulator", EMULATOR_KEY, warm_clip) as emu,
    ):
        print(f"in-process platform: {args.personas} personas …", flush=True)
        running = start_platform([*platform_overrides(Path(tmp) / "inproc", emu), f"encoder={args.encoder}"])
        try:
            results["in_process"] = pipeline_inprocess(
                running, sign_up(running.base_url, "creator"), persona_clips, warm_clip
            )
        finally:
            running.stop()
        ops = results["in_process"]["provider_ops"]
        results["provider_direct"] = provider_direct(emu, persona_clips, ops)
        results["provider_share_direct_estimate"] = round(
            results["provider_direct"]["p50_ms"] / results["in_process"]["p50_ms"], 3
        )
        if not args.skip_bentoml:
            print(f"bentoml serve: {args.served_personas} personas …", flush=True)
            overrides = [*platform_overrides(Path(tmp) / "served", emu), f"encoder={args.encoder}"]
            with bentoml_platform(overrides, Path(tmp) / "served", args.threads) as (base, _):
                results["bentoml"] = pipeline_bentoml(base, sign_up(base, "creator"), served_clips, warm_clip)
            results["provider_direct_served_clips"] = provider_direct(emu, served_clips, ops)
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    report(results, args)


if __name__ == "__main__":
    main()
