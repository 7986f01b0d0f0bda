"""Train a speaker encoder on generated speakers, log the run to MLflow and register it.

python -m scripts.train_ecapa                 # ECAPA-TDNN, AAM-softmax on speaker labels: a few minutes on 2 cores
python -m scripts.train_ecapa --tiny          # seconds (CI)
python -m scripts.train_ecapa --epochs 20 --train-speakers 200
python -m scripts.train_ecapa --distill       # noise-robust GE2E distilled from GE2E (~15 min on one core)
python -m scripts.train_ecapa --distill --student ecapa --steps 600   # an ECAPA-TDNN student instead

The training and the MLflow logging are `encoders.training.run_training` and `encoders.distill_run.run_distill`
(the notebooks call them too).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from encoders.distill import DistillSettings
from encoders.ecapa import DEFAULT_TRAINED_WEIGHTS
from encoders.training import TrainingSettings, run_training


def _add_numeric_flags(parser: argparse.ArgumentParser, cls: Any, seen: set[str]) -> None:
    for field in dataclasses.fields(cls):
        if field.type in ("int", "float") and field.name not in seen:
            seen.add(field.name)
            parser.add_argument(
                f"--{field.name.replace('_', '-')}", type=int if field.type == "int" else float
            )


def _overrides(args: argparse.Namespace, cls: Any) -> dict[str, Any]:
    return {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(cls)
        if getattr(args, f.name, None) is not None
    }


def _distill(args: argparse.Namespace) -> None:
    from encoders.distill_run import DEFAULT_DISTILL_OUT, run_distill

    overrides = {**_overrides(args, DistillSettings), "student": args.student}
    settings = DistillSettings.tiny(**overrides) if args.tiny else DistillSettings(**overrides)
    out = args.out if args.out is not None else DEFAULT_DISTILL_OUT[settings.student]
    result, registered = run_distill(settings, out, register=not args.no_register)
    for row in result.history:
        print(
            f"step {int(row['step']):4d}  loss {row['loss']:.4f}  cos(student(noisy), teacher(clean)) "
            f"{row['teacher_cosine']:.3f}  {row['seconds']:.0f}s"
        )
    print(f"checkpoint {result.checkpoint}  ({result.seconds:.0f} s)")
    print("held-out EER %: " + "  ".join(f"{k} {100 * v:.2f}" for k, v in result.eer.items()))
    if registered:
        print(f"registered {registered.uri}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="seconds-long run for CI")
    parser.add_argument("--distill", action="store_true", help="teacher-student distillation from GE2E")
    parser.add_argument("--student", choices=("ge2e", "ecapa"), default="ge2e", help="with --distill")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--no-register", action="store_true")
    seen: set[str] = set()
    _add_numeric_flags(parser, TrainingSettings, seen)
    _add_numeric_flags(parser, DistillSettings, seen)
    args = parser.parse_args()
    if args.distill:
        _distill(args)
        return
    overrides = _overrides(args, TrainingSettings)
    settings = TrainingSettings.tiny(**overrides) if args.tiny else TrainingSettings(**overrides)
    result, registered = run_training(
        settings, args.out or DEFAULT_TRAINED_WEIGHTS, register=not args.no_register
    )
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
