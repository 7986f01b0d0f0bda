"""`python -m bentos.stepfun.emulator --host 127.0.0.1 --port PORT --state-dir DIR [--api-key KEY ...]`.

`python -m bentos.stepfun.emulator --warm-cache [--cache-dir DIR]` measures the installed base voices into the
voice engine's cache (what `make setup` runs once) and exits: a fresh emulator's first clone then reads them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from ..settings import EMULATOR_DEV_KEY, EmulatorSettings

THREADS_ENV = "VOXPERSONA_EMULATOR_THREADS"


def _limit_threads(threads: int) -> None:
    """One torch thread by default: GE2E's LSTM on 2 busy cores takes ~1 s per embedding with torch's default
    two spinning threads against ~0.1 s with one (measured), and requests run in threads of their own anyway."""
    import torch

    torch.set_num_threads(threads)


def warm_cache(cache_dir: Path | None, max_candidates: int, threads: int) -> int:
    from .engine import VoiceEngine

    start = time.perf_counter()
    engine = VoiceEngine(cache_dir, max_candidates)
    voices = [*engine.candidates("en"), *engine.candidates("cmn")]
    before = engine.cache_info()
    missing = len(voices) - sum(1 for v in voices if engine.has_stats(v))
    if missing:
        _limit_threads(threads)
        print(
            f"voice engine: measuring {missing} of {len(voices)} base voices into {engine.cache.path} "
            f"(cache was {before['state']}) …",
            flush=True,
        )
    info = engine.warm()
    print(
        f"voice engine cache {info['path']}: {len(voices)} base voices, {info['computed']} measured now, "
        f"{time.perf_counter() - start:.1f} s"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bentos.stepfun.emulator", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--state-dir", type=Path, default=Path("var/stepfun-emulator"))
    p.add_argument("--api-key", action="append", dest="api_keys", help="accepted key (repeatable)")
    p.add_argument("--rpm", type=int, default=10, help="requests per minute per key (V0 tier: 10; 0: off)")
    p.add_argument(
        "--concurrency", type=int, default=5, help="in-flight requests per key (V0 tier: 5; 0: off)"
    )
    p.add_argument("--latency-ms", type=int, default=0)
    p.add_argument("--error-rate", type=float, default=0.0)
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="base-voice statistics (default: $VOXPERSONA_VOICE_CACHE or ~/.cache/voxpersona/voice-engine)",
    )
    p.add_argument(
        "--max-candidates", type=int, default=0, help="base voices considered per language (0: all)"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get(THREADS_ENV, "1")),
        help=f"torch threads (default: ${THREADS_ENV} or 1)",
    )
    p.add_argument(
        "--warm-cache", action="store_true", help="measure the base voices into the cache, then exit"
    )
    args = p.parse_args(argv)
    if args.warm_cache:
        return warm_cache(args.cache_dir, args.max_candidates, max(1, args.threads))
    _limit_threads(max(1, args.threads))

    import uvicorn

    from .app import create_app

    settings = EmulatorSettings(
        host=args.host, port=args.port, state_dir=args.state_dir,
        api_keys=tuple(args.api_keys or [EMULATOR_DEV_KEY]),
        rpm=args.rpm, concurrency=args.concurrency, latency_ms=args.latency_ms, error_rate=args.error_rate,
        cache_dir=args.cache_dir,
    )  # fmt: skip
    app = create_app(settings, max_candidates=args.max_candidates)
    # access_log off: request lines would be noise in the platform's logs (and carry no key anyway).
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
