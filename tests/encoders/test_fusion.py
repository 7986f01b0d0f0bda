"""The fusion encoder: one embedding from the two distilled students, whose cosine is the mean of theirs; built
from its Hydra config with the committed weights, and registered and reloaded from MLflow with both members'
weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from encoders import build_encoder
from encoders.config import load_encoder_config
from encoders.distill import eval_clips
from encoders.fusion import FusionEncoder
from encoders.registry import RegistrySettings, load_encoder, log_encoder

RATE = 16000


@pytest.fixture(scope="module")
def fusion() -> FusionEncoder:
    encoder = build_encoder(load_encoder_config("fusion"))
    assert isinstance(encoder, FusionEncoder)
    return encoder


@pytest.fixture(scope="module")
def clips() -> tuple[list[np.ndarray], list[str]]:
    return eval_clips(4, 2)  # held-out generated speakers


def test_fused_cosine_is_the_mean_of_the_members_cosines(
    fusion: FusionEncoder, clips: tuple[list[np.ndarray], list[str]]
) -> None:
    waves, _ = clips
    fused = fusion.embed_arrays(waves[:2], RATE)
    assert fused.shape == (2, 512) and np.allclose(np.linalg.norm(fused, axis=1), 1.0, atol=1e-5)
    member_cosines = [
        float(np.dot(*member.embed_arrays(waves[:2], RATE)))  # type: ignore[attr-defined]
        for member in fusion.members
    ]
    assert float(np.dot(*fused)) == pytest.approx(np.mean(member_cosines), abs=1e-5)


def test_the_configured_fusion_is_the_two_committed_students_with_its_own_thresholds(
    fusion: FusionEncoder,
) -> None:
    assert [m.name for m in fusion.members] == ["ge2e_robust", "ecapa"]
    assert fusion.pretrained and fusion.dim == 512
    assert [p.name for p in fusion.weights_files] == ["ge2e-robust.pt", "ecapa-distilled.pt"]
    assert fusion.impersonation_threshold is not None and fusion.consent_threshold is not None
    # The same speaker scores above the impersonation threshold, another speaker below it.
    waves, speakers = clips_of_two_speakers()
    vectors = fusion.embed_arrays(waves, RATE)
    same, other = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert speakers[0] == speakers[1] != speakers[2]
    assert same >= fusion.impersonation_threshold > other


def clips_of_two_speakers() -> tuple[list[np.ndarray], list[str]]:
    waves, speakers = eval_clips(4, 2)
    first = [i for i, s in enumerate(speakers) if s == speakers[0]][:2]
    other = next(i for i, s in enumerate(speakers) if s != speakers[0])
    return [waves[i] for i in (*first, other)], [speakers[i] for i in (*first, other)]


def test_a_fusion_needs_two_members(fusion: FusionEncoder) -> None:
    with pytest.raises(ValueError, match="two member"):
        FusionEncoder({"ge2e_robust": fusion.members[0]})


def test_registered_fusion_reloads_both_members_from_its_own_artifacts(
    fusion: FusionEncoder,
    clips: tuple[list[np.ndarray], list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = RegistrySettings(f"sqlite:///{tmp_path}/mlflow.db", str(tmp_path / "artifacts"), "test-fusion")
    registered = log_encoder(
        fusion, load_encoder_config("fusion"), metrics={"eer_worst": 0.01}, settings=settings
    )
    # The loaded model must not read the repo's files: its weights are the logged artifacts.
    loaded = load_encoder("fusion", alias=None, version=registered.version, settings=settings)
    assert isinstance(loaded, FusionEncoder)
    committed = Path(__file__).resolve().parents[2] / "encoders" / "weights"
    assert len(loaded.weights_files) == 2
    assert not any(p.resolve().is_relative_to(committed) for p in loaded.weights_files), loaded.weights_files
    waves, _ = clips
    assert np.allclose(loaded.embed_arrays(waves[:1], RATE), fusion.embed_arrays(waves[:1], RATE), atol=1e-5)


def test_a_fusion_with_a_random_member_reloads_it_as_random_not_as_local_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from encoders.ecapa import EcapaEncoder
    from encoders.ge2e import GE2EEncoder

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # A loading machine that has trained ECAPA weights where `weights: null` looks for them.
    committed = Path(__file__).resolve().parents[2] / "encoders" / "weights" / "ecapa-distilled.pt"
    monkeypatch.setattr("encoders.ecapa.DEFAULT_TRAINED_WEIGHTS", committed)
    settings = RegistrySettings(f"sqlite:///{tmp_path}/mlflow.db", str(tmp_path / "artifacts"), "test-fusion")
    tiny = {"channels": [32, 32, 32, 32, 96], "lin_neurons": 64, "attention_channels": 16}
    config = {
        "_target_": "encoders.fusion.FusionEncoder",
        "members": {
            "ge2e": {"_target_": "encoders.ge2e.GE2EEncoder", "weights": None},
            "ecapa": {
                "_target_": "encoders.ecapa.EcapaEncoder",
                "weights": None,
                "allow_random": True,
                **tiny,
            },
        },
    }
    fusion = FusionEncoder(
        {"ge2e": GE2EEncoder(), "ecapa": EcapaEncoder(weights="random", allow_random=True, **tiny)}
    )
    assert not fusion.pretrained and list(fusion.member_weights()) == ["ge2e"]
    registered = log_encoder(fusion, config, settings=settings)
    loaded = load_encoder("fusion", alias=None, version=registered.version, settings=settings)
    assert isinstance(loaded, FusionEncoder)
    ge2e, ecapa = loaded.members
    assert ge2e.pretrained and ecapa.weights_source == "random init"  # type: ignore[attr-defined]
