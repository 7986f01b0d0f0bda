"""Speech presence: Silero VAD (its weights ship inside the silero-vad wheel; nothing is downloaded)."""

from __future__ import annotations

import functools
import threading

import numpy as np
import torch

_WINDOW = 512  # Silero's fixed window at 16 kHz (32 ms)
# The model is a recurrent net stepped window by window in Python: 8 s is ~250 steps (~80 ms on one core).
# Cutting the clip into 16-window segments scored as one batch of independent streams gives the same
# speech/no-speech verdicts in ~12 ms; each segment starts from a fresh state, which costs a little context.
_SEGMENT = 16 * _WINDOW
_lock = threading.Lock()


@functools.cache
def _model() -> torch.nn.Module:
    # silero_vad's model module calls torch.set_num_threads(1) at import: keep the caller's setting.
    threads = torch.get_num_threads()
    try:
        from silero_vad import load_silero_vad

        model: torch.nn.Module = load_silero_vad(onnx=False)
    finally:
        torch.set_num_threads(threads)
    return model


def speech_probabilities(samples_16k: np.ndarray) -> np.ndarray:
    """float32 [n] mono at 16 kHz → float32 [n // 512] speech probability per 32 ms window."""
    n = len(samples_16k) // _WINDOW
    if n == 0:
        return np.zeros(0, np.float32)
    padded = np.zeros(-(-n * _WINDOW // _SEGMENT) * _SEGMENT, dtype=np.float32)
    padded[: n * _WINDOW] = samples_16k[: n * _WINDOW]
    segments = torch.from_numpy(padded.reshape(-1, _SEGMENT))
    model = _model()
    # The model keeps recurrent state between calls: one caller at a time, state reset per clip.
    with _lock, torch.inference_mode():
        model.reset_states()  # type: ignore[operator]
        probs = model.audio_forward(segments, 16000)  # type: ignore[operator]
    return np.asarray(probs, dtype=np.float32).reshape(-1)[:n]


def speech_seconds(samples_16k: np.ndarray, threshold: float = 0.5) -> float:
    """Seconds of float32 [n] 16 kHz audio whose windows Silero scores as speech (≥ threshold)."""
    probs = speech_probabilities(samples_16k)
    return float(np.count_nonzero(probs >= threshold) * _WINDOW / 16000)
