"""Benchmark the StepFun emulator and client: clone similarity (adapted vs unadapted base voice), synthesis
real-time factor, client overhead per call, and a fresh emulator's first clone with an empty and with a warmed
voice-engine cache. Prints a table and writes bench_results/stepfun.json.

Generated speakers are far more consistent than real uploads: these numbers rank versions of the engine,
they do not predict how a real voice would sound. Each reference's own base voice is held out.

    .venv/bin/python scripts/bench_stepfun.py [--speakers 6] [--calls 50]
    .venv/bin/python -m scripts.bench_stepfun --first-clone-only   # → bench_results/stepfun-first-clone.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np
import soundfile as sf
import torch

from bentos.devkit.emulator_process import EmulatorProcess
from bentos.stepfun import ProviderSettings, SpeechRequest, StepFunClient
from bentos.stepfun.emulator.engine import SpeakerEmbedder, VoiceEngine
from encoders.synthetic import available_voices, synthesize

REFERENCE = "My name is Alex, and this short recording lets the service learn how my voice sounds."
TEST = "Please call me back tomorrow morning, I will be waiting near the station."
# 5–10 s with flite's awb, as an upload must be.
CLONE_REFERENCE = "This is a reference recording of my voice, spoken clearly for cloning purposes today."
SPEAKERS = ("flite:kal", "flite:awb", "flite:rms", "flite:slt", "festival:ked_diphone",
            "festival:cmu_us_slt_arctic_hts", "espeak:en-us+f2", "espeak:en-us+m5")  # fmt: skip


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def similarity(engine: VoiceEngine, n_speakers: int) -> tuple[list[dict[str, object]], float]:
    voices = {v.id: v for v in available_voices()}
    rows, synth_s, audio_s = [], 0.0, 0.0
    for speaker in [s for s in SPEAKERS if s in voices][:n_speakers]:
        ref, rate = synthesize(voices[speaker], REFERENCE)
        ref_emb = SpeakerEmbedder.embed(ref, rate)
        profile = engine.clone_profile(ref, rate, exclude=frozenset({speaker}))
        base_audio, base_rate = synthesize(voices[profile.base["en"]], TEST)
        request = SpeechRequest(model="step-tts-2", input=TEST, voice="bench")
        start = time.perf_counter()
        clone_audio, clone_rate = engine.synthesize(profile, TEST, request)
        synth_s += time.perf_counter() - start
        audio_s += len(clone_audio) / clone_rate
        rows.append({
            "speaker": speaker, "base_voice": profile.base["en"],
            "unadapted": cosine(ref_emb, SpeakerEmbedder.embed(base_audio, base_rate)),
            "adapted": cosine(ref_emb, SpeakerEmbedder.embed(clone_audio, clone_rate)),
            "warp": round(profile.warp, 3), "envelope_strength": profile.envelope_strength,
        })  # fmt: skip
    return rows, synth_s / audio_s


def client_overhead(calls: int) -> dict[str, float]:
    import httpx

    with tempfile.TemporaryDirectory() as tmp, EmulatorProcess(Path(tmp), rpm=0, concurrency=0) as emu:
        settings = ProviderSettings(base_url=emu.base_url, api_key="emulator-local-key")
        raw_ms, client_ms = [], []
        with (
            httpx.Client(headers={"Authorization": "Bearer emulator-local-key"}) as raw,
            StepFunClient(settings) as c,
        ):
            for _ in range(5):  # warm both connection pools
                raw.get(f"{emu.base_url}/audio/system_voices")
                c.system_voices()
            for _ in range(calls):
                t = time.perf_counter()
                raw.get(f"{emu.base_url}/audio/system_voices").json()
                raw_ms.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                c.system_voices()
                client_ms.append((time.perf_counter() - t) * 1000)
    q = statistics.quantiles
    return {
        "raw_median_ms": statistics.median(raw_ms), "raw_p95_ms": q(raw_ms, n=20)[18],
        "client_median_ms": statistics.median(client_ms), "client_p95_ms": q(client_ms, n=20)[18],
        "overhead_median_ms": statistics.median(client_ms) - statistics.median(raw_ms),
    }  # fmt: skip


def _first_clone_s(state_dir: Path, cache_dir: Path, reference: bytes) -> float:
    """Seconds from EmulatorProcess(...).start() on an empty state folder to the first create_voice answer."""
    start = time.perf_counter()
    with EmulatorProcess(state_dir, rpm=0, concurrency=0, cache_dir=cache_dir, start_timeout_s=120) as emu:
        settings = ProviderSettings.model_validate(
            {
                "base_url": emu.base_url,
                "api_key": "emulator-local-key",
                "read_timeout_s": 900,
                "max_attempts": 1,
            }
        )
        with StepFunClient(settings) as c:
            c.create_voice(c.upload_file(reference, "reference.wav").id)
        return time.perf_counter() - start


def first_clone() -> dict[str, float]:
    """A fresh emulator (new, empty state folder, every installed base voice) cloning its first voice: cold,
    with an empty voice-engine cache, and warm, after `--warm-cache` (what `make setup` runs) filled it."""
    voice = next(v for v in available_voices() if v.id == "flite:awb")
    samples, rate = synthesize(voice, CLONE_REFERENCE)
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype="PCM_16")
    with tempfile.TemporaryDirectory(prefix="bench-first-clone-") as tmp:
        root = Path(tmp)
        cold = _first_clone_s(root / "cold-state", root / "cold-cache", buf.getvalue())
        start = time.perf_counter()
        warm_cmd = ["-m", "bentos.stepfun.emulator", "--warm-cache", "--cache-dir", str(root / "warm-cache")]
        subprocess.run([sys.executable, *warm_cmd], check=True, capture_output=True)
        warm_cache_s = time.perf_counter() - start
        warm = _first_clone_s(root / "warm-state", root / "warm-cache", buf.getvalue())
    return {"cold_s": cold, "warm_s": warm, "warm_cache_s": warm_cache_s}


def print_first_clone(fc: dict[str, float]) -> None:
    print(f"\n{'first clone, fresh emulator (start → create_voice answer)':58} {'seconds':>8}")
    print(f"{'cold: empty voice-engine cache':58} {fc['cold_s']:8.1f}")
    print(f"{'warm: after --warm-cache (make setup)':58} {fc['warm_s']:8.1f}")
    print(f"{'  --warm-cache itself (once per machine)':58} {fc['warm_cache_s']:8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--speakers", type=int, default=6)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument(
        "--out", type=Path, default=None, help="default: bench_results/stepfun[-first-clone].json"
    )
    parser.add_argument("--first-clone-only", action="store_true", help="only the first-clone figures")
    args = parser.parse_args()
    torch.set_num_threads(1)  # pinned: comparable numbers across runs and machines

    if args.first_clone_only:
        fc = first_clone()
        print_first_clone(fc)
        out = args.out or Path("bench_results/stepfun-first-clone.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"first_clone": fc}, indent=2))
        print(f"wrote {out}")
        return
    args.out = args.out or Path("bench_results/stepfun.json")

    with tempfile.TemporaryDirectory() as cache:
        rows, rtf = similarity(VoiceEngine(Path(cache)), args.speakers)
    overhead = client_overhead(args.calls)
    fc = first_clone()

    print(f"{'reference speaker':34} {'base voice (held out self)':30} {'unadapted':>9} {'adapted':>8}")
    for r in rows:
        print(f"{r['speaker']!s:34} {r['base_voice']!s:30} {r['unadapted']:9.3f} {r['adapted']:8.3f}")
    mean_u = statistics.mean(float(r["unadapted"]) for r in rows)  # type: ignore[arg-type]
    mean_a = statistics.mean(float(r["adapted"]) for r in rows)  # type: ignore[arg-type]
    print(f"{'mean':65} {mean_u:9.3f} {mean_a:8.3f}")
    print(f"\nemulator synthesis real-time factor: {rtf:.3f} (1 CPU thread)")
    o = overhead
    print(
        f"client per call (GET system_voices, n={args.calls}): median {o['client_median_ms']:.2f} ms, "
        f"p95 {o['client_p95_ms']:.2f} ms; raw httpx median {o['raw_median_ms']:.2f} ms, "
        f"overhead {o['overhead_median_ms']:.2f} ms"
    )
    print_first_clone(fc)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "similarity": rows,
        "mean_unadapted": mean_u,
        "mean_adapted": mean_a,
        "synthesis_rtf": rtf,
        "client": overhead,
        "first_clone": fc,
        "note": "generated voices; ranks engine versions, does not predict field quality",
    }
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
