"""Intake benchmark: decode + validate + preprocess + seeded embed per clip, WAV and MP3, one thread.

    python -m scripts.bench_intake [--speakers 12 --utterances 6]

Prints a table and writes bench_results/intake.json. Target: < 30 ms median per 8 s clip on one core.
"""

from __future__ import annotations

import argparse
import time

from encoders import AudioSettings, load_audio
from encoders.seeded import SeededEncoder
from encoders.voices import make_voices
from scripts.bench_common import pin_threads, print_table, summarize_ms, write_results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--speakers", type=int, default=12)
    parser.add_argument("--utterances", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    pin_threads(1)
    voices = make_voices(speakers=args.speakers, utterances=args.utterances)
    settings, encoder = AudioSettings(), SeededEncoder()
    load_audio(voices.clips[0].wav_path, settings)  # warm-up: loads the VAD model once
    rows, raw = [], {}
    for fmt in ("wav", "mp3"):
        times, per_8s = [], []
        for _ in range(args.repeats):
            for clip in voices.clips:
                data = (clip.wav_path if fmt == "wav" else clip.mp3_path).read_bytes()
                start = time.perf_counter()
                audio = load_audio(data, settings)
                encoder.embed(audio)
                elapsed = time.perf_counter() - start
                times.append(elapsed)
                per_8s.append(elapsed * 8.0 / audio.source_duration)
        stats, scaled = summarize_ms(times), summarize_ms(per_8s)
        raw[fmt] = {"per_clip": stats, "per_8s_clip": scaled}
        rows.append(
            {
                "format": fmt,
                "clips": stats["n"],
                "median ms": stats["median_ms"],
                "p95 ms": stats["p95_ms"],
                "median ms / 8 s": scaled["median_ms"],
                "p95 ms / 8 s": scaled["p95_ms"],
            }
        )
    print_table("intake: decode + validate + preprocess + seeded embed (1 thread)", rows)
    write_results("intake", {"target_median_ms_per_8s": 30, "results": raw})


if __name__ == "__main__":
    main()
