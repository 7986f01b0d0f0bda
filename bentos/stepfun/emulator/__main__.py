"""`python -m bentos.stepfun.emulator --host 127.0.0.1 --port PORT --state-dir DIR [--api-key KEY ...]`."""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn

from ..settings import EMULATOR_DEV_KEY, EmulatorSettings
from .app import create_app


def main(argv: list[str] | None = None) -> None:
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
        "--cache-dir", type=Path, default=None, help="base-voice statistics (default: state-dir/cache)"
    )
    p.add_argument(
        "--max-candidates", type=int, default=0, help="base voices considered per language (0: all)"
    )
    args = p.parse_args(argv)
    settings = EmulatorSettings(
        host=args.host, port=args.port, state_dir=args.state_dir,
        api_keys=tuple(args.api_keys or [EMULATOR_DEV_KEY]),
        rpm=args.rpm, concurrency=args.concurrency, latency_ms=args.latency_ms, error_rate=args.error_rate,
    )  # fmt: skip
    app = create_app(settings, cache_dir=args.cache_dir, max_candidates=args.max_candidates)
    # access_log off: request lines would be noise in the platform's logs (and carry no key anyway).
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
