"""Compiles the registry contract in-process with vyper and caches the ABI + bytecode on disk.

The cache key is sha256(source) + vyper version + EVM version, so editing the .vy file or upgrading vyper
rebuilds; a warm start skips the ~0.5 s compile.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONTRACT_SOURCE = Path(__file__).with_name("persona_registry.vy")
# cancun runs on py-evm and hardhat 3; ganache 7.9 needs "shanghai" (reference/chain-notes.md).
DEFAULT_EVM_VERSION = "cancun"


@dataclass(frozen=True)
class ContractArtifact:
    """A compiled contract: abi (JSON list), bytecode ('0x' hex) and what it was built from."""

    abi: list[dict[str, Any]]
    bytecode: str
    source_sha256: str
    vyper_version: str
    evm_version: str


def default_cache_dir() -> Path:
    """`$VOXPERSONA_CACHE_DIR/chain`, else `~/.cache/voxpersona/chain`."""
    root = os.environ.get("VOXPERSONA_CACHE_DIR") or str(Path.home() / ".cache" / "voxpersona")
    return Path(root) / "chain"


def load_artifact(
    evm_version: str = DEFAULT_EVM_VERSION,
    cache_dir: str | Path | None = None,
    source: Path = CONTRACT_SOURCE,
) -> ContractArtifact:
    """The compiled registry for `evm_version`, from the cache when the source and compiler are unchanged."""
    import vyper

    text = source.read_text(encoding="utf-8")
    source_sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cached = folder / f"{source.stem}-{source_sha[:16]}-vyper{vyper.__version__}-{evm_version}.json"
    if cached.exists():
        try:
            return ContractArtifact(**json.loads(cached.read_text(encoding="utf-8")))
        except (ValueError, TypeError):
            pass  # a torn or foreign file: rebuild it below
    artifact = _compile(text, source.name, source_sha, evm_version)
    folder.mkdir(parents=True, exist_ok=True)
    # Write-then-rename so concurrent test workers never read a half-written artifact.
    with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".tmp", delete=False, encoding="utf-8") as tmp:
        json.dump(artifact.__dict__, tmp)
    os.replace(tmp.name, cached)
    return artifact


def _compile(text: str, name: str, source_sha: str, evm_version: str) -> ContractArtifact:
    import vyper
    from vyper.compiler.settings import Settings

    out = vyper.compile_code(
        text,
        contract_path=name,
        output_formats=["abi", "bytecode"],
        settings=Settings(evm_version=evm_version),
    )
    return ContractArtifact(
        abi=out["abi"],
        bytecode=out["bytecode"],
        source_sha256=source_sha,
        vyper_version=vyper.__version__,
        evm_version=evm_version,
    )
