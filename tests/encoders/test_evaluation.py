"""EER, minDCF, DET points and trial lists on hand-checkable scores."""

from __future__ import annotations

import numpy as np
import pytest

from encoders.evaluation import (
    DetectionCost,
    det_curve,
    equal_error_rate,
    make_trials,
    min_detection_cost,
    threshold_at_false_alarm,
)


def _scores(targets: list[float], nontargets: list[float]) -> tuple[np.ndarray, np.ndarray]:
    return np.array(targets + nontargets), np.array([True] * len(targets) + [False] * len(nontargets))


def test_perfect_separation_has_zero_eer_and_zero_min_dcf() -> None:
    scores, labels = _scores([0.9, 0.8, 0.7], [0.1, 0.2, 0.3])
    assert equal_error_rate(scores, labels) == 0.0
    assert min_detection_cost(scores, labels) == 0.0


def test_one_crossing_pair_gives_one_third_eer() -> None:
    # Threshold between 0.3 and 0.5 misses one of three targets and accepts one of three non-targets.
    scores, labels = _scores([0.9, 0.8, 0.3], [0.5, 0.1, 0.2])
    assert equal_error_rate(scores, labels) == pytest.approx(1 / 3)


def test_indistinguishable_scores_give_chance_eer() -> None:
    rng = np.random.default_rng(0)
    scores, labels = _scores(list(rng.normal(size=4000)), list(rng.normal(size=4000)))
    assert equal_error_rate(scores, labels) == pytest.approx(0.5, abs=0.03)
    assert min_detection_cost(scores, labels) == pytest.approx(1.0, abs=0.05)


def test_min_dcf_uses_the_stated_prior_and_costs() -> None:
    scores, labels = _scores([0.9, 0.8, 0.3], [0.5, 0.1, 0.2])
    # With equal priors and costs the best threshold costs 0.5·(1/3) (miss one target) → normalized by 0.5.
    assert min_detection_cost(scores, labels, DetectionCost(p_target=0.5)) == pytest.approx(1 / 3)


def test_det_curve_runs_from_accept_all_to_reject_all() -> None:
    scores, labels = _scores([0.9, 0.8, 0.3], [0.5, 0.1, 0.2])
    det = det_curve(scores, labels)
    assert (det.false_alarm[0], det.miss[0]) == (1.0, 0.0)
    assert (det.false_alarm[-1], det.miss[-1]) == (0.0, 1.0)
    assert np.all(np.diff(det.false_alarm) <= 0) and np.all(np.diff(det.miss) >= 0)


def test_threshold_at_false_alarm_accepts_no_more_than_the_rate() -> None:
    scores, labels = _scores([0.9, 0.8, 0.3], [0.5, 0.1, 0.2, 0.4])
    threshold = threshold_at_false_alarm(scores, labels, 0.25)
    assert np.mean(scores[~labels] >= threshold) <= 0.25
    assert threshold == pytest.approx(0.5)


def test_trials_pair_every_utterance_once_and_mark_same_speaker_targets() -> None:
    trials = make_trials(["a", "a", "b"])
    assert [(t.left, t.right, t.target) for t in trials] == [(0, 1, True), (0, 2, False), (1, 2, False)]
