"""EnCodec latent encoder: pooled 24 kHz latents, honest about random weights, loads a local checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from encoders.ecapa import EncoderWeightsMissing
from encoders.encodec_latent import EncodecLatentEncoder


@pytest.fixture(scope="module")
def encodec() -> EncodecLatentEncoder:
    return EncodecLatentEncoder()


def _noise(seconds: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(16000 * seconds)) * 0.1).astype(np.float32)


def test_random_weights_are_reported_as_not_pretrained(encodec: EncodecLatentEncoder) -> None:
    assert encodec.pretrained is False
    assert encodec.weights_source == "random init"
    assert encodec.version == "random-seed0-proj0"


def test_vectors_are_fixed_size_unit_and_reproducible(encodec: EncodecLatentEncoder) -> None:
    clips = [_noise(5, 0), _noise(6, 1)]
    vectors = encodec.embed_arrays(clips, 16000)
    assert vectors.shape == (2, 256) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    again = EncodecLatentEncoder().embed_arrays(clips, 16000)
    assert np.allclose(vectors, again, atol=1e-5)


def test_padding_in_a_batch_does_not_change_a_short_clip(encodec: EncodecLatentEncoder) -> None:
    short, long = _noise(5, 2), _noise(8, 3)
    alone = encodec.embed_vector(short, 16000)
    padded = EncodecLatentEncoder(max_batch=8).embed_arrays([short, long], 16000)[0]
    assert float(np.dot(alone, padded)) > 0.99


def test_loads_a_local_checkpoint_as_pretrained(tmp_path: Path) -> None:
    from encodec import EncodecModel

    torch.manual_seed(7)
    torch.save(
        EncodecModel.encodec_model_24khz(pretrained=False).state_dict(), tmp_path / "encodec_24khz-test.th"
    )
    encoder = EncodecLatentEncoder(weights=tmp_path)
    assert encoder.pretrained is True
    assert encoder.version.startswith("sha256:")
    assert encoder.weights_files == [tmp_path / "encodec_24khz-test.th"]


def test_no_random_weights_when_refused(tmp_path: Path) -> None:
    with pytest.raises(EncoderWeightsMissing):
        EncodecLatentEncoder(allow_random=False)
    with pytest.raises(EncoderWeightsMissing):
        EncodecLatentEncoder(weights=tmp_path)
