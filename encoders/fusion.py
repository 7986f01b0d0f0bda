"""`FusionEncoder`: several speaker encoders as one, by score fusion.

Each member embeds the clip into its own unit vector; the fused embedding is their concatenation scaled by
1/√k, itself a unit vector, so the cosine of two fused embeddings is the mean of the members' cosines. Two
students distilled from the same teacher but with different networks (GE2E's LSTM on 40 mels, an ECAPA-TDNN on 80
fbanks) make different mistakes, and the mean cancels many of them (notebooks/encoder_comparison.ipynb).

encoder = FusionEncoder({"ge2e_robust": RobustGE2EEncoder(), "ecapa": EcapaEncoder(weights="encoders/weights/ecapa-distilled.pt")})
encoder.embed_arrays([samples], 16000)   # float32 [1, 256 + 256]
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from encoders.base import SpeakerEncoder, l2_normalize
from encoders.batched import BatchedSpeakerEncoder


class FusionEncoder(BatchedSpeakerEncoder):
    """Score fusion of `members`: {member key: built encoder}, in order (Hydra instantiates them from the
    config's `members` node, so `encoder.members.<key>.<option>=…` overrides one member).

    impersonation_threshold / consent_threshold: calibrated cosines of the fused embedding (the mean of the
    members' cosines), stored with the registered version like every encoder's.
    """

    name = "fusion"
    sample_rate = 16000

    def __init__(
        self,
        members: Mapping[str, SpeakerEncoder],
        impersonation_threshold: float | None = None,
        consent_threshold: float | None = None,
    ) -> None:
        self.member_keys = [str(k) for k in members]
        self.members = list(members.values())
        if len(self.members) < 2:
            raise ValueError("a fusion needs at least two member encoders")
        self.dim = sum(m.dim for m in self.members)
        self.pretrained = all(m.pretrained for m in self.members)
        # The version names the weights and every setting that changes the vectors (a member's partial_rate, …):
        # a threshold calibrated for one version does not carry over to another.
        joined = "+".join(
            f"{k}={m.name}:{m.version}:{sorted(_settings(m).items())}"
            for k, m in zip(self.member_keys, self.members, strict=True)
        )
        self.version = f"fusion-{hashlib.sha256(joined.encode()).hexdigest()[:12]}"
        self.weights_source = "; ".join(
            f"{m.name}: {getattr(m, 'weights_source', 'random init')}" for m in self.members
        )
        self.training_data = "; ".join(
            f"{m.name}: {getattr(m, 'training_data', 'none')}" for m in self.members
        )
        self.impersonation_threshold = impersonation_threshold
        self.consent_threshold = consent_threshold

    @property
    def weights_files(self) -> list[Path]:
        """The members' weights files, in member order (see `member_weights`)."""
        return list(self.member_weights().values())

    def member_weights(self) -> dict[str, Path]:
        """{member key: its weights file} for the members that have one (the registry logs each as the
        artifact `member.<key>.weights`)."""
        out: dict[str, Path] = {}
        for key, member in zip(self.member_keys, self.members, strict=True):
            files = list(getattr(member, "weights_files", []))
            if files:
                out[key] = Path(files[0])
        return out

    def params(self) -> dict[str, str | int | float | bool]:
        return {
            **super().params(),
            "members": ",".join(m.name for m in self.members),
        }

    def embed_arrays(self, clips: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
        """clips: each float32 [n] mono at `sample_rate` Hz → float32 [len(clips), dim], L2-normalized: the
        members' unit embeddings side by side, each scaled by 1/√k."""
        if not clips:
            return np.zeros((0, self.dim), dtype=np.float32)
        scale = 1.0 / math.sqrt(len(self.members))
        parts = [_unit_rows(member, clips, sample_rate) * scale for member in self.members]
        return np.stack([l2_normalize(row) for row in np.concatenate(parts, axis=1)])


def _settings(member: SpeakerEncoder) -> dict[str, str | int | float | bool]:
    params = getattr(member, "params", None)
    return dict(params()) if callable(params) else {}


def _unit_rows(member: SpeakerEncoder, clips: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
    """float32 [len(clips), member.dim]: the member's L2-normalized embeddings (batched where it can)."""
    if isinstance(member, BatchedSpeakerEncoder):  # `embed_arrays` already returns unit rows
        return np.asarray(member.embed_arrays(clips, sample_rate), dtype=np.float32)
    return np.stack([l2_normalize(member.embed_vector(c, sample_rate)) for c in clips])
