"""`encoders.config` reads the same encoder nodes the platform's Hydra composition selects."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from bentos.core.config import load_config
from encoders import build_encoder
from encoders.config import encoder_names, load_encoder_config
from encoders.seeded import SeededEncoder


def test_every_configured_encoder_is_listed() -> None:
    assert {"seeded", "ge2e", "ecapa", "encodec"} <= set(encoder_names())


@pytest.mark.parametrize("name", encoder_names())
def test_library_loader_matches_the_platform_composition(name: str) -> None:
    composed = OmegaConf.to_container(load_config([f"encoder={name}"]).encoder, resolve=True)
    assert OmegaConf.to_container(load_encoder_config(name), resolve=True) == composed


def test_overrides_apply_and_build() -> None:
    cfg = load_encoder_config("seeded", ["dim=512", "seed=3"])
    encoder = build_encoder(cfg)
    assert isinstance(encoder, SeededEncoder)
    assert (encoder.dim, cfg.seed) == (512, 3)
    assert load_encoder_config("ecapa", ["allow_random=true"]).allow_random is True


def test_unknown_encoder_names_the_configured_ones() -> None:
    with pytest.raises(ValueError, match="ge2e"):
        load_encoder_config("wav2vec")
