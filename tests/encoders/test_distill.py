"""Distillation: a student fed degraded audio moves toward GE2E's clean embedding, never trains on held-out
speakers, and its checkpoint loads as a platform encoder; the recording conditions do what they say."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from encoders.degrade import (
    Condition,
    codec_round_trip,
    colored_noise,
    degrade,
    phone_band,
    reverberate,
    room_impulse_response,
)
from encoders.denoise import spectral_gate
from encoders.distill import DistillSettings, distill, distill_training_voices, held_out_voices, timbre_of
from encoders.ecapa import EcapaEncoder
from encoders.ge2e import RobustGE2EEncoder

RATE = 16000


def _tone(seconds: float = 2.0, hz: float = 220.0) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (0.3 * np.sin(2 * np.pi * hz * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def _band_energy(x: np.ndarray, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.shape[0], 1 / RATE)
    return float(spectrum[(freqs >= low) & (freqs < high)].sum())


def test_noise_lands_at_the_requested_snr() -> None:
    clean = _tone()
    noisy = degrade(clean, Condition("white20", noise="white"), np.random.default_rng(0))
    snr = 10 * np.log10(np.mean(clean**2) / np.mean((noisy - clean) ** 2))
    assert abs(snr - 20.0) < 0.5


def test_phone_band_removes_everything_above_4_khz_and_codecs_keep_the_length() -> None:
    noise = colored_noise(RATE * 2, "white", np.random.default_rng(1)) * 0.1
    narrow = phone_band(noise)
    assert _band_energy(narrow, 4200, 8000) < 0.01 * _band_energy(noise, 4200, 8000)
    for codec in ("mp3", "opus"):
        decoded = codec_round_trip(_tone(), codec)
        assert abs(decoded.shape[0] - RATE * 2) < RATE * 0.1


def test_brown_noise_is_bass_heavy_and_rooms_keep_loudness() -> None:
    brown = colored_noise(RATE * 2, "brown", np.random.default_rng(2))
    assert _band_energy(brown, 0, 500) > 10 * _band_energy(brown, 2000, 8000)
    clip = _tone()
    wet = reverberate(clip, room_impulse_response(0.6, np.random.default_rng(3)))
    assert wet.shape == clip.shape and abs(np.std(wet) - np.std(clip)) < 1e-3
    assert not np.allclose(wet, clip)


def test_spectral_gate_cleans_stationary_noise_from_a_voice_like_signal() -> None:
    clean = np.concatenate([np.zeros(RATE // 2, np.float32), _tone(), np.zeros(RATE // 2, np.float32)])
    noisy = clean + 0.02 * colored_noise(clean.shape[0], "white", np.random.default_rng(4))
    gated = spectral_gate(noisy)
    pause, voiced = slice(0, RATE // 2), slice(RATE // 2, RATE // 2 + 2 * RATE)
    assert np.mean(gated[pause] ** 2) < 0.1 * np.mean(noisy[pause] ** 2)  # the hiss in pauses is gone
    level_db = 10 * np.log10(np.mean(gated[voiced] ** 2) / np.mean(clean[voiced] ** 2))
    assert abs(level_db) < 1.0  # the voice is kept


def test_training_speakers_share_no_timbre_with_the_held_out_speakers() -> None:
    held = held_out_voices(12)
    train = distill_training_voices(40, held, seed=0)
    held_espeak = {v.name for v in held if v.engine == "espeak"}
    assert not {v.name for _, v in train if v.engine == "espeak"} & held_espeak
    assert not [v for _, v in train if v.engine != "espeak"], "recorded voices are all held out (or twins)"


@pytest.fixture(scope="module")
def tiny_ge2e_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path]:
    out = tmp_path_factory.mktemp("distill") / "ge2e-robust.pt"
    return distill(DistillSettings.tiny(), out, run_name="test"), out


def test_distilled_ge2e_moves_toward_the_teacher_and_loads_as_the_robust_encoder(
    tiny_ge2e_run: tuple[object, Path],
) -> None:
    result, out = tiny_ge2e_run
    assert result.teacher_cosine_after > result.teacher_cosine_before  # type: ignore[attr-defined]
    assert not set(result.train_speakers) & {  # type: ignore[attr-defined]
        v.id for v in held_out_voices(4)
    }
    encoder = RobustGE2EEncoder(weights=out)
    assert encoder.pretrained and encoder.name == "ge2e_robust"
    assert encoder.weights_source.startswith("distilled from GE2E: test")
    assert encoder.version.startswith("ge2e-distilled-")
    # Still a speaker encoder on held-out voices in noise: far better than chance.
    assert result.eer["mp3-white20"] < 0.25  # type: ignore[attr-defined]


def test_ecapa_student_learns_toward_the_teacher_from_scratch(tmp_path: Path) -> None:
    result = distill(DistillSettings.tiny(student="ecapa"), tmp_path / "ecapa.pt", run_name="test")
    assert result.teacher_cosine_after > result.teacher_cosine_before + 0.05
    encoder = EcapaEncoder(weights=result.checkpoint)
    assert encoder.pretrained and encoder.dim == 256
    assert result.eer["mp3-white20"] < 0.5  # better than a coin on noisy held-out speakers


def test_committed_robust_encoder_keeps_noisy_uploads_closer_to_the_clean_voice() -> None:
    from encoders import build_encoder
    from encoders.config import load_encoder_config
    from encoders.distill import eval_babble_pool, eval_clips
    from encoders.ge2e import GE2EEncoder

    robust = build_encoder(load_encoder_config("ge2e_robust"))
    assert isinstance(robust, RobustGE2EEncoder) and robust.pretrained
    assert robust.weights_source.startswith("distilled from GE2E")
    assert robust.consent_threshold is not None and robust.impersonation_threshold is not None
    teacher = GE2EEncoder()
    clips, _ = eval_clips(4, 2)  # held-out speakers
    rng = np.random.default_rng(5)
    noisy = [
        degrade(c, Condition("babble10", noise="babble", snr_db=10.0, codec="mp3"), rng, eval_babble_pool(4))
        for c in clips
    ]
    clean_ref = teacher.embed_arrays(clips, RATE)
    by_teacher = np.sum(teacher.embed_arrays(noisy, RATE) * clean_ref, axis=1)
    by_robust = np.sum(robust.embed_arrays(noisy, RATE) * clean_ref, axis=1)
    assert by_robust.mean() > by_teacher.mean()


def test_the_margin_loss_labels_a_voice_by_timbre_not_by_language() -> None:
    assert timbre_of("espeak:cmn+max@p40") == timbre_of("espeak:en-us+max@p40") == "espeak:max@p40"
    assert timbre_of("espeak:en-us+max@p40") != timbre_of("espeak:en-us+max@p60")
    assert timbre_of("espeak:en-us+max") != timbre_of("espeak:en-us+f4")
    assert timbre_of("flite:kal") == "flite:kal"
