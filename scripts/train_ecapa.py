"""Train a small ECAPA-TDNN on generated speakers, log the run to MLflow and register it as
speaker-encoder-ecapa.

python -m scripts.train_ecapa                 # a few minutes on 2 CPU cores
python -m scripts.train_ecapa --tiny          # seconds (CI)
python -m scripts.train_ecapa --epochs 20 --train-speakers 200

The training and the MLflow logging are `encoders.training.run_training` (the notebook calls it too).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from encoders.ecapa import DEFAULT_TRAINED_WEIGHTS
from encoders.training import TrainingSettings, run_training


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
