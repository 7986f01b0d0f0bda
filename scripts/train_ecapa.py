"""Train a small ECAPA-TDNN on generated speakers, log the run to MLflow and register it as
speaker-encoder-ecapa.

python -m scripts.train_ecapa                 # a few minutes on 2 CPU cores
python -m scripts.train_ecapa --tiny          # seconds (CI)
python -m scripts.train_ecapa --epochs 20 --train-speakers 200
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import mlflow

from encoders.ecapa import DEFAULT_TRAINED_WEIGHTS, EcapaEncoder
from encoders.registry import RegisteredEncoder, RegistrySettings, configure, log_encoder, promote_best
from encoders.training import TrainingResult, TrainingSettings, train_ecapa


def run_training(
    settings: TrainingSettings,
    out: Path = DEFAULT_TRAINED_WEIGHTS,
    registry: RegistrySettings | None = None,
    register: bool = True,
) -> tuple[TrainingResult, RegisteredEncoder | None]:
    """Train with per-epoch metrics in an MLflow run, then register the checkpoint and promote the best
    version."""
    configure(registry)
    with mlflow.start_run(run_name="train-ecapa") as run:
        mlflow.log_params({k: str(v) for k, v in dataclasses.asdict(settings).items()})
        mlflow.set_tags({"task": "train", "encoder": "ecapa", "training_data": "generated speakers"})

        def log_epoch(row: dict[str, float]) -> None:
            mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=int(row["epoch"]))

        result = train_ecapa(settings, out, on_epoch=log_epoch, run_name=f"mlflow run {run.info.run_id}")
        mlflow.log_artifact(str(result.checkpoint), artifact_path="checkpoint")
        mlflow.log_metrics(
            {"final_eer": result.eer, "final_min_dcf": result.min_dcf, "train_seconds": result.seconds}
        )
    if not register:
        return result, None
    encoder = EcapaEncoder(weights=result.checkpoint)
    cfg: dict[str, Any] = {"_target_": "encoders.ecapa.EcapaEncoder", "weights": str(result.checkpoint)}
    registered = log_encoder(
        encoder,
        cfg,
        metrics={"eer": result.eer, "min_dcf": result.min_dcf},
        extra_tags={
            "training_run": run.info.run_id,
            "eval_set": f"generated, {len(result.eval_speakers)} speakers",
        },
        settings=registry,
    )
    promote_best("ecapa", settings=registry)
    return result, registered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="seconds-long run for CI")
    parser.add_argument("--out", type=Path, default=DEFAULT_TRAINED_WEIGHTS)
    parser.add_argument("--no-register", action="store_true")
    for field in dataclasses.fields(TrainingSettings):
        if field.type in ("int", "float"):
            parser.add_argument(
                f"--{field.name.replace('_', '-')}", type=int if field.type == "int" else float
            )
    args = parser.parse_args()
    overrides = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(TrainingSettings)
        if getattr(args, f.name, None) is not None
    }
    settings = TrainingSettings.tiny(**overrides) if args.tiny else TrainingSettings(**overrides)
    result, registered = run_training(settings, args.out, register=not args.no_register)
    for row in result.history:
        print(
            f"epoch {int(row['epoch']):2d}  loss {row['loss']:.3f}  acc {row['accuracy']:.2f}  "
            f"EER {100 * row['eer']:.2f}%  minDCF {row['min_dcf']:.3f}  {row['seconds']:.0f}s"
        )
    print(
        f"checkpoint {result.checkpoint}  held-out EER {100 * result.eer:.2f}% "
        "(generated speech: ranks models only)"
    )
    if registered:
        print(f"registered {registered.uri}")


if __name__ == "__main__":
    main()
