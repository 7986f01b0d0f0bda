"""Speech presence: Silero VAD (its weights ship inside the silero-vad wheel; nothing is downloaded)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

_WINDOW = 512  # Silero's fixed window at 16 kHz (32 ms)


@dataclass(frozen=True)
class _Silero:
    """The 16 kHz Silero network split where its recurrence is.

    Per 32 ms window Silero runs STFT → conv encoder on the window plus the 64 samples before it (audio, not
    state), then one LSTM-cell step and a sigmoid head. Stepping that window by window from Python is ~250
    calls for 8 s (~30 ms on one core). The STFT and encoder need no state, so every window goes through them
    as one batch; the cell's weights run as an `nn.LSTM` over the whole sequence in one call. Same streaming
    probabilities as `model.audio_forward` (to float rounding), in ~4 ms for 8 s.
    """

    net: Any  # TorchScript module: run_extractors(x [w, context + 512]) → encoder(·) → [w, 128, 1]
    lstm: torch.nn.LSTM
    head: Any  # TorchScript Sequential: [w, 128, 1] → speech probability [w, 1, 1]
    context: int


@functools.cache
def _silero() -> _Silero:
    # silero_vad's model module calls torch.set_num_threads(1) at import: keep the caller's setting.
    threads = torch.get_num_threads()
    try:
        from silero_vad import load_silero_vad

        model: Any = load_silero_vad(onnx=False)
    finally:
        torch.set_num_threads(threads)
    net = model._model  # the 16 kHz network (the wrapper only adds state and the 8 kHz branch)
    cell = net.decoder.rnn
    lstm = torch.nn.LSTM(cell.weight_ih.shape[1], cell.weight_hh.shape[1], batch_first=True)
    lstm.load_state_dict(
        {f"{name}_l0": getattr(cell, name) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    )
    return _Silero(net, lstm.eval(), net.decoder.decoder, int(net.context_size_samples))


def speech_probabilities(samples_16k: np.ndarray) -> np.ndarray:
    """float32 [n] mono at 16 kHz → float32 [n // 512] speech probability per 32 ms window, as Silero
    streaming over the whole clip from a fresh state scores it."""
    n = len(samples_16k) // _WINDOW
    if n == 0:
        return np.zeros(0, np.float32)
    silero = _silero()
    windows = torch.from_numpy(np.ascontiguousarray(samples_16k[: n * _WINDOW], dtype=np.float32))
    windows = windows.reshape(n, _WINDOW)
    context = torch.zeros(n, silero.context)
    context[1:] = windows[:-1, -silero.context :]
    with torch.inference_mode():
        features = silero.net.encoder(silero.net.run_extractors(torch.cat([context, windows], dim=1)))
        hidden, _ = silero.lstm(features.squeeze(-1).unsqueeze(0))  # [1, n, 128]
        probs = silero.head(hidden[0].unsqueeze(-1))  # [n, 1, 1]
    return probs.reshape(n).numpy().astype(np.float32, copy=False)


def speech_seconds(samples_16k: np.ndarray, threshold: float = 0.5) -> float:
    """Seconds of float32 [n] 16 kHz audio whose windows Silero scores as speech (≥ threshold)."""
    probs = speech_probabilities(samples_16k)
    return float(np.count_nonzero(probs >= threshold) * _WINDOW / 16000)
