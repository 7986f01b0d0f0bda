"""Memory benchmark: RSS and USS of every process of the `bentoml serve` tree (supervisor, platform worker,
encoder worker) once ready and again after a small workload; and, unless skipped, the in-process platform
(this process) before and after the same workload.

    .venv/bin/python -m scripts.bench_memory [--personas 2] [--tts-calls 5] [--embed-requests 16]
                                             [--encoder seeded|ge2e|fusion] [--skip-inprocess]

The workload: `--personas` personas to live, `--tts-calls` /tts calls, `--embed-requests` /embeddings. Prints a
table and writes bench_results/memory.json (memory-<encoder>.json for a non-default encoder). USS is what
would be freed if the process exited: the honest per-process figure when workers share pages.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from bentos.devkit.harness import EMULATOR_KEY, platform_overrides, start_platform
from encoders.voices import VoiceClip
from scripts.bench_common import (
    add_platform_arguments,
    bench_clips,
    bench_emulator,
    bentoml_platform,
    live_persona,
    pin_threads,
    print_table,
    results_name,
    sign_up,
    tree_memory,
    upload_files,
    write_results,
)

TTS_TEXT = "Good evening, and welcome to the late news from the harbour."


def workload(base: str, clips: list[VoiceClip], tts_calls: int, embed_requests: int) -> None:
    """Personas from `clips` to live, then /tts and /embeddings calls: every part of the platform loaded."""
    creator, consumer = sign_up(base, "creator"), sign_up(base, "consumer")
    voices = [live_persona(base, creator, clip, f"Memory {i}") for i, clip in enumerate(clips)]
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {consumer}"}, timeout=60) as client:
        for i in range(tts_calls):
            r = client.post(
                "/tts", json={"voice": voices[i % len(voices)], "text": TTS_TEXT, "format": "mp3"}
            )
            if r.status_code != 200:
                raise RuntimeError(f"POST /tts: {r.status_code} {r.text[:300]}")
    file_ids = upload_files(base, creator, clips)
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {creator}"}, timeout=120) as client:
        for i in range(embed_requests):
            r = client.post("/embeddings", json={"fileId": file_ids[i % len(file_ids)]})
            if r.status_code != 200:
                raise RuntimeError(f"POST /embeddings: {r.status_code} {r.text[:300]}")


def rss_mb() -> float:
    return round(psutil.Process().memory_info().rss / 2**20, 1)


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    rows: list[dict[str, Any]] = []
    if "in_process" in results:
        m = results["in_process"]
        rows += [
            {"what": "this process before the platform started", "rss MB": m["baseline_rss_mb"]},
            {"what": "in-process platform, ready (this process)", "rss MB": m["ready_rss_mb"]},
            {"what": "in-process platform, after the workload", "rss MB": m["after_rss_mb"]},
        ]
    for phase in ("ready", "after"):
        if phase not in results.get("bentoml", {}):
            continue
        tree = results["bentoml"][phase]
        label = f"boot {results['bentoml']['boot_s']} s" if phase == "ready" else "after the workload"
        rows.append(
            {"what": f"bentoml serve tree, {label}", "rss MB": tree["rss_mb"], "uss MB": tree["uss_mb"]}
        )
        rows += [
            {"what": f"  {p['role']} (pid {p['pid']})", "rss MB": p["rss_mb"], "uss MB": p["uss_mb"]}
            for p in tree["processes"]
        ]
    print_table(
        f"memory ({args.encoder} encoder; workload {args.personas} personas, {args.tts_calls} /tts, "
        f"{args.embed_requests} /embeddings)",
        rows,
    )
    write_results(results_name("memory", args.encoder), results)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--personas", type=int, default=2)
    parser.add_argument("--tts-calls", type=int, default=5)
    parser.add_argument("--embed-requests", type=int, default=16)
    parser.add_argument("--skip-inprocess", action="store_true", help="the bentoml serve tree only")
    add_platform_arguments(parser)
    args = parser.parse_args()
    if args.skip_inprocess and args.skip_bentoml:
        parser.error("nothing to measure")
    pin_threads(args.threads)
    started = time.perf_counter()
    clips = bench_clips(args.personas + 1)
    persona_clips, warm_clip = clips[: args.personas], clips[-1]
    results: dict[str, Any] = {"args": vars(args)}
    with (
        tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp,
        bench_emulator(Path(tmp) / "emulator", EMULATOR_KEY, warm_clip) as emu,
    ):
        if not args.skip_bentoml:
            print("bentoml serve: starting …", flush=True)
            overrides = [*platform_overrides(Path(tmp) / "served", emu), f"encoder={args.encoder}"]
            t_boot = time.perf_counter()
            with bentoml_platform(overrides, Path(tmp) / "served", args.threads) as (base, pid):
                ready = {"boot_s": round(time.perf_counter() - t_boot, 1), "ready": tree_memory(pid)}
                workload(base, persona_clips, args.tts_calls, args.embed_requests)
                results["bentoml"] = {**ready, "after": tree_memory(pid)}
        if not args.skip_inprocess:
            # After bentoml, so this process's own allocations stay out of the tree's figures.
            print("in-process platform …", flush=True)
            baseline = rss_mb()
            running = start_platform(
                [*platform_overrides(Path(tmp) / "inproc", emu), f"encoder={args.encoder}"]
            )
            try:
                ready_rss = rss_mb()
                workload(running.base_url, persona_clips, args.tts_calls, args.embed_requests)
                results["in_process"] = {
                    "baseline_rss_mb": baseline,
                    "ready_rss_mb": ready_rss,
                    "after_rss_mb": rss_mb(),
                }
            finally:
                running.stop()
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    report(results, args)


if __name__ == "__main__":
    main()
