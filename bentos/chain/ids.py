"""How platform values become contract arguments: string ids → bytes32, '0x' hashes, checksummed addresses.

A persona id or settlement id (e.g. 'p_ab12…', 'st_2026-11_…') is stored on chain as keccak256 of its UTF-8
bytes: fixed width, no length limit on the platform side, and anyone holding the id can recompute the key.
"""

from __future__ import annotations

import re

from eth_utils import is_address, keccak, to_checksum_address

from bentos.chain.errors import ChainInputError

_HASH32 = re.compile(r"^0x[0-9a-fA-F]{64}$")


def id_key(platform_id: str) -> bytes:
    """bytes32 key of a platform string id: keccak256(utf8(id)). Used for persona and settlement ids."""
    if not isinstance(platform_id, str) or not platform_id:
        raise ChainInputError("an id must be a non-empty string")
    return keccak(platform_id.encode("utf-8"))


def hash32(value: str, *, name: str = "hash") -> bytes:
    """'0x' + 64 hex digits → 32 bytes; anything else is rejected (no silent padding)."""
    if not isinstance(value, str) or not _HASH32.match(value):
        raise ChainInputError(f"{name} must be '0x' followed by 64 hex digits")
    return bytes.fromhex(value[2:])


def hex32(value: bytes) -> str:
    """32 bytes → lowercase '0x' + 64 hex digits, the platform's textual form of a hash."""
    return "0x" + bytes(value).hex()


def address(value: str, *, name: str = "address") -> str:
    """A checksummed EVM address; the zero address is refused (it would burn funds or records)."""
    if not isinstance(value, str) or not is_address(value):
        raise ChainInputError(f"{name} must be a 20-byte hex address")
    checksummed = to_checksum_address(value)
    if int(checksummed, 16) == 0:
        raise ChainInputError(f"{name} must not be the zero address")
    return checksummed
