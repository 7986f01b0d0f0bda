"""The encoder configs, `configs/encoder/<name>.yaml`, for code that runs outside the platform (notebooks,
benchmarks, registration): the same node the platform's Hydra composition selects with `encoder=<name>`.

encoder = build_encoder(load_encoder_config("ge2e"))
encoder = build_encoder(load_encoder_config("ecapa", ["allow_random=true"]))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

ENCODER_CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "encoder"


def encoder_names() -> list[str]:
    """The configured encoders (one YAML file each), sorted."""
    return sorted(p.stem for p in ENCODER_CONFIGS.glob("*.yaml"))


def load_encoder_config(name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """configs/encoder/<name>.yaml (a node with `_target_`), with dot-list overrides such as
    `allow_random=true` or `num_threads=1` applied on top."""
    path = ENCODER_CONFIGS / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"no encoder config {name!r}; configured: {', '.join(encoder_names())}")
    cfg = OmegaConf.load(path)
    if not isinstance(cfg, DictConfig):
        raise ValueError(f"{path} is not a mapping")
    if overrides:
        merged = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
        assert isinstance(merged, DictConfig)
        cfg = merged
    return cfg
