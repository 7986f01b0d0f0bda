"""Impersonation check: flags an upload whose voice is another creator's, stays quiet otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from encoders.audio import load_audio
from encoders.ge2e import GE2EEncoder
from encoders.impersonation import configured_threshold, nearest_other_creator


def test_threshold_comes_from_the_ge2e_config() -> None:
    threshold = configured_threshold("ge2e")
    assert threshold is not None and 0.0 < threshold < 1.0


def test_same_voice_is_flagged_and_a_different_one_is_not(voice_set) -> None:  # type: ignore[no-untyped-def]
    encoder = GE2EEncoder()
    by_speaker = voice_set.by_speaker()
    speakers = sorted(by_speaker)
    personas = {f"persona-{s}": encoder.embed(load_audio(by_speaker[s][0].wav_path)).vector for s in speakers[1:]}
    same = encoder.embed(load_audio(by_speaker[speakers[1]][1].wav_path)).vector
    match = nearest_other_creator(same, personas)
    assert match is not None and match[0] == f"persona-{speakers[1]}"
    newcomer = encoder.embed(load_audio(by_speaker[speakers[0]][0].wav_path)).vector
    others = {k: v for k, v in personas.items()}
    hit = nearest_other_creator(newcomer, others)
    assert hit is None or hit[1] < match[1]


def test_no_candidates_and_dimension_mismatch() -> None:
    assert nearest_other_creator(np.ones(4, np.float32), {}, threshold=0.5) is None
    with pytest.raises(ValueError, match="dimension"):
        nearest_other_creator(np.ones(4, np.float32), {"p": np.ones(3, np.float32)}, threshold=0.5)
