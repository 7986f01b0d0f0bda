"""Long-form speech benchmark: time to the first audio byte of `/tts` for a short text (200 characters, one provider
call) and a long one (5,000 characters: split at sentences, five parts), and the time to the last byte.

    .venv/bin/python -m scripts.bench_longform [--calls 5] [--format mp3|wav|pcm] [--threads 1]

In-process platform (uvicorn in a thread) against a loopback emulator, the same persona and format both ways; the
long text never waits for more than its first part before its first byte. Prints a table and writes
bench_results/longform.json. Target: first byte of 5,000 characters within 1.2× that of 200.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bentos.core.longform import split_text
from bentos.devkit.harness import EMULATOR_KEY, platform_overrides, start_platform
from scripts.bench_common import (
    bench_clips,
    bench_emulator,
    live_persona,
    ms,
    pin_threads,
    print_table,
    sign_up,
    write_results,
)

SENTENCES = (
    "The river ran quietly past the old mill, and nobody remembered when its wheel had last turned. ",
    "Children played on the banks every summer while their parents talked in the shade. ",
    "今天的天气很好，我们一起去河边散步吧。",
    "In the evening the lamps came on one by one along the water. ",
)


def text_of(chars: int) -> str:
    """About `chars` characters of mixed English and Chinese sentences, cut at a sentence end."""
    text = ""
    i = 0
    while len(text) < chars:
        text += SENTENCES[i % len(SENTENCES)]
        i += 1
    cut = max(text.rfind(". ", 0, chars), text.rfind("。", 0, chars))
    return text[: cut + 1].strip()


def timed_call(client: httpx.Client, voice: str, text: str, fmt: str) -> tuple[float, float, int]:
    """(seconds to the first audio byte, seconds to the last, bytes)."""
    start = time.perf_counter()
    first = 0.0
    size = 0
    with client.stream("POST", "/tts", json={"voice": voice, "text": text, "format": fmt}) as response:
        response.raise_for_status()
        for chunk in response.iter_raw():
            if chunk and not first:
                first = time.perf_counter() - start
            size += len(chunk)
    return first, time.perf_counter() - start, size


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=5, help="timed calls per text length")
    parser.add_argument("--format", choices=("mp3", "wav", "pcm"), default="mp3")
    parser.add_argument("--lengths", type=int, nargs="+", default=[200, 5000])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    pin_threads(args.threads)
    warm_clip, voice_clip = bench_clips(2)[:2]
    rows: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        bench_emulator(Path(tmp) / "emulator", EMULATOR_KEY, warm_clip) as emu,
    ):
        running = start_platform([*platform_overrides(Path(tmp) / "inproc", emu), "encoder=seeded"])
        try:
            creator, consumer = sign_up(running.base_url, "creator"), sign_up(running.base_url, "consumer")
            voice = live_persona(running.base_url, creator, voice_clip, "Long-form voice")
            headers = {"Authorization": f"Bearer {consumer}"}
            server = running.platform.server
            with httpx.Client(base_url=running.base_url, headers=headers, timeout=600) as client:
                timed_call(client, voice, text_of(200), args.format)  # warm: the voice's first synthesis
                for chars in args.lengths:
                    text = text_of(chars)
                    runs = [timed_call(client, voice, text, args.format) for _ in range(args.calls)]
                    firsts, lasts = [r[0] for r in runs], [r[1] for r in runs]
                    rows.append(
                        {
                            "chars": len(text),
                            "parts": len(split_text(text, server.tts_max_chars, server.tts_long_first_chars)),
                            "calls": len(runs),
                            "first_byte_p50_ms": ms(statistics.median(firsts)),
                            "first_byte_max_ms": ms(max(firsts)),
                            "last_byte_p50_ms": ms(statistics.median(lasts)),
                            "bytes": runs[0][2],
                        }
                    )
        finally:
            running.stop()
    ratio = (
        rows[-1]["first_byte_p50_ms"] / rows[0]["first_byte_p50_ms"] if rows[0]["first_byte_p50_ms"] else 0.0
    )
    print_table(f"/tts time to first byte ({args.format}, in-process platform, emulator)", rows)
    print(f"\nfirst byte {rows[-1]['chars']} vs {rows[0]['chars']} chars: {ratio:.2f}× (target ≤ 1.2×)")
    write_results(
        "longform",
        {"format": args.format, "rows": rows, "first_byte_ratio": round(ratio, 3), "target_ratio": 1.2},
    )


if __name__ == "__main__":
    main()
