"""Opaque, URL-safe identifiers with a readable type prefix (acc_, vp_, file_, job_, st_, req_)."""

from __future__ import annotations

import secrets


def new_id(prefix: str, nbytes: int = 12) -> str:
    return f"{prefix}_{secrets.token_hex(nbytes)}"
