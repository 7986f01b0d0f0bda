"""Install (into .cache/evm-node/) and run a local hardhat 3 JSON-RPC node on 127.0.0.1 (chain=rpc).

python -m scripts.evm_node install          # idempotent; tests and CI call the same code
python -m scripts.evm_node run --port 8545  # foreground until Ctrl-C / SIGTERM
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from bentos.devkit.evm_node import DEFAULT_DIR, DevNodeError, ensure_installed, start_node


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["install", "run"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="install folder")
    parser.add_argument("--port", type=int, default=8545)
    args = parser.parse_args(argv)
    try:
        install = ensure_installed(args.dir)
        print(f"hardhat ready: node={install.node_bin} project={install.project}")
        if args.command == "install":
            return 0
        node = start_node(install, args.port)
    except DevNodeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"hardhat node on {node.url} (chain id {node.chain_id}); log: {node.log_path}")
    # Forward SIGTERM/SIGINT to a clean stop of the node we started.
    signal.signal(signal.SIGTERM, lambda *_: node.stop())
    try:
        node.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        node.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
