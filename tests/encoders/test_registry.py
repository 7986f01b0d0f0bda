"""MLflow registry: versions with provenance, a champion that is never random, loading by alias or version."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest

from encoders.ecapa import EcapaEncoder
from encoders.ge2e import GE2EEncoder
from encoders.registry import (
    ChampionRefused,
    RegistrySettings,
    load_encoder,
    log_encoder,
    promote_best,
    set_champion,
)

GE2E_CFG = {"_target_": "encoders.ge2e.GE2EEncoder", "weights": None, "device": "cpu"}
ECAPA_RANDOM_CFG = {
    "_target_": "encoders.ecapa.EcapaEncoder",
    "allow_random": True,
    "channels": [32, 32, 32, 32, 96],
    "lin_neurons": 64,
    "attention_channels": 16,
    "weights": "random",
}


@pytest.fixture()
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RegistrySettings:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return RegistrySettings(f"sqlite:///{tmp_path}/mlflow.db", str(tmp_path / "artifacts"), "test-encoders")


@pytest.fixture(scope="module")
def ge2e() -> GE2EEncoder:
    return GE2EEncoder()


def _noise(seconds: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(16000 * seconds)) * 0.1).astype(np.float32)


def test_logged_version_carries_params_metrics_tags_and_weights(settings: RegistrySettings, ge2e) -> None:  # type: ignore[no-untyped-def]
    registered = log_encoder(ge2e, GE2E_CFG, metrics={"eer": 0.02, "min_dcf": 0.1}, settings=settings)
    assert (registered.model_name, registered.version, registered.pretrained) == (
        "speaker-encoder-ge2e",
        "1",
        True,
    )
    client = mlflow.MlflowClient()
    mv = client.get_model_version("speaker-encoder-ge2e", "1")
    assert mv.tags["pretrained"] == "true"
    assert mv.tags["weights_source"].startswith("resemblyzer wheel")
    run = client.get_run(registered.run_id)
    assert run.data.metrics["eer"] == pytest.approx(0.02)
    assert run.data.params["_target_"] == "encoders.ge2e.GE2EEncoder"
    model_info = mlflow.models.get_model_info(registered.uri)
    assert list(model_info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"]) == [-1, -1]


def test_champion_loads_and_embeds_like_the_direct_encoder(settings: RegistrySettings, ge2e) -> None:  # type: ignore[no-untyped-def]
    log_encoder(ge2e, GE2E_CFG, metrics={"eer": 0.05}, settings=settings)
    log_encoder(ge2e, GE2E_CFG, metrics={"eer": 0.01}, settings=settings)
    best = promote_best("ge2e", settings=settings)
    assert best is not None and best.version == "2"
    loaded = load_encoder("ge2e", settings=settings)
    assert loaded.version == "speaker-encoder-ge2e/2"
    clip = _noise(6, 0)
    assert np.allclose(loaded.embed_vector(clip, 16000), ge2e.embed_vector(clip, 16000), atol=1e-5)
    # Moving the alias moves what the loader (and so the service, on restart) returns; pinning a version works
    # too.
    set_champion("ge2e", 1, settings=settings)
    assert load_encoder("ge2e", settings=settings).version == "speaker-encoder-ge2e/1"
    assert (
        load_encoder("models:/speaker-encoder-ge2e/2", settings=settings).version == "speaker-encoder-ge2e/2"
    )


def test_random_init_version_is_refused_as_champion(settings: RegistrySettings) -> None:
    encoder = EcapaEncoder(**{k: v for k, v in ECAPA_RANDOM_CFG.items() if k != "_target_"})
    registered = log_encoder(
        encoder, {**ECAPA_RANDOM_CFG, "weights": None}, metrics={"eer": 0.0}, settings=settings
    )
    assert registered.pretrained is False
    with pytest.raises(ChampionRefused, match="random"):
        set_champion("ecapa", registered.version, settings=settings)
    assert promote_best("ecapa", settings=settings) is None
    # It still loads by version, and says what it is.
    loaded = load_encoder("ecapa", alias=None, version=registered.version, settings=settings)
    assert loaded.pretrained is False
