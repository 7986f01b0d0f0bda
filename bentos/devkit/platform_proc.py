"""The platform in a process of its own, for tests that kill it: python -m bentos.devkit.platform_proc PORT overrides…"""

from __future__ import annotations

import signal
import sys
import threading

import uvicorn

from bentos.api.app import create_app
from bentos.core.config import load_config
from bentos.core.platform import Platform


def main() -> None:
    port, overrides = int(sys.argv[1]), sys.argv[2:]
    platform = Platform(load_config(overrides)).start(outbox_interval_s=0.05)
    server = uvicorn.Server(
        uvicorn.Config(create_app(platform), host="127.0.0.1", port=port, log_level="warning")
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    stop.wait()
    server.should_exit = True
    thread.join(timeout=10)
    platform.stop()


if __name__ == "__main__":
    main()
