"""The durable local dev chain: foundry's anvil, installed from npm into `.cache/anvil/`, state kept in a file.

`@foundry-rs/anvil` ships the anvil binary for the machine's platform inside an npm package
(`node_modules/@foundry-rs/anvil-<os>-<arch>/bin/anvil`), so no Node version matters and nothing but npm is
needed. `anvil --state FILE --state-interval 1` loads FILE at start and writes it every second and on exit:
balances, contracts, blocks and receipts survive a restart, a SIGKILL loses at most the last second (which the
chain outbox re-sends by hash). Chain id 31337, ten funded dev accounts (hardhat's public test mnemonic).
"""

from __future__ import annotations

import fcntl
import json
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from bentos.devkit.evm_node import DevNodeError, rpc_chain_id, run_npm
from bentos.devkit.processes import terminate

ANVIL_VERSION = "1.7.1"
ANVIL_CHAIN_ID = 31337
DEFAULT_DIR = Path(__file__).resolve().parents[2] / ".cache" / "anvil"


def _package_suffix() -> str:
    system = platform.system().lower()
    machine = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    return f"{'win32' if system == 'windows' else system}-{machine}"


def ensure_anvil(root: Path = DEFAULT_DIR) -> Path:
    """Install `@foundry-rs/anvil` under `root` once (npm, file-locked); return the anvil binary's path."""
    root.mkdir(parents=True, exist_ok=True)
    marker = root / "installed.json"
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test processes must not run npm into one folder at once
        if marker.exists():
            info = json.loads(marker.read_text())
            if info.get("version") == ANVIL_VERSION and Path(info["binary"]).is_file():
                return Path(info["binary"])
        (root / "package.json").write_text(
            json.dumps({"name": "voxpersona-anvil", "private": True}, indent=2)
        )
        run_npm(["install", f"@foundry-rs/anvil@{ANVIL_VERSION}"], cwd=root)
        binary = root / "node_modules" / "@foundry-rs" / f"anvil-{_package_suffix()}" / "bin" / "anvil"
        if not binary.is_file():
            raise DevNodeError(f"@foundry-rs/anvil installed but {binary} is missing (unsupported platform?)")
        marker.write_text(json.dumps({"version": ANVIL_VERSION, "binary": str(binary)}, indent=2))
        return binary


@dataclass
class AnvilNode:
    """A running anvil; `stop()` sends SIGTERM (anvil writes its state file and exits), `kill()` SIGKILL."""

    url: str
    process: subprocess.Popen[bytes]
    state_file: Path
    log_path: Path
    chain_id: int = ANVIL_CHAIN_ID
    _stopped: bool = field(default=False, repr=False)

    def stop(self, timeout_s: float = 15.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        terminate(self.process, timeout_s)

    def kill(self) -> None:
        """SIGKILL: a crash. Only what anvil wrote at its last state interval survives."""
        self._stopped = True
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=15)

    def __enter__(self) -> AnvilNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_anvil(
    binary: Path,
    port: int,
    state_file: Path,
    *,
    host: str = "127.0.0.1",
    state_interval_s: int = 1,
    chain_id: int = ANVIL_CHAIN_ID,
    log_path: Path | None = None,
    ready_s: float = 30.0,
) -> AnvilNode:
    """Start anvil on host:port with its state in `state_file` (loaded if present); return once it answers."""
    state_file = Path(state_file).resolve()
    state_file.parent.mkdir(parents=True, exist_ok=True)
    log_path = Path(log_path) if log_path is not None else state_file.parent / "anvil.log"
    args = [str(binary), "--host", host, "--port", str(port), "--chain-id", str(chain_id)]
    args += ["--state", str(state_file), "--state-interval", str(state_interval_s)]
    with open(log_path, "ab") as log:  # anvil logs every RPC call: a file, never a pipe nobody reads
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the orchestrator, which stops anvil last
        )
    node = AnvilNode(url=f"http://{host}:{port}", process=process, state_file=state_file, log_path=log_path)
    node.chain_id = chain_id
    deadline = time.monotonic() + ready_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DevNodeError(f"anvil exited with {process.returncode}; see {log_path}")
        if rpc_chain_id(node.url) == chain_id:
            return node
        time.sleep(0.05)  # poll interval under a deadline
    node.stop()
    raise DevNodeError(f"anvil did not answer within {ready_s} s; see {log_path}")
