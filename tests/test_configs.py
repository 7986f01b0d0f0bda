"""Every config in every group composes and instantiates (new groups join automatically)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
GROUP_OPTIONS = sorted(
    (group.name, option.stem)
    for group in CONFIGS.iterdir()
    if group.is_dir()
    for option in group.glob("*.yaml")
)


def _compose(overrides: list[str] | None = None) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="config", overrides=overrides or [])


# Options that refuse to build without extra settings, by design: ECAPA never runs silently random.
EXTRA_OVERRIDES = {("encoder", "ecapa"): ["encoder.allow_random=true"]}
DEFAULT_GROUPS = {key for key in _compose() if isinstance(key, str) and (CONFIGS / key).is_dir()}


def test_root_config_composes_with_defaults() -> None:
    cfg = _compose()
    assert cfg.encoder._target_ == "encoders.fusion.FusionEncoder"  # real, committed weights by default
    assert instantiate(cfg.encoder).pretrained
    assert instantiate(cfg.audio).target_rate == 16000


@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS)
def test_config_instantiates(group: str, option: str) -> None:
    choice = f"{group}={option}" if group in DEFAULT_GROUPS else f"+{group}={option}"
    cfg = _compose([choice, *EXTRA_OVERRIDES.get((group, option), [])])
    node = cfg[group]
    assert "_target_" in node, f"configs/{group}/{option}.yaml has no _target_"
    assert instantiate(node) is not None
