"""The project's Hydra configuration (configs/config.yaml), composed with command-line style overrides."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def load_config(overrides: Sequence[str] | None = None) -> DictConfig:
    """Compose configs/config.yaml with overrides (`db=postgres`, `data_dir=/tmp/x`, `encoder.dim=512`)."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides or []))
