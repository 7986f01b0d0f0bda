"""Measure encoders the same way everywhere (registry metrics, benchmark script, notebooks): load the
evaluation clips of a generated `VoiceSet`, time single clips and batches with pinned threads."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from encoders.audio import load_audio
from encoders.base import SpeakerEncoder
from encoders.evaluation import embed_vectors, evaluate_encoder
from encoders.voices import VoiceSet


def clips_from_voice_set(voice_set: VoiceSet, fmt: str = "wav") -> tuple[list[np.ndarray], list[str]]:
    """Each clip of `voice_set` through the platform's intake (`load_audio`): float32 [n] mono at 16 kHz, plus
    its speaker label. fmt: "wav" or "mp3" (the same utterances after an MP3 round-trip)."""
    clips = [load_audio(c.wav_path if fmt == "wav" else c.mp3_path).samples for c in voice_set.clips]
    return clips, [str(c.speaker) for c in voice_set.clips]


def ms_per_clip(
    encoder: SpeakerEncoder, clip: np.ndarray, repeats: int = 3, threads: int | None = None
) -> float:
    """Median wall ms to embed one float32 [n] 16 kHz clip (after one warm-up call), with `threads` torch
    threads."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        embed_vectors(encoder, [clip], 16000)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            embed_vectors(encoder, [clip], 16000)
            times.append(1000 * (time.perf_counter() - start))
        return float(np.median(times))
    finally:
        torch.set_num_threads(previous)


def clips_per_second(encoder: SpeakerEncoder, clips: Sequence[np.ndarray], batch_size: int) -> float:
    """Throughput embedding `clips` (float32 [n] at 16 kHz) in batches of `batch_size`, one forward per
    batch."""
    start = time.perf_counter()
    for i in range(0, len(clips), batch_size):
        embed_vectors(encoder, list(clips[i : i + batch_size]), 16000)
    return len(clips) / (time.perf_counter() - start)


def registry_metrics(
    encoder: SpeakerEncoder, clips: Sequence[np.ndarray], speakers: Sequence[str]
) -> dict[str, float]:
    """EER, minDCF (P_target 0.01, C_miss = C_fa = 1), ms per clip and batch-8 clips/s on the evaluation
    set."""
    report, _ = evaluate_encoder(encoder, clips, speakers)
    metrics = report.as_metrics()
    metrics["ms_per_clip"] = ms_per_clip(encoder, clips[0])
    metrics["clips_per_s_batch8"] = clips_per_second(encoder, clips[:16], 8)
    return metrics
