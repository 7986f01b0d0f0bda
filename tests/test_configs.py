"""Every config in every group composes and instantiates (new groups join automatically)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
# Groups whose configs are Hydra option files without a `_target_` (none yet) would go here.
GROUP_OPTIONS = sorted(
    (group.name, option.stem)
    for group in CONFIGS.iterdir()
    if group.is_dir()
    for option in group.glob("*.yaml")
)


def test_every_group_has_options() -> None:
    assert GROUP_OPTIONS, "no config groups found"
    assert ("encoder", "seeded") in GROUP_OPTIONS


def test_root_config_composes_with_defaults() -> None:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="config")
    assert cfg.encoder._target_ == "encoders.seeded.SeededEncoder"
    assert instantiate(cfg.audio).target_rate == 16000


@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS)
def test_config_instantiates(group: str, option: str) -> None:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"+{group}={option}"] if group not in _defaults() else
                      [f"{group}={option}"])  # fmt: skip
    node = cfg[group]
    assert "_target_" in node, f"configs/{group}/{option}.yaml has no _target_"
    built = instantiate(node)
    assert built is not None


def _defaults() -> set[str]:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="config")
    return {key for key in cfg if isinstance(key, str) and (CONFIGS / key).is_dir()}
