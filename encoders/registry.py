"""MLflow model registry for speaker encoders: log versions, pick the `champion` alias, load by alias or
version.

Each encoder is logged as a pyfunc model (input: float32 [batch, n] samples at 16 kHz, output: float32
[batch, dim]) whose artifacts hold the encoder config and its weights, registered as `speaker-encoder-<name>`.
Only real weights (pretrained or trained) may become `champion`; random-init versions are refused.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import numpy as np
import yaml
from mlflow.pyfunc import PythonModel

from encoders.base import SpeakerEncoder

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL_PREFIX = "speaker-encoder-"
CHAMPION = "champion"
PIP_REQUIREMENTS = [
    "torch==2.9.1",
    "torchaudio==2.9.1",
    "speechbrain==1.1.2",
    "encodec==0.1.1",
    "Resemblyzer==0.1.4",
    "hydra-core==1.3.8",
    "numpy==2.4.6",
]


class ChampionRefused(ValueError):
    """The version asked to be champion carries random (untrained) weights."""


@dataclass(frozen=True)
class RegistrySettings:
    """Where MLflow tracks runs and stores artifacts (configs/registry/*.yaml).

    None → the local default: a SQLite DB and an artifact folder under the repo's gitignored `var/mlflow`.
    `MLFLOW_TRACKING_URI` in the environment overrides the URI (a tracking server at scale).
    """

    tracking_uri: str | None = None
    artifact_root: str | None = None
    experiment: str = "speaker-encoders"

    def __post_init__(self) -> None:
        uri = os.environ.get("MLFLOW_TRACKING_URI") or self.tracking_uri
        object.__setattr__(self, "tracking_uri", uri or f"sqlite:///{REPO_ROOT}/var/mlflow/mlflow.db")
        object.__setattr__(
            self, "artifact_root", self.artifact_root or str(REPO_ROOT / "var" / "mlflow" / "artifacts")
        )

    @property
    def uri(self) -> str:
        return str(self.tracking_uri)

    @classmethod
    def from_config(cls, cfg: Any | None = None) -> RegistrySettings:
        """From a `registry` config node (tracking_uri, artifact_root, experiment; missing/null →
        defaults)."""
        values = {
            k: v for k, v in (dict(cfg) if cfg is not None else {}).items() if k in cls.__dataclass_fields__
        }
        return cls(**{k: (str(v) if v is not None else None) for k, v in values.items()})  # type: ignore[arg-type]


@dataclass(frozen=True)
class RegisteredEncoder:
    """One logged + registered encoder version."""

    model_name: str
    version: str
    run_id: str
    pretrained: bool

    @property
    def uri(self) -> str:
        return f"models:/{self.model_name}/{self.version}"


def model_name_for(encoder_name: str) -> str:
    """`speaker-encoder-<name>` (idempotent on an already prefixed name)."""
    return encoder_name if encoder_name.startswith(MODEL_PREFIX) else MODEL_PREFIX + encoder_name


def configure(settings: RegistrySettings | None = None) -> str:
    """Point MLflow at `settings` and make sure the experiment exists; returns its id."""
    settings = settings or RegistrySettings.from_config()
    if settings.uri.startswith("sqlite:///"):
        Path(settings.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.uri)
    mlflow.set_registry_uri(settings.uri)
    experiment = mlflow.get_experiment_by_name(settings.experiment)
    if experiment is not None:
        experiment_id = str(experiment.experiment_id)
    else:
        root = str(settings.artifact_root)
        location = Path(root).resolve().as_uri() if "://" not in root else root
        experiment_id = str(mlflow.create_experiment(settings.experiment, artifact_location=location))
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


class EncoderModel(PythonModel):
    """The pyfunc wrapper: rebuilds the encoder from its config + weights artifact on load.

    predict: float32 [batch, n] samples, mono, 16 kHz (equal lengths; embed ragged clips with `.encoder`) →
    float32 [batch, dim] L2-normalized embeddings.
    """

    def __init__(self, encoder_config: dict[str, Any]) -> None:
        self.encoder_config = encoder_config
        self.encoder: SpeakerEncoder | None = None

    def load_context(self, context: Any) -> None:
        import hydra.utils

        cfg = dict(self.encoder_config)
        if "weights" in context.artifacts:
            cfg["weights"] = context.artifacts["weights"]
        if "members" in cfg:  # a fusion: each member with logged weights reloads from them
            cfg["members"] = {
                key: {**member, "weights": context.artifacts[f"member.{key}.weights"]}
                if f"member.{key}.weights" in context.artifacts
                else member
                for key, member in cfg["members"].items()
            }
        self.encoder = hydra.utils.instantiate(cfg)

    # Unannotated on purpose: MLflow 3 derives a schema from predict's type hints (and warns on ndarray); the
    # signature is logged explicitly instead.
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        assert self.encoder is not None, "load_context was not called"
        batch = np.asarray(model_input, dtype=np.float32)
        if batch.ndim == 1:
            batch = batch[None, :]
        from encoders.evaluation import embed_vectors

        return embed_vectors(self.encoder, list(batch), 16000)


def _flat_params(cfg: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in cfg.items():
        if isinstance(value, dict):
            out.update(_flat_params(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)[:500]
    return out


def encoder_tags(encoder: SpeakerEncoder) -> dict[str, str]:
    """The provenance tags logged with every version: pretrained, weights source, training data, versions."""
    return {
        "encoder": encoder.name,
        "pretrained": str(bool(encoder.pretrained)).lower(),
        "weights_source": str(
            getattr(encoder, "weights_source", "random init" if not encoder.pretrained else "?")
        ),
        "training_data": str(getattr(encoder, "training_data", "none")),
        "weights_version": str(encoder.version),
        "dim": str(encoder.dim),
    }


def _member_artifacts(encoder: SpeakerEncoder, encoder_config: dict[str, Any]) -> dict[str, str]:
    """A fusion's artifacts, `member.<key>.weights` → file, for each member that has weights. A member on random
    weights is pinned to `weights: random` in `encoder_config` (changed in place), so it reloads as random init
    and not as whatever checkpoint the loading machine has. {} for an encoder without members."""
    member_weights = getattr(encoder, "member_weights", None)
    if "members" not in encoder_config or not callable(member_weights):
        return {}
    files: dict[str, Path] = member_weights()
    members = {str(k): dict(v) for k, v in encoder_config["members"].items()}
    for key, member in zip(
        getattr(encoder, "member_keys", []), getattr(encoder, "members", []), strict=False
    ):
        if key not in files and not member.pretrained and "weights" in members.get(key, {}):
            members[key]["weights"] = "random"
    encoder_config["members"] = members
    return {f"member.{key}.weights": str(path) for key, path in files.items()}


def log_encoder(
    encoder: SpeakerEncoder,
    encoder_config: dict[str, Any],
    metrics: dict[str, float] | None = None,
    extra_tags: dict[str, str] | None = None,
    settings: RegistrySettings | None = None,
    figures: dict[str, Any] | None = None,
) -> RegisteredEncoder:
    """Log `encoder` as a pyfunc model with its config (params + YAML artifact), weights, signature, metrics
    and provenance tags, and register it as a new version of `speaker-encoder-<name>`.

    encoder_config: the Hydra node that built it (with `_target_`); its `weights` is replaced by the logged
    artifact on load. figures: matplotlib figures to log under `figures/<key>.png`.
    """
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec
    from omegaconf import DictConfig, OmegaConf

    configure(settings)
    if isinstance(encoder_config, DictConfig):  # nested nodes (a fusion's members) become plain lists/dicts
        encoder_config = dict(OmegaConf.to_container(encoder_config, resolve=True))  # type: ignore[arg-type]
    encoder_config = dict(encoder_config)
    if not encoder.pretrained and not getattr(encoder, "weights_files", []) and "weights" in encoder_config:
        # Random init must reload as random init, not as whatever trained weights the loading machine has.
        encoder_config["weights"] = "random"
    member_artifacts = _member_artifacts(encoder, encoder_config)
    model_name = model_name_for(encoder.name)
    tags = {**encoder_tags(encoder), **(extra_tags or {})}
    weights_files = list(getattr(encoder, "weights_files", []))
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, -1), name="samples_16k")]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, encoder.dim), name="embedding")]),
    )
    with (
        mlflow.start_run(run_name=f"{encoder.name}-{encoder.version}") as run,
        tempfile.TemporaryDirectory() as tmp,
    ):
        mlflow.log_params(_flat_params(encoder_config))
        params = getattr(encoder, "params", None)
        if callable(params):
            mlflow.log_params({f"model.{k}": str(v) for k, v in params().items()})
        mlflow.set_tags(tags)
        if metrics:
            mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        config_path = Path(tmp) / "encoder.yaml"
        config_path.write_text(yaml.safe_dump(encoder_config, sort_keys=True))
        artifacts = {"encoder_config": str(config_path)}
        if member_artifacts:
            artifacts.update(member_artifacts)
        elif weights_files:
            artifacts["weights"] = str(weights_files[0])
        for key, figure in (figures or {}).items():
            mlflow.log_figure(figure, f"figures/{key}.png")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=EncoderModel(dict(encoder_config)),
            artifacts=artifacts,
            signature=signature,
            pip_requirements=PIP_REQUIREMENTS,
            registered_model_name=model_name,
        )
        version = str(info.registered_model_version)
        client = mlflow.MlflowClient()
        for key, value in tags.items():
            client.set_model_version_tag(model_name, version, key, value)
        if metrics:
            for key, number in metrics.items():
                client.set_model_version_tag(model_name, version, f"metric.{key}", f"{float(number):.6g}")
        return RegisteredEncoder(model_name, version, run.info.run_id, bool(encoder.pretrained))


def set_champion(encoder_name: str, version: str | int, settings: RegistrySettings | None = None) -> None:
    """Point `speaker-encoder-<name>@champion` at `version`; raises ChampionRefused for random-init
    weights."""
    configure(settings)
    client = mlflow.MlflowClient()
    model_name = model_name_for(encoder_name)
    mv = client.get_model_version(model_name, str(version))
    if mv.tags.get("pretrained") != "true":
        raise ChampionRefused(
            f"{model_name} v{version} has random (untrained) weights ({mv.tags.get('weights_source', '?')}): "
            "it cannot be champion"
        )
    client.set_registered_model_alias(model_name, CHAMPION, str(version))


def promote_best(
    encoder_name: str, metric: str = "eer", settings: RegistrySettings | None = None
) -> RegisteredEncoder | None:
    """Make the real (pretrained/trained) version with the lowest `metric` the champion; None if there is
    none."""
    configure(settings)
    client = mlflow.MlflowClient()
    model_name = model_name_for(encoder_name)
    best: tuple[float, Any] | None = None
    for mv in client.search_model_versions(f"name='{model_name}'"):
        if mv.tags.get("pretrained") != "true" or f"metric.{metric}" not in mv.tags:
            continue
        score = float(mv.tags[f"metric.{metric}"])
        if best is None or score < best[0]:
            best = (score, mv)
    if best is None:
        return None
    mv = best[1]
    set_champion(encoder_name, mv.version, settings)
    return RegisteredEncoder(model_name, str(mv.version), str(mv.run_id), True)


def resolve_model_uri(
    name_or_uri: str, alias: str | None = CHAMPION, version: str | int | None = None
) -> tuple[str, str, str]:
    """(model URI, registered model name, concrete version) for an encoder name or a `models:/` URI."""
    client = mlflow.MlflowClient()
    if name_or_uri.startswith("models:/"):
        ref = name_or_uri.removeprefix("models:/")
        if "@" in ref:
            model_name, alias = ref.split("@", 1)
            version = None
        else:
            model_name, _, version_text = ref.partition("/")
            version = version_text or None
    else:
        model_name = model_name_for(name_or_uri)
    if version is not None:
        concrete = str(version)
    elif alias:
        concrete = str(client.get_model_version_by_alias(model_name, alias).version)
    else:
        raise ValueError("give an alias or a version")
    return f"models:/{model_name}/{concrete}", model_name, concrete


def load_encoder(
    name_or_uri: str,
    alias: str | None = CHAMPION,
    version: str | int | None = None,
    settings: RegistrySettings | None = None,
) -> SpeakerEncoder:
    """Load a registered encoder: `load_encoder("ge2e")` → `speaker-encoder-ge2e@champion`; `version=3` or a
    `models:/…` URI pins one. Its `version` becomes `<model name>/<registry version>` so each embedding
    records it.
    """
    configure(settings)
    uri, model_name, concrete = resolve_model_uri(name_or_uri, alias, version)
    wrapper = mlflow.pyfunc.load_model(uri).unwrap_python_model()
    encoder = wrapper.encoder
    if encoder is None:
        raise RuntimeError(f"{uri} did not build an encoder")
    encoder.version = f"{model_name}/{concrete}"
    return encoder  # type: ignore[no-any-return]
