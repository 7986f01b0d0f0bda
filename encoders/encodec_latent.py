"""EnCodec latent encoder: the 24 kHz EnCodec encoder's latents (128 channels at 75 frames/s), mean + std
pooled over time, then a fixed seeded Gaussian projection to `dim`.

EnCodec is a codec, not a speaker model: its latents carry speaker traits among everything else, and the
projection is random (seeded, fixed, not learnt) — it only fixes the output size. Pretrained EnCodec weights
load from a local checkpoint (`encodec_24khz-d7cc33bc.th`) when configured; otherwise the weights are random
and the encoder says `pretrained=False`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from encoders.audio import resample
from encoders.base import l2_normalize
from encoders.batched import BatchedSpeakerEncoder
from encoders.ecapa import EncoderWeightsMissing, resolve_weights_path

ENCODEC_RATE = 24000
ENCODEC_HOP = 320  # samples per latent frame at 24 kHz (75 frames/s)
LATENT_CHANNELS = 128


def seeded_projection(in_dim: int, out_dim: int, seed: int) -> np.ndarray:
    """A fixed Gaussian projection float32 [in_dim, out_dim] scaled by 1/sqrt(in_dim), reproducible from
    `seed`."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((in_dim, out_dim)) / np.sqrt(in_dim)).astype(np.float32)


class EncodecLatentEncoder(BatchedSpeakerEncoder):
    """EnCodec 24 kHz encoder latents pooled to float32 [dim] unit vectors; input clips at any rate
    (resampled).

    weights: local path or MLflow URI of an EnCodec 24 kHz state dict; None → random EnCodec weights, which
    are allowed only with `allow_random=True` (default True here: the architecture is still a meaningful
    baseline, and it is tagged pretrained=False). projection_seed fixes the output projection.
    """

    name = "encodec"
    sample_rate = 16000

    def __init__(
        self,
        weights: str | Path | None = None,
        allow_random: bool = True,
        dim: int = 256,
        projection_seed: int = 0,
        model_seed: int = 0,
        device: str = "cpu",
        num_threads: int | None = None,
        max_batch: int = 1,
    ) -> None:
        from encodec import EncodecModel

        if num_threads:
            torch.set_num_threads(int(num_threads))
        self.max_batch = max_batch
        self.device = torch.device(device)
        torch.manual_seed(model_seed)
        model = EncodecModel.encodec_model_24khz(pretrained=False)
        self._weights_file: Path | None = None
        if weights is not None and str(weights).lower() == "random":  # the registry's marker for random init
            weights = None
        if weights is not None:
            path = resolve_weights_path(weights)
            if path.is_dir():
                found = sorted(path.glob("encodec_24khz*.th")) + sorted(path.glob("*.th"))
                if not found:
                    raise EncoderWeightsMissing(f"no EnCodec checkpoint (*.th) under {path}")
                path = found[0]
            if not path.is_file():
                raise EncoderWeightsMissing(f"EnCodec weights not found: {path}")
            model.load_state_dict(torch.load(path, map_location="cpu"))
            self._weights_file = path
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            self.version = f"sha256:{digest}-proj{projection_seed}"
            self.weights_source = f"encodec checkpoint {path.name} sha256:{digest}"
            self.training_data = "EnCodec 24 kHz training mix (speech, music, general audio)"
            self.pretrained = True
        elif allow_random:
            self.version = f"random-seed{model_seed}-proj{projection_seed}"
            self.weights_source = "random init"
            self.training_data = "none"
            self.pretrained = False
        else:
            raise EncoderWeightsMissing("EnCodec has no weights configured and allow_random is false")
        self.encoder = model.encoder.to(self.device).eval()
        self.dim = dim
        self.projection_seed = projection_seed
        self.projection = torch.from_numpy(seeded_projection(2 * LATENT_CHANNELS, dim, projection_seed))

    @property
    def weights_files(self) -> list[Path]:
        return [self._weights_file] if self._weights_file is not None else []

    def params(self) -> dict[str, str | int | float | bool]:
        return {**super().params(), "model_rate": ENCODEC_RATE, "projection_seed": self.projection_seed}

    def pooled_latents(self, clips: Sequence[np.ndarray]) -> torch.Tensor:
        """clips: float32 [n_i] each at 24 kHz → mean ‖ std of encoder latents over valid frames, float32
        [batch, 256]."""
        longest = max(int(c.shape[0]) for c in clips)
        wavs = torch.zeros(len(clips), 1, longest)
        for i, c in enumerate(clips):
            wavs[i, 0, : c.shape[0]] = torch.from_numpy(np.ascontiguousarray(c, dtype=np.float32))
        latents = self.encoder(wavs.to(self.device)).cpu()  # [batch, 128, frames]
        frames = latents.shape[-1]
        valid = torch.tensor([max(1, min(frames, -(-int(c.shape[0]) // ENCODEC_HOP))) for c in clips])
        mask = (torch.arange(frames)[None, :] < valid[:, None]).to(latents.dtype).unsqueeze(1)
        count = valid[:, None].to(latents.dtype)
        mean = (latents * mask).sum(-1) / count
        var = (((latents - mean.unsqueeze(-1)) ** 2) * mask).sum(-1) / count
        return torch.cat([mean, var.clamp_min(1e-8).sqrt()], dim=1)

    def embed_arrays(self, clips: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
        """clips: each float32 [n] mono at `sample_rate` Hz → float32 [len(clips), dim], L2-normalized; forward
        passes of at most `max_batch` clips."""
        return self.embed_in_chunks(clips, sample_rate, self.max_batch)

    def embed_chunk(self, clips: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
        """One padded forward pass: clips (float32 [n] each at `sample_rate` Hz) → float32 [len(clips), dim]."""
        if not clips:
            return np.zeros((0, self.dim), dtype=np.float32)
        at_rate = [resample(np.asarray(c, dtype=np.float32), sample_rate, ENCODEC_RATE) for c in clips]
        with torch.inference_mode():
            vectors = (self.pooled_latents(at_rate) @ self.projection).numpy()
        return np.stack([l2_normalize(v) for v in vectors])
