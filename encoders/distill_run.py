"""The distillation run with its MLflow record: per-step metrics, the held-out EER/minDCF table per recording
condition, speed on one core, calibrated thresholds, and the registered version (promoted to `champion` when it
is the best real one).

result, registered = run_distill(DistillSettings(), DEFAULT_DISTILL_OUT["ge2e"])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np

from encoders.base import SpeakerEncoder
from encoders.benchmarking import ms_per_clip
from encoders.degrade import EVAL_CONDITIONS, Condition, degrade
from encoders.distill import (
    DistillResult,
    DistillSettings,
    distill,
    eval_babble_pool,
    eval_clips,
    load_student_encoder,
)
from encoders.ecapa import REPO_ROOT
from encoders.evaluation import cosine_scores, embed_vectors, make_trials, threshold_at_false_alarm
from encoders.registry import RegisteredEncoder, RegistrySettings, configure, log_encoder, promote_best

DEFAULT_DISTILL_OUT = {
    "ge2e": REPO_ROOT / "var" / "models" / "ge2e-robust" / "ge2e-robust.pt",
    "ecapa": REPO_ROOT / "var" / "models" / "ecapa-distilled" / "ecapa.pt",
}
IMPERSONATION_FALSE_ALARM = 0.01  # at most 1 % of different-speaker upload pairs flagged for review
CONSENT_FALSE_ACCEPT = 0.01  # at most 1 % of other people's read sentences accepted as the owner's consent
BROWSER_CONDITIONS = ("mp3-white20", "mp3-babble20", "mp3-room20")


@dataclass(frozen=True)
class Thresholds:
    """Calibrated cosines for one model and the error rates they give on the held-out set."""

    impersonation: float
    impersonation_miss: float
    consent: float
    consent_false_reject: float

    def tags(self) -> dict[str, str]:
        return {
            "impersonation_threshold": f"{self.impersonation:.3f}",
            "impersonation_false_alarm": f"{IMPERSONATION_FALSE_ALARM:g}",
            "consent_threshold": f"{self.consent:.3f}",
            "consent_false_accept": f"{CONSENT_FALSE_ACCEPT:g}",
        }


def calibrate_thresholds(
    encoder: SpeakerEncoder,
    clips: Sequence[np.ndarray],
    speakers: Sequence[str],
    pool: Sequence[np.ndarray],
    seed: int = 2,
) -> Thresholds:
    """Impersonation: uploads (MP3) against uploads, threshold at `IMPERSONATION_FALSE_ALARM` false alarms.
    Consent: a browser recording (MP3 + 20 dB white/babble/room noise, rotating) of one utterance against the
    MP3 upload of every other utterance, threshold at `CONSENT_FALSE_ACCEPT` false accepts.
    clips: float32 [n] 16 kHz each, labelled by `speakers`."""
    rng = np.random.default_rng(seed)
    uploads = embed_vectors(encoder, [degrade(c, EVAL_CONDITIONS["mp3"], rng) for c in clips], 16000)
    browser = embed_vectors(
        encoder,
        [
            degrade(c, EVAL_CONDITIONS[BROWSER_CONDITIONS[i % len(BROWSER_CONDITIONS)]], rng, pool)
            for i, c in enumerate(clips)
        ],
        16000,
    )
    scores, labels = cosine_scores(uploads, make_trials(speakers))
    impersonation = threshold_at_false_alarm(scores, labels, IMPERSONATION_FALSE_ALARM)
    n = len(clips)
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    cross = np.array([float(browser[i] @ uploads[j]) for i, j in pairs])
    same = np.array([speakers[i] == speakers[j] for i, j in pairs])
    consent = threshold_at_false_alarm(cross, same, CONSENT_FALSE_ACCEPT)
    return Thresholds(
        impersonation=impersonation,
        impersonation_miss=float(np.mean(scores[labels] < impersonation)),
        consent=consent,
        consent_false_reject=float(np.mean(cross[same] < consent)),
    )


def speed_ms_8s(encoder: SpeakerEncoder, clip: np.ndarray) -> float:
    """Median ms to embed one 8 s clip (float32 [128000] at 16 kHz, `clip` tiled) on one torch thread."""
    eight = np.tile(clip, int(np.ceil(128000 / max(1, clip.shape[0]))))[:128000]
    return ms_per_clip(encoder, eight, repeats=5, threads=1)


def table_metrics(table: dict[str, dict[str, float]]) -> dict[str, float]:
    """{"eer.<condition>", "min_dcf.<condition>"} plus `eer` (clean, what `promote_best` ranks on) and
    `eer_worst` (the worst condition)."""
    out = {f"{k}.{cond}": v for cond, row in table.items() for k, v in row.items()}
    out["eer"] = table["clean"]["eer"]
    out["min_dcf"] = table["clean"]["min_dcf"]
    out["eer_worst"] = max(row["eer"] for row in table.values())
    return out


def log_candidate(
    encoder: SpeakerEncoder,
    encoder_config: dict[str, Any],
    table: dict[str, dict[str, float]],
    ms_8s: float,
    thresholds: Thresholds | None,
    tags: dict[str, str],
    settings: RegistrySettings | None = None,
) -> RegisteredEncoder:
    """Register `encoder` with its condition table, speed and thresholds (version tags), then promote the
    best real version of its name to `champion` (ranked by the worst-condition EER)."""
    extra = {**tags, **(thresholds.tags() if thresholds else {})}
    metrics = {**table_metrics(table), "ms_per_8s_clip_1core": ms_8s}
    registered = log_encoder(encoder, encoder_config, metrics=metrics, extra_tags=extra, settings=settings)
    promote_best(encoder.name, metric="eer_worst", settings=settings)
    return registered


def run_distill(
    settings: DistillSettings,
    out: Path,
    register: bool = True,
    registry: RegistrySettings | None = None,
) -> tuple[DistillResult, RegisteredEncoder | None]:
    """`distill` inside an MLflow run (params, per-step loss and teacher cosine, the EER table per condition,
    speed), then register the student with its thresholds."""
    configure(registry)
    with mlflow.start_run(run_name=f"distill-{settings.student}") as run:
        mlflow.log_params({k: str(v) for k, v in asdict(settings).items()})
        mlflow.set_tags({"task": "distill", "teacher": "ge2e", "student": settings.student})

        def log_step(row: dict[str, float]) -> None:
            mlflow.log_metrics({k: v for k, v in row.items() if k != "step"}, step=int(row["step"]))

        result = distill(settings, out, on_step=log_step, run_name=f"mlflow run {run.info.run_id}")
        table = {c: {"eer": result.eer[c], "min_dcf": result.min_dcf[c]} for c in result.eer}
        mlflow.log_metrics({**table_metrics(table), "train_seconds": result.seconds})
        mlflow.log_artifact(str(result.checkpoint), artifact_path="checkpoint")
    if not register:
        return result, None
    encoder = load_student_encoder(result.checkpoint, settings.student)
    clips, labels = eval_clips(settings.eval_speakers, settings.eval_utterances)
    pool = eval_babble_pool(settings.eval_speakers)
    thresholds = calibrate_thresholds(encoder, clips, labels, pool)
    target = (
        "encoders.ge2e.RobustGE2EEncoder" if settings.student == "ge2e" else "encoders.ecapa.EcapaEncoder"
    )
    registered = log_candidate(
        encoder,
        {"_target_": target, "weights": str(result.checkpoint)},
        table,
        speed_ms_8s(encoder, clips[0]),
        thresholds,
        {"training_run": run.info.run_id, "eval_set": _eval_set_tag(settings)},
        registry,
    )
    return result, registered


def _eval_set_tag(settings: DistillSettings) -> str:
    return (
        f"held-out generated speakers {settings.eval_speakers} x {settings.eval_utterances} utts; conditions "
        + ", ".join(EVAL_CONDITIONS)
    )


def degrade_all(
    clips: Sequence[np.ndarray], condition: Condition, pool: Sequence[np.ndarray], seed: int = 1
) -> list[np.ndarray]:
    """Every clip (float32 [n] 16 kHz) under `condition`, with the evaluation's fixed noise draws."""
    rng = np.random.default_rng(seed)
    return [degrade(c, condition, rng, pool) for c in clips]
