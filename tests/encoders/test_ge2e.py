"""GE2E (Resemblyzer) on generated speakers: real pretrained weights that tell speakers apart, and the
impersonation check built on it."""

from __future__ import annotations

import numpy as np
import pytest

from encoders.audio import load_audio
from encoders.evaluation import evaluate_encoder
from encoders.ge2e import GE2EEncoder
from encoders.impersonation import configured_threshold, nearest_other_creator


@pytest.fixture(scope="module")
def ge2e() -> GE2EEncoder:
    return GE2EEncoder()


@pytest.fixture(scope="module")
def clips(voice_set):  # type: ignore[no-untyped-def]
    return [load_audio(c.wav_path) for c in voice_set.clips]


def test_ge2e_reports_real_pretrained_weights(ge2e: GE2EEncoder) -> None:
    assert ge2e.pretrained is True
    assert ge2e.dim == 256
    assert ge2e.version.startswith("resemblyzer-0.1.4-")
    assert ge2e.weights_files[0].name == "pretrained.pt"


def test_ge2e_separates_generated_speakers(ge2e: GE2EEncoder, clips, voice_set) -> None:  # type: ignore[no-untyped-def]
    report, vectors = evaluate_encoder(ge2e, [c.samples for c in clips], [c.speaker for c in voice_set.clips])
    assert vectors.shape == (len(clips), 256)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert report.eer < 0.15  # a random encoder sits near 0.5
    assert report.mean_target_score > report.mean_nontarget_score + 0.1


def test_batched_forward_matches_one_by_one(ge2e: GE2EEncoder, clips) -> None:  # type: ignore[no-untyped-def]
    batch = ge2e.embed_batch(clips[:4])
    single = [ge2e.embed(c) for c in clips[:4]]
    for b, s in zip(batch, single, strict=True):
        assert np.allclose(b.vector, s.vector, atol=1e-4)
        assert (b.encoder, b.version, b.pretrained) == ("ge2e", ge2e.version, True)


def test_mp3_round_trip_keeps_the_speaker(ge2e: GE2EEncoder, voice_set) -> None:  # type: ignore[no-untyped-def]
    first = voice_set.clips[0]
    other_speaker = next(c for c in voice_set.clips if c.speaker != first.speaker)
    wav, mp3 = ge2e.embed(load_audio(first.wav_path)), ge2e.embed(load_audio(first.mp3_path))
    other = ge2e.embed(load_audio(other_speaker.wav_path))
    assert wav.cosine(mp3) > 0.95
    assert wav.cosine(mp3) > wav.cosine(other)


def test_input_at_another_rate_is_resampled_not_misread(ge2e: GE2EEncoder, clips) -> None:  # type: ignore[no-untyped-def]
    from encoders.audio import resample

    clip = clips[0]
    at_24k = resample(clip.samples, 16000, 24000)
    a = ge2e.embed_vector(clip.samples, 16000)
    b = ge2e.embed_vector(at_24k, 24000)
    assert float(np.dot(a, b)) > 0.98


def test_threshold_comes_from_the_ge2e_config() -> None:
    threshold = configured_threshold("ge2e")
    assert threshold is not None and 0.0 < threshold < 1.0


def test_same_voice_is_flagged_and_a_different_one_is_not(ge2e: GE2EEncoder, voice_set) -> None:  # type: ignore[no-untyped-def]
    encoder = ge2e
    by_speaker = voice_set.by_speaker()
    speakers = sorted(by_speaker)
    personas = {
        f"persona-{s}": encoder.embed(load_audio(by_speaker[s][0].wav_path)).vector for s in speakers[1:]
    }
    same = encoder.embed(load_audio(by_speaker[speakers[1]][1].wav_path)).vector
    match = nearest_other_creator(same, personas)
    assert match is not None and match[0] == f"persona-{speakers[1]}"
    newcomer = encoder.embed(load_audio(by_speaker[speakers[0]][0].wav_path)).vector
    hit = nearest_other_creator(newcomer, personas)
    assert hit is None or hit[1] < match[1]


def test_no_candidates_and_dimension_mismatch() -> None:
    assert nearest_other_creator(np.ones(4, np.float32), {}, threshold=0.5) is None
    with pytest.raises(ValueError, match="dimension"):
        nearest_other_creator(np.ones(4, np.float32), {"p": np.ones(3, np.float32)}, threshold=0.5)


def test_trim_matches_resemblyzer_sample_for_sample(clips) -> None:  # type: ignore[no-untyped-def]
    from resemblyzer import audio as resemblyzer_audio

    from encoders.ge2e import trim_long_silences

    for clip in clips[:6]:
        ours, theirs = trim_long_silences(clip.samples), resemblyzer_audio.trim_long_silences(clip.samples)
        assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)


def test_a_preprocessed_clip_embeds_as_resemblyzer_embeds_it(ge2e: GE2EEncoder, clips) -> None:  # type: ignore[no-untyped-def]
    from resemblyzer import preprocess_wav

    for clip in clips[:3]:
        expected = ge2e.model.embed_utterance(preprocess_wav(clip.samples))
        assert float(np.dot(ge2e.embed(clip).vector, expected)) > 0.9999
