"""Encoder-service throughput through the platform: POST /embeddings from sequential and concurrent clients
(where the SpeakerEncoder service's adaptive batching forms batches), against the encoder called directly.

    .venv/bin/python -m scripts.bench_embed_service [--embed-requests 64] [--concurrency 16]
                                                    [--encoder seeded|ge2e|fusion] [--skip-bentoml]

In-process (uvicorn in a thread) the encoder runs in the platform's process; under `bentoml serve` it is the
SpeakerEncoder service, reached as a BentoML dependency. Prints a table and writes
bench_results/embed_service.json (embed_service-<encoder>.json for a non-default encoder).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bentos.core.config import load_config
from bentos.core.encoder_runtime import EncoderChoice, EncoderRuntime
from bentos.devkit.harness import EMULATOR_KEY, platform_overrides, start_platform
from encoders import load_audio
from encoders.voices import VoiceClip
from scripts.bench_common import (
    add_platform_arguments,
    bench_clips,
    bench_emulator,
    bentoml_platform,
    ms,
    pin_threads,
    print_table,
    results_name,
    sign_up,
    summarize_ms,
    upload_files,
    write_results,
)

FILES = 16  # distinct uploads the requests cycle through


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
    """`requests` POST /embeddings from `concurrency` clients at once (after 4 uncounted warm-up calls)."""
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


def encoder_direct(
    encoder: str, clips: list[VoiceClip], requests: int, batch: int, threads: int
) -> dict[str, Any]:
    """EncoderRuntime.embed_arrays in this process, on `threads` torch threads: one clip per call, and batches
    of `batch`; plus what decode + preprocess (done by the platform per /embeddings request, before the
    encoder service) costs."""
    choice = EncoderChoice.from_config(load_config([f"encoder={encoder}"]))
    runtime = EncoderRuntime.from_choice(dataclasses.replace(choice, threads=threads))
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
        "batch": batch,
        "one_by_one_clips_per_s": round(single, 2),
        "batched_clips_per_s": round(batched, 2),
        "preprocess_ms_per_clip": ms(preprocess_s),
    }


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    rows = []
    for label, key in (
        ("in-process uvicorn, local encoder", "in_process_concurrent"),
        ("bentoml, sequential client (batch of 1)", "bentoml_sequential"),
        ("bentoml, concurrent clients (adaptive batching)", "bentoml_concurrent"),
    ):
        if key in results:
            e = results[key]
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
    d = results["direct"]
    rows += [
        {
            "path": "EncoderRuntime.embed_arrays, one by one",
            "clients": 1,
            "clips/s": d["one_by_one_clips_per_s"],
        },
        {
            "path": f"EncoderRuntime.embed_arrays, {d['batch']} per call",
            "clients": 1,
            "clips/s": d["batched_clips_per_s"],
        },
    ]
    print_table(
        f"embeddings throughput ({args.encoder}; decode+preprocess alone {d['preprocess_ms_per_clip']} ms/clip; "
        f"concurrent-phase batches {results.get('bentoml_batch_metric')})",
        rows,
    )
    write_results(results_name("embed_service", args.encoder), results)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--embed-requests", type=int, default=64, help="/embeddings requests per mode")
    parser.add_argument("--concurrency", type=int, default=16)
    add_platform_arguments(parser)
    args = parser.parse_args()
    pin_threads(args.threads)
    started = time.perf_counter()
    clips = bench_clips(FILES)[:FILES]
    results: dict[str, Any] = {"args": vars(args)}
    with (
        tempfile.TemporaryDirectory(prefix="bench-embed-") as tmp,
        bench_emulator(Path(tmp) / "emulator", EMULATOR_KEY, clips[0]) as emu,
    ):
        print(f"in-process platform: {args.embed_requests} /embeddings …", flush=True)
        running = start_platform([*platform_overrides(Path(tmp) / "inproc", emu), f"encoder={args.encoder}"])
        try:
            key = sign_up(running.base_url, "creator")
            file_ids = upload_files(running.base_url, key, clips)
            results["in_process_concurrent"] = embed_load(
                running.base_url, key, file_ids, args.embed_requests, args.concurrency
            )
        finally:
            running.stop()
        if not args.skip_bentoml:
            print("bentoml serve: starting …", flush=True)
            overrides = [*platform_overrides(Path(tmp) / "served", emu), f"encoder={args.encoder}"]
            with bentoml_platform(overrides, Path(tmp) / "served", args.threads) as (base, _):
                key = sign_up(base, "creator")
                file_ids = upload_files(base, key, clips)
                results["bentoml_sequential"] = embed_load(base, key, file_ids, args.embed_requests, 1)
                before = batch_size_metric(base) or {"batches": 0.0, "clips": 0.0}
                results["bentoml_concurrent"] = embed_load(
                    base, key, file_ids, args.embed_requests, args.concurrency
                )
                after = batch_size_metric(base)
                if after and after["batches"] > before["batches"]:
                    # this phase only (its 4 sequential warm-up calls included)
                    n_batches, n_clips = (
                        after["batches"] - before["batches"],
                        after["clips"] - before["clips"],
                    )
                    results["bentoml_batch_metric"] = {
                        "batches": n_batches,
                        "clips": n_clips,
                        "mean_batch": round(n_clips / n_batches, 2),
                    }
    results["direct"] = encoder_direct(
        args.encoder, clips, args.embed_requests, args.concurrency, args.threads
    )
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    report(results, args)


if __name__ == "__main__":
    main()
