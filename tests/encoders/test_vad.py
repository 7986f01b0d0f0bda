"""Silero VAD scored in one batched pass gives what Silero's own streaming loop gives, window for window."""

from __future__ import annotations

import numpy as np
import torch

from encoders import load_audio
from encoders.vad import speech_probabilities, speech_seconds
from encoders.voices import VoiceSet


def _streamed(samples: np.ndarray) -> np.ndarray:
    from silero_vad import load_silero_vad

    threads = torch.get_num_threads()
    model = load_silero_vad(onnx=False)
    torch.set_num_threads(threads)
    n = len(samples) // 512
    with torch.inference_mode():
        model.reset_states()
        probs = model.audio_forward(torch.from_numpy(samples[: n * 512].copy())[None], 16000)
    return np.asarray(probs, dtype=np.float32).reshape(-1)


def test_batched_probabilities_equal_silero_streaming(voice_set: VoiceSet) -> None:
    for clip in voice_set.clips[:3]:
        samples = load_audio(clip.wav_path).samples
        ours = speech_probabilities(samples)
        assert ours.shape == (len(samples) // 512,) and ours.dtype == np.float32
        assert np.allclose(ours, _streamed(samples), atol=1e-4)


def test_speech_is_found_in_a_voice_and_not_in_noise_or_silence(voice_set: VoiceSet) -> None:
    voice = load_audio(voice_set.clips[0].wav_path).samples
    noise = (np.random.default_rng(0).standard_normal(16000 * 6) * 0.05).astype(np.float32)
    assert speech_seconds(voice) > 3
    assert speech_seconds(noise) < 1
    assert speech_seconds(np.zeros(16000 * 6, np.float32)) == 0
    assert speech_probabilities(np.zeros(100, np.float32)).shape == (0,)
