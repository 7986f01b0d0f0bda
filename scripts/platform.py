"""`make run`: the whole platform on 127.0.0.1 — StepFun emulator (unless STEP_API_KEY is set), the BentoML
services (API + encoder; pipeline workers and the embedded chain run inside), and the Streamlit front end.

    python -m scripts.platform [hydra overrides…]      e.g. db=postgres queue=redis encoder=ge2e

Prints the URLs and a ready-made API key for a demo account; Ctrl-C stops everything it started.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from hydra.utils import instantiate

from bentos.processes import terminate
from bentos.runtime import load_config
from bentos.stepfun.emulator.process import EmulatorProcess

REPO = Path(__file__).resolve().parent.parent


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def _wait(what: str, ok: Callable[[], bool], procs: list[subprocess.Popen[bytes]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ok():
            return
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{what}: a process exited early with code {p.returncode}")
        time.sleep(0.2)
    raise TimeoutError(f"{what} not ready within {timeout:.0f}s")


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def main(argv: list[str]) -> int:
    overrides = list(argv)
    if os.environ.get("STEP_API_KEY") and not any(o.startswith("provider=") for o in overrides):
        overrides.append("provider=stepfun")
    cfg = load_config(overrides)
    server = instantiate(cfg.server)
    provider = instantiate(cfg.provider)
    encoder_name = next((o.split("=", 1)[1] for o in overrides if o.startswith("encoder=")), "seeded")
    env = {
        **os.environ,
        "VOXPERSONA_OVERRIDES": " ".join(overrides),
        "VOXPERSONA_ENCODER": encoder_name,
        "PYTHONUNBUFFERED": "1",
    }
    if _port_open(server.host, server.port):
        print(f"port {server.port} is already in use: is the platform already running?", file=sys.stderr)
        return 1

    emulator: EmulatorProcess | None = None
    api: subprocess.Popen[bytes] | None = None
    frontend: subprocess.Popen[bytes] | None = None
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    try:
        if provider.is_emulator:
            emulator = EmulatorProcess.from_settings(provider.emulator).start()
            print(f"StepFun emulator  {emulator.base_url}")
        else:
            print(f"StepFun           {provider.base_url} (key from STEP_API_KEY)")
        api = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bentoml",
                "serve",
                "bentos.platform_service:PersonaPlatform",
                "--host",
                server.host,
                "--port",
                str(server.port),
            ],
            cwd=REPO,
            env=env,
        )
        base = f"http://{server.host}:{server.port}"
        _wait("the platform", lambda: _ready(f"{base}/readyz"), [api], timeout=300)
        demo = httpx.post(
            f"{base}/accounts",
            json={
                "name": "Demo Creator",
                "email": f"demo-{secrets.token_hex(3)}@voxpersona.local",
                "role": "creator",
                "payoutWallet": "0x" + secrets.token_hex(20),
            },
            timeout=30,
        ).json()
        key = demo["apiKey"]
        frontend = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(REPO / "streamlit_app" / "app.py"),
                "--server.address",
                server.host,
                "--server.port",
                str(server.frontend_port),
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
                "--client.toolbarMode",
                "minimal",
            ],
            cwd=REPO,
            env={**env, "VOXPERSONA_API_URL": base, "VOXPERSONA_API_KEY": key},
            stdout=subprocess.DEVNULL,
        )
        _wait("the front end", lambda: _port_open(server.host, server.frontend_port), [frontend], timeout=120)
        print("\nVoxPersona is running:")
        print(f"  API        {base}   (OpenAPI docs: {base}/docs, health: {base}/health)")
        print(f"  Front end  http://{server.host}:{server.frontend_port}")
        print(f"  Demo API key (creator account, shown once): {key}")
        print("Ctrl-C stops everything.", flush=True)
        while not stopping and api.poll() is None and frontend.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        print("\nstopping…", flush=True)
        terminate(frontend, 20)
        terminate(api, 20)
        if emulator is not None:
            emulator.stop()
        deadline = time.monotonic() + 20
        while _port_open(server.host, server.port) and time.monotonic() < deadline:
            time.sleep(0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
