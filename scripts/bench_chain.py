"""Chain benchmark: gas per registry call and settlement size, and registrations per second on eth-tester and
on a local hardhat node, sequential, with explicit gas limits and with eth_estimateGas. Prints a table and
writes bench_results/chain.json.

    python -m scripts.bench_chain [--registrations 100] [--no-node]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eth_utils import keccak

from bentos.chain import ChainRegistry, RpcChainSettings, TesterChainSettings, build_chain
from bentos.devkit.evm_node import DevNode, DevNodeError, ensure_installed, start_node
from bentos.devkit.processes import free_port

RESULTS = Path("bench_results") / "chain.json"
# Hardhat's publicly known account #0 key (worthless outside a local dev node); CHAIN_SIGNER_KEY overrides it.
HARDHAT_DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
SETTLEMENT_SIZES = (1, 10, 100)


def h(label: str) -> str:
    return "0x" + keccak(text=label).hex()


def creators(count: int, offset: int) -> list[str]:
    """Fresh, never-credited addresses (the expensive case: each balance slot goes from zero to non-zero)."""
    return ["0x" + keccak(text=f"creator-{offset + i}")[-20:].hex() for i in range(count)]


def measure_gas(registry: ChainRegistry) -> dict[str, Any]:
    """Gas of each call; settlements for fresh creators and for creators who already hold a balance."""
    creator = creators(1, 10**6)[0]
    gas: dict[str, Any] = {
        "register": registry.register_persona("p_gas", h("e"), h("m"), creator).gas_used,
        "revoke": registry.revoke_persona("p_gas").gas_used,
    }
    for size in SETTLEMENT_SIZES:
        payees = creators(size, size * 1000)
        payouts = {address: 10**15 + i for i, address in enumerate(payees)}
        fresh = registry.deposit_settlement(f"st_fresh_{size}", h(f"u{size}"), payouts).gas_used
        returning = registry.deposit_settlement(f"st_again_{size}", h(f"v{size}"), payouts).gas_used
        gas[f"settle_{size}"] = {
            "fresh_creators": fresh,
            "fresh_per_creator": round(fresh / size),
            "returning_creators": returning,
            "returning_per_creator": round(returning / size),
        }
    # The target: one 100-creator settlement vs 100 single-creator settlements to the same kind of creators.
    singles_fresh = []
    for i, address in enumerate(creators(100, 9 * 10**6)):
        singles_fresh.append(
            registry.deposit_settlement(f"st_single_{i}", h(f"s{i}"), {address: 10**15}).gas_used
        )
    batch = gas["settle_100"]
    gas["hundred_singles_fresh"] = sum(singles_fresh)
    gas["batch_vs_singles_fresh"] = round(batch["fresh_creators"] / sum(singles_fresh), 4)
    single_returning = gas["settle_1"]["returning_creators"]
    gas["batch_vs_singles_returning"] = round(batch["returning_creators"] / (100 * single_returning), 4)
    # eth-tester funds key 0x…02; withdrawing needs the creator's own key.
    creator_key = "0x" + f"{2:064x}"
    creator_registry = registry.with_signer(creator_key)
    registry.deposit_settlement("st_withdraw", h("w"), {creator_registry.signer_address: 10**15})
    gas["withdraw"] = creator_registry.withdraw().gas_used
    return gas


def registrations_per_second(registry: ChainRegistry, count: int, label: str) -> float:
    creator = creators(1, 5 * 10**6)[0]
    start = time.perf_counter()
    for i in range(count):
        registry.register_persona(f"p_{label}_{i}", h(f"e{i}"), h("m"), creator)
    return count / (time.perf_counter() - start)


def hardhat_backend(node: DevNode, key: str) -> Callable[[bool], ChainRegistry]:
    """A factory of fresh registries on the node (each call deploys a new contract)."""

    def build(explicit: bool) -> ChainRegistry:
        settings = RpcChainSettings(
            url=node.url,
            chain_id=node.chain_id,
            signer_key=key,
            deploy_if_missing=True,
            explicit_gas=explicit,
            poll_interval_s=0.005,
        )
        return build_chain(settings)

    return build


def run(count: int, use_node: bool) -> dict[str, Any]:
    backends: dict[str, Callable[[bool], ChainRegistry]] = {
        "eth-tester": lambda explicit: build_chain(TesterChainSettings(explicit_gas=explicit)),
    }
    node: DevNode | None = None
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "registrations": count,
        "throughput": {},
    }
    if use_node:
        try:
            node = start_node(ensure_installed(), free_port())
            backends["hardhat"] = hardhat_backend(node, os.environ.get("CHAIN_SIGNER_KEY", HARDHAT_DEV_KEY))
        except DevNodeError as exc:
            results["node_error"] = str(exc)
    try:
        results["gas"] = measure_gas(backends["eth-tester"](True))
        if "hardhat" in backends:
            results["gas_hardhat_register"] = (
                backends["hardhat"](True)
                .register_persona("p_gas", h("e"), h("m"), creators(1, 1)[0])
                .gas_used
            )
        for name, build in backends.items():
            for explicit in (True, False):
                rate = registrations_per_second(build(explicit), count, f"{name}_{explicit}")
                results["throughput"][f"{name}/{'explicit gas' if explicit else 'estimated gas'}"] = round(
                    rate, 1
                )
    finally:
        if node is not None:
            node.stop()
    return results


def print_table(results: dict[str, Any]) -> None:
    gas = results["gas"]
    print("\nGas (eth-tester; identical on any EVM for the same state)")
    print(f"  {'call':<28}{'gas':>12}{'gas / creator':>16}")
    print(f"  {'register':<28}{gas['register']:>12,}")
    print(f"  {'revoke':<28}{gas['revoke']:>12,}")
    print(f"  {'withdraw':<28}{gas['withdraw']:>12,}")
    for size in SETTLEMENT_SIZES:
        row = gas[f"settle_{size}"]
        for kind in ("fresh", "returning"):
            label = f"settle {size} ({kind} creators)"
            print(f"  {label:<28}{row[f'{kind}_creators']:>12,}{row[f'{kind}_per_creator']:>16,}")
    print(f"  {'100 x settle 1 (fresh)':<28}{gas['hundred_singles_fresh']:>12,}")
    print(
        f"  batch / singles: fresh {gas['batch_vs_singles_fresh']:.1%}, "
        f"returning {gas['batch_vs_singles_returning']:.1%} (target < 25%)"
    )
    print(f"\nRegistrations per second (sequential, {results['registrations']} each)")
    for name, rate in results["throughput"].items():
        print(f"  {name:<34}{rate:>8.1f}")
    if "node_error" in results:
        print(f"  hardhat skipped: {results['node_error']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--registrations", type=int, default=100)
    parser.add_argument("--no-node", action="store_true", help="eth-tester only")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    results = run(args.registrations, use_node=not args.no_node)
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
