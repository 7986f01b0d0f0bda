"""Speaker-verification metrics: trial lists, EER, minDCF and DET points over cosine scores.

minDCF uses the NIST SRE 2010-style operating point stated in `DetectionCost` (P_target 0.01, C_miss 1, C_fa
1) and is normalized by the cost of the best trivial system, so 1.0 means "no better than always rejecting".
Numbers on generated speech rank encoders; they do not predict accuracy on real uploads.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from encoders.base import SpeakerEncoder, l2_normalize


@dataclass(frozen=True)
class Trial:
    """A verification trial between utterances `left` and `right` (indices into an utterance list)."""

    left: int
    right: int
    target: bool


@dataclass(frozen=True)
class DetectionCost:
    """The operating point of minDCF: prior of a target trial and the costs of a miss and a false alarm."""

    p_target: float = 0.01
    c_miss: float = 1.0
    c_fa: float = 1.0


@dataclass(frozen=True)
class DetCurve:
    """DET points: false-alarm and miss rates (float64 [k], in [0, 1]) at each score threshold (float64
    [k])."""

    false_alarm: np.ndarray
    miss: np.ndarray
    thresholds: np.ndarray


@dataclass(frozen=True)
class VerificationReport:
    """EER and minDCF of an encoder over a trial list, plus its timing on the evaluation clips."""

    encoder: str
    eer: float
    min_dcf: float
    target_trials: int
    nontarget_trials: int
    ms_per_clip: float
    mean_target_score: float
    mean_nontarget_score: float

    def as_metrics(self) -> dict[str, float]:
        return {
            "eer": self.eer,
            "min_dcf": self.min_dcf,
            "ms_per_clip": self.ms_per_clip,
            "target_trials": float(self.target_trials),
            "nontarget_trials": float(self.nontarget_trials),
            "mean_target_score": self.mean_target_score,
            "mean_nontarget_score": self.mean_nontarget_score,
        }


def make_trials(speakers: Sequence[str]) -> list[Trial]:
    """Every unordered pair of utterances; target when both come from the same speaker.

    speakers: the speaker label of each utterance, in utterance order.
    """
    return [Trial(i, j, speakers[i] == speakers[j]) for i, j in combinations(range(len(speakers)), 2)]


def trials_from_voice_set(voice_set: object) -> tuple[list[str], list[Trial]]:
    """Speaker labels (one per clip, in `voice_set.clips` order) and all-pairs trials for a `VoiceSet`."""
    speakers = [str(clip.speaker) for clip in voice_set.clips]  # type: ignore[attr-defined]
    return speakers, make_trials(speakers)


def cosine_scores(vectors: np.ndarray, trials: Iterable[Trial]) -> tuple[np.ndarray, np.ndarray]:
    """Cosine score and target label of each trial.

    vectors: float32 [n_utterances, dim] (normalized here). Returns (scores float64 [t], labels bool [t]).
    """
    unit = np.stack([l2_normalize(v) for v in np.asarray(vectors, dtype=np.float32)])
    trial_list = list(trials)
    left = np.array([t.left for t in trial_list], dtype=np.int64)
    right = np.array([t.right for t in trial_list], dtype=np.int64)
    scores = np.einsum("ij,ij->i", unit[left].astype(np.float64), unit[right].astype(np.float64))
    labels = np.array([t.target for t in trial_list], dtype=bool)
    return scores, labels


def det_curve(scores: np.ndarray, labels: np.ndarray) -> DetCurve:
    """Miss and false-alarm rates when accepting every trial scoring >= each threshold.

    scores: float [t]; labels: bool [t] (True = same speaker). Thresholds are the distinct scores in
    ascending order,
    plus +inf (accept nothing).
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    n_target, n_nontarget = int(labels.sum()), int((~labels).sum())
    if n_target == 0 or n_nontarget == 0:
        raise ValueError("need at least one target and one non-target trial")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores, sorted_labels = scores[order], labels[order]
    # Rejecting the k lowest-scoring trials: misses = targets among them, false alarms = non-targets above.
    misses = np.concatenate([[0], np.cumsum(sorted_labels)])
    false_alarms = n_nontarget - np.concatenate([[0], np.cumsum(~sorted_labels)])
    thresholds = np.concatenate([sorted_scores, [np.inf]])
    # Keep one point per distinct threshold (ties move together).
    keep = np.concatenate([[True], np.diff(thresholds) > 0])
    return DetCurve(
        false_alarm=false_alarms[keep] / n_nontarget,
        miss=misses[keep] / n_target,
        thresholds=thresholds[keep],
    )


def equal_error_rate(scores: np.ndarray, labels: np.ndarray) -> float:
    """EER in [0, 1]: where miss rate equals false-alarm rate, interpolated between DET points."""
    det = det_curve(scores, labels)
    diff = det.miss - det.false_alarm  # rises from -1 to +1 as the threshold rises
    idx = int(np.searchsorted(diff, 0.0))
    if idx == 0:
        return float(det.false_alarm[0])
    d0, d1 = diff[idx - 1], diff[idx]
    w = 0.0 if d1 == d0 else -d0 / (d1 - d0)
    fa = det.false_alarm[idx - 1] + w * (det.false_alarm[idx] - det.false_alarm[idx - 1])
    miss = det.miss[idx - 1] + w * (det.miss[idx] - det.miss[idx - 1])
    return float((fa + miss) / 2)


def min_detection_cost(scores: np.ndarray, labels: np.ndarray, cost: DetectionCost | None = None) -> float:
    """Normalized minimum detection cost over all thresholds (see `DetectionCost` for the prior and costs)."""
    cost = cost or DetectionCost()
    det = det_curve(scores, labels)
    dcf = cost.c_miss * cost.p_target * det.miss + cost.c_fa * (1 - cost.p_target) * det.false_alarm
    default = min(cost.c_miss * cost.p_target, cost.c_fa * (1 - cost.p_target))
    return float(dcf.min() / default)


def threshold_at_false_alarm(scores: np.ndarray, labels: np.ndarray, false_alarm_rate: float) -> float:
    """The lowest cosine threshold whose false-alarm rate (non-target trials scoring >= it) is <= the
    target rate."""
    det = det_curve(scores, labels)
    ok = np.flatnonzero(det.false_alarm <= false_alarm_rate)
    return float(det.thresholds[ok[0]])


def embed_vectors(encoder: SpeakerEncoder, clips: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
    """Embed raw clips (each float32 [n] mono at `sample_rate` Hz) → float32 [len(clips), dim], L2-normalized.

    Uses the encoder's batched forward (`embed_arrays`) when it has one.
    """
    batched = getattr(encoder, "embed_arrays", None)
    if callable(batched):
        vectors = np.asarray(batched(list(clips), sample_rate), dtype=np.float32)
    else:
        vectors = np.stack(
            [encoder.embed_vector(np.asarray(c, dtype=np.float32), sample_rate) for c in clips]
        )
    return np.stack([l2_normalize(v) for v in vectors])


def evaluate_encoder(
    encoder: SpeakerEncoder,
    clips: Sequence[np.ndarray],
    speakers: Sequence[str],
    sample_rate: int = 16000,
    cost: DetectionCost | None = None,
) -> tuple[VerificationReport, np.ndarray]:
    """EER/minDCF over all-pairs trials of `clips` (float32 [n] each, mono, `sample_rate` Hz) labelled by
    `speakers`.

    Returns the report and the embeddings (float32 [len(clips), dim]).
    """
    start = time.perf_counter()
    vectors = embed_vectors(encoder, clips, sample_rate)
    ms_per_clip = 1000 * (time.perf_counter() - start) / max(1, len(clips))
    scores, labels = cosine_scores(vectors, make_trials(speakers))
    report = VerificationReport(
        encoder=encoder.name,
        eer=equal_error_rate(scores, labels),
        min_dcf=min_detection_cost(scores, labels, cost),
        target_trials=int(labels.sum()),
        nontarget_trials=int((~labels).sum()),
        ms_per_clip=ms_per_clip,
        mean_target_score=float(scores[labels].mean()),
        mean_nontarget_score=float(scores[~labels].mean()),
    )
    return report, vectors
