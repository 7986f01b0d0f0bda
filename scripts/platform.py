"""`make run`: the whole platform on 127.0.0.1 — StepFun emulator (unless STEP_API_KEY is set), the durable dev
chain (anvil, state under data_dir/chain; unless a `chain=` override is given), the BentoML services (API +
encoder; pipeline workers and the chain outbox run inside), and the Streamlit front end.

    python -m scripts.platform [hydra overrides…]      e.g. db=postgres queue=redis encoder=ge2e

Prints the URLs and a demo creator's email, password and API key; the front end starts signed out, its "Try the
demo creator" button signs in with that email and password. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from hydra.utils import instantiate

from bentos.chain.settings import AnvilChainSettings
from bentos.core.config import load_config
from bentos.devkit.anvil import AnvilNode, ensure_anvil, start_anvil
from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.evm_node import DevNodeError
from bentos.devkit.processes import bentoml_serve, port_open, terminate, wait_port_closed, wait_ready
from bentos.stepfun.settings import TierSettings
from scripts import admin

REPO = Path(__file__).resolve().parent.parent
# make run's chain: anvil with a state file, so personas and balances survive a restart. configs/config.yaml keeps
# `chain: tester` (in-process, ephemeral) for the tests and in-process tools; `chain=tester` here still works.
DEFAULT_CHAIN = "chain=anvil"


DEMO_CREDIT = 100_000_000  # ¥100


def with_default_chain(overrides: list[str]) -> list[str]:
    """The overrides make run uses: `chain=anvil` added unless the caller chose a chain group."""
    if any(o.split("=", 1)[0].lstrip("+~") == "chain" for o in overrides):
        return list(overrides)
    return [*overrides, DEFAULT_CHAIN]


def start_dev_chain(chain: AnvilChainSettings) -> AnvilNode:
    """Install (once) and start the anvil node the `chain=anvil` settings describe."""
    if port_open(chain.host, chain.port):
        raise DevNodeError(
            f"port {chain.port} is already in use: another chain node? (chain.port=… picks another port)"
        )
    return start_anvil(
        ensure_anvil(),
        chain.port,
        chain.state_file,
        host=chain.host,
        state_interval_s=chain.state_interval_s,
        chain_id=chain.chain_id,
    )


def _wait_listening(what: str, host: str, port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not port_open(host, port):
        if proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited early with code {proc.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready within {timeout:.0f}s")
        time.sleep(0.2)


def _tier_text(tier: TierSettings | None) -> str:
    if tier is None or not tier.limited:
        return "no rate limit"
    return f"tier: {tier.rpm or 'unlimited'} requests/min, {tier.concurrency or 'unlimited'} in flight"


def main(argv: list[str]) -> int:
    overrides = list(argv)
    if os.environ.get("STEP_API_KEY") and not any(o.startswith("provider=") for o in overrides):
        overrides.append("provider=stepfun")
    overrides = with_default_chain(overrides)
    cfg = load_config(overrides)
    server = instantiate(cfg.server)
    provider = instantiate(cfg.provider)
    chain = instantiate(cfg.chain)
    # Both BentoML services compose their config from these same overrides (encoder.* included).
    env = {**os.environ, "VOXPERSONA_OVERRIDES": " ".join(overrides), "PYTHONUNBUFFERED": "1"}
    if port_open(server.host, server.port):
        print(f"port {server.port} is already in use: is the platform already running?", file=sys.stderr)
        return 1

    emulator: EmulatorProcess | None = None
    node: AnvilNode | None = None
    api: subprocess.Popen[bytes] | None = None
    frontend: subprocess.Popen[bytes] | None = None
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    try:
        if provider.is_emulator:
            # The emulator enforces the tier the platform's limiter is configured for (provider.tier).
            tier = provider.tier
            limits = {"rpm": tier.rpm, "concurrency": tier.concurrency} if tier is not None else {}
            emulator = EmulatorProcess.from_settings(provider.emulator, **limits).start()
            print(f"StepFun emulator  {emulator.base_url}  ({_tier_text(tier)})")
        else:
            print(f"StepFun           {provider.base_url} (key from STEP_API_KEY)")
        if isinstance(chain, AnvilChainSettings):
            try:
                node = start_dev_chain(chain)
            except DevNodeError as exc:
                print(
                    f"the dev chain (anvil) could not start: {exc}\n"
                    'make run ARGS="chain=tester" runs an in-memory chain instead (lost on every restart).',
                    file=sys.stderr,
                )
                return 1
            print(f"Dev chain (anvil) {node.url}  chain id {node.chain_id}, state {node.state_file}")
        api = subprocess.Popen(
            bentoml_serve("bentos.platform_service:PersonaPlatform", server.host, server.port),
            cwd=REPO,
            env=env,
        )
        base = f"http://{server.host}:{server.port}"
        wait_ready(f"{base}/readyz", api, timeout_s=300, what="the platform")
        demo_email = f"demo-{secrets.token_hex(3)}@voxpersona.local"
        demo_password = secrets.token_urlsafe(12)
        demo = httpx.post(
            f"{base}/accounts",
            json={
                "name": "Demo Creator",
                "email": demo_email,
                "role": "creator",
                "payoutWallet": "0x" + secrets.token_hex(20),
                "password": demo_password,
            },
            timeout=30,
        ).json()
        key = demo["apiKey"]
        # The demo creator gets credit for a few clones and calls (a new account has the trial credit only).
        admin.main(["grant", "--email", demo_email, "--amount", str(DEMO_CREDIT), "--reason", "make run demo",
                    *overrides])  # fmt: skip
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
            # Never a key: the front end starts signed out; only its demo button uses these (one session each).
            env={
                **{k: v for k, v in env.items() if k != "VOXPERSONA_API_KEY"},
                "VOXPERSONA_API_URL": base,
                "VOXPERSONA_DEMO_EMAIL": demo_email,
                "VOXPERSONA_DEMO_PASSWORD": demo_password,
            },
            stdout=subprocess.DEVNULL,
        )
        _wait_listening("the front end", server.host, server.frontend_port, frontend, timeout=120)
        print("\nVoxPersona is running:")
        print(f"  API        {base}   (OpenAPI docs: {base}/docs, health: {base}/health)")
        print(f"  Front end  http://{server.host}:{server.frontend_port}")
        print(
            f"  Demo creator  {demo_email}  password {demo_password}  (the front end's 'Try the demo creator')"
        )
        print(f"  Demo API key (shown once): {key}")
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
        wait_port_closed(server.host, server.port, timeout_s=20)
        if node is not None:  # last: the platform's outbox may send until it stops; SIGTERM writes the state
            node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
