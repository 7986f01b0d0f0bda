"""Impersonation check: is a new upload's voice very close to another creator's persona?

The threshold is a cosine calibrated per encoder in notebooks/encoder_comparison.ipynb at a stated false-alarm
rate on generated speakers (`configs/encoder/ge2e.yaml: impersonation_threshold`). Generated voices are more
uniform than real ones, so treat a hit as "show the uploader, log for review", never as proof.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from encoders.base import l2_normalize

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "encoder"


@dataclass(frozen=True)
class ImpersonationMatch:
    """The closest other creator's persona and its cosine to the upload."""

    persona_id: str
    cosine: float


def configured_threshold(encoder_name: str = "ge2e") -> float | None:
    """`impersonation_threshold` from configs/encoder/<name>.yaml; None when that encoder has none
    calibrated."""
    path = CONFIGS / f"{encoder_name}.yaml"
    if not path.exists():
        return None
    value = (yaml.safe_load(path.read_text()) or {}).get("impersonation_threshold")
    return None if value is None else float(value)


def nearest_other_creator(
    vector: np.ndarray,
    candidates: Mapping[str, np.ndarray] | Iterable[tuple[str, np.ndarray]],
    threshold: float | None = None,
) -> tuple[str, float] | None:
    """The candidate persona most similar to `vector`, if its cosine reaches `threshold`.

    vector: float32 [dim] embedding of the upload; candidates: persona id → float32 [dim] embedding of other
    creators' personas (same encoder + version). threshold None → the calibrated ge2e threshold.
    Returns (persona_id, cosine) or None when nothing is that close.
    """
    limit = configured_threshold("ge2e") if threshold is None else threshold
    if limit is None:
        raise ValueError("no impersonation threshold configured")
    items = list(candidates.items()) if isinstance(candidates, Mapping) else list(candidates)
    if not items:
        return None
    query = l2_normalize(vector)
    ids = [pid for pid, _ in items]
    matrix = np.stack([l2_normalize(v) for _, v in items])
    if matrix.shape[1] != query.shape[0]:
        raise ValueError(f"dimension mismatch: upload {query.shape[0]}, candidates {matrix.shape[1]}")
    cosines = matrix @ query
    best = int(np.argmax(cosines))
    score = float(cosines[best])
    return (ids[best], score) if score >= limit else None
