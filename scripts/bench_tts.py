"""`/tts` benchmark: the latency the platform adds over calling the StepFun emulator directly, in total and to
the first audio byte, same text, voice and format both ways.

    .venv/bin/python -m scripts.bench_tts [--tts-calls 30] [--format mp3|wav] [--text "…"] [--skip-bentoml]

In-process (uvicorn in a thread), the platform's async StepFun client is built with a timing httpx transport
(its public `transport` argument): the upstream call as the platform sees it (first audio byte, end) is timed
from outside the client, and the platform's own work is what /tts takes beyond it. Under `bentoml serve`, the
upstream first byte comes from the platform's own histogram on /metrics. Prints tables and writes
bench_results/tts.json. Targets: overhead < 10 ms p50, first byte ≤ 1.1× the direct call.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.harness import EMULATOR_KEY, platform_overrides, start_platform
from scripts.bench_common import (
    ProviderCalls,
    add_platform_arguments,
    bench_clips,
    bench_emulator,
    bentoml_platform,
    live_persona,
    metric_sum_count,
    ms,
    pct,
    pin_threads,
    print_table,
    results_name,
    sign_up,
    time_provider_calls,
    write_results,
)

TTS_TEXT = "Good evening, and welcome to the late news from the harbour."
UPSTREAM_METRIC = (
    "voxpersona_provider_first_byte_seconds"  # the platform's own histogram (bentos.core.metrics)
)


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


def tts_overhead(
    base: str, keys: tuple[str, str], voice_id: str, emu: EmulatorProcess, calls: int, fmt: str, text: str
) -> dict[str, Any]:
    """Same text, voice and format both ways, sequential, interleaved (the order alternates every pair).

    keys: (creator, consumer): the creator reads the persona's StepFun voice id; the consumer calls /tts."""
    creator_key, consumer_key = keys
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {creator_key}"}, timeout=60) as plat:
        step_voice = plat.get(f"/voices/{voice_id}").json()["stepVoiceId"]
    plat_body = {"voice": voice_id, "text": text, "format": fmt}
    # Exactly the body the platform sends upstream (SpeechRequest.payload(): unset fields left out).
    direct_body = {"model": "step-tts-2", "input": text, "voice": step_voice, "response_format": fmt}
    series: dict[str, dict[str, list[float]]] = {
        k: {"ttfb": [], "total": [], "bytes": []} for k in ("platform", "direct")
    }
    with (
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {consumer_key}"}, timeout=60) as plat,
        httpx.Client(headers={"Authorization": f"Bearer {EMULATOR_KEY}"}, timeout=60) as direct,
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
    result: dict[str, Any] = {"format": fmt, "text_chars": len(text), "calls": calls}
    for name, s in series.items():
        result[name] = {
            "ttfb_p50_ms": pct(s["ttfb"], 50),
            "ttfb_p95_ms": pct(s["ttfb"], 95),
            "total_p50_ms": pct(s["total"], 50),
            "total_p95_ms": pct(s["total"], 95),
            "bytes_median": int(statistics.median(s["bytes"])),
        }
    platform, upstream = result["platform"], result["direct"]
    result["overhead_p50_ms"] = round(platform["total_p50_ms"] - upstream["total_p50_ms"], 2)
    result["overhead_p95_ms"] = round(platform["total_p95_ms"] - upstream["total_p95_ms"], 2)
    paired = [a - b for a, b in zip(p["total"], d["total"], strict=True)]
    paired_ttfb = [a - b for a, b in zip(p["ttfb"], d["ttfb"], strict=True)]
    result["overhead_paired_median_ms"] = ms(statistics.median(paired))
    result["ttfb_overhead_paired_median_ms"] = ms(statistics.median(paired_ttfb))
    result["ttfb_ratio_p50"] = round(platform["ttfb_p50_ms"] / upstream["ttfb_p50_ms"], 3)
    result["meets_overhead_target"] = result["overhead_p50_ms"] < 10
    result["meets_ttfb_target"] = result["ttfb_ratio_p50"] <= 1.1
    return result


def upstream_as_seen(calls: ProviderCalls, since: float, tts: dict[str, Any]) -> dict[str, float]:
    """The platform's speech calls to the provider since `since`, timed by its client's transport: median
    first byte and total, and the /tts time beyond them (the platform's own work: auth, lookup, metering)."""
    speech = [c for c in calls.of("speech") if c.start >= since]
    if not speech:
        return {}
    first = statistics.median(c.first_byte - c.start for c in speech)
    total = statistics.median(c.end - c.start for c in speech)
    return {
        "calls": len(speech),
        "upstream_ttfb_ms": ms(first),
        "upstream_total_ms": ms(total),
        "own_work_before_first_byte_ms": round(tts["platform"]["ttfb_p50_ms"] - ms(first), 2),
        "own_work_total_ms": round(tts["platform"]["total_p50_ms"] - ms(total), 2),
    }


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


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    rows = [tts_row("in-process uvicorn", results["in_process"])]
    if "bentoml" in results:
        rows.append(tts_row("bentoml serve", results["bentoml"]))
    print_table(
        f"/tts vs emulator direct ({len(args.text)} chars; targets: overhead <10 ms p50 / TTFB ≤1.1×)", rows
    )
    side = [{"server": "in-process (client transport, medians)", **results["in_process"]["upstream"]}]
    if "upstream_ttfb_mean_ms" in results.get("bentoml", {}):
        side.append(
            {
                "server": "bentoml (/metrics, mean)",
                "upstream_ttfb_ms": results["bentoml"]["upstream_ttfb_mean_ms"],
            }
        )
    print_table("inside the platform during /tts (ms): its upstream StepFun call and its own work", side)
    write_results(results_name("tts", args.encoder), results)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tts-calls", type=int, default=30, help="calls each way, interleaved")
    parser.add_argument("--format", choices=("mp3", "wav"), default="mp3")
    parser.add_argument("--text", default=TTS_TEXT)
    add_platform_arguments(parser)
    args = parser.parse_args()
    pin_threads(args.threads)
    started = time.perf_counter()
    voice_clip, warm_clip = bench_clips(2)[:2]
    results: dict[str, Any] = {"args": vars(args), "note": "emulator synthesis stands in for StepFun"}
    with (
        tempfile.TemporaryDirectory(prefix="bench-tts-") as tmp,
        bench_emulator(Path(tmp) / "emulator", EMULATOR_KEY, warm_clip) as emu,
    ):
        print(f"in-process platform: {args.tts_calls}×2 /tts calls …", flush=True)
        running = start_platform([*platform_overrides(Path(tmp) / "inproc", emu), f"encoder={args.encoder}"])
        try:
            calls = time_provider_calls(running.platform)
            creator, consumer = sign_up(running.base_url, "creator"), sign_up(running.base_url, "consumer")
            voice = live_persona(running.base_url, creator, voice_clip, "TTS voice")
            since = time.perf_counter()
            tts = tts_overhead(
                running.base_url, (creator, consumer), voice, emu, args.tts_calls, args.format, args.text
            )
            tts["upstream"] = upstream_as_seen(calls, since, tts)
            results["in_process"] = tts
        finally:
            running.stop()
        if not args.skip_bentoml:
            print("bentoml serve: starting …", flush=True)
            overrides = [*platform_overrides(Path(tmp) / "served", emu), f"encoder={args.encoder}"]
            with bentoml_platform(overrides, Path(tmp) / "served", args.threads) as (base, _):
                creator, consumer = sign_up(base, "creator"), sign_up(base, "consumer")
                # The same reference clip as in-process: the emulator answers `duplicated`, so both servers
                # are compared on the same synthesis.
                voice = live_persona(base, creator, voice_clip, "TTS voice")
                before = metric_sum_count(base, UPSTREAM_METRIC)
                tts = tts_overhead(
                    base, (creator, consumer), voice, emu, args.tts_calls, args.format, args.text
                )
                after = metric_sum_count(base, UPSTREAM_METRIC)
                if after[1] > before[1]:
                    tts["upstream_ttfb_mean_ms"] = ms((after[0] - before[0]) / (after[1] - before[1]))
                results["bentoml"] = tts
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    report(results, args)


if __name__ == "__main__":
    main()
