"""GE2E speaker encoder: Resemblyzer's VoiceEncoder (3-layer LSTM, 256-d) with the weights shipped in its
wheel.

Clips are cut into 1.6 s partial windows as Resemblyzer does; `embed_arrays` runs the partials of a whole
batch of clips through the LSTM in one forward pass and averages them per clip. Given the clip Resemblyzer's
`preprocess_wav` makes, the vector is the one `VoiceEncoder.embed_utterance` returns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from encoders.audio import resample
from encoders.base import l2_normalize
from encoders.batched import BatchedSpeakerEncoder

REPO_ROOT = Path(__file__).resolve().parents[1]
DISTILLED_FORMAT = "voxpersona-ge2e-distilled/1"  # checkpoints written by encoders.distill (student "ge2e")


def _resolve(weights: str | Path) -> Path:
    """A local file for `weights`: a path (relative = to the repo root) or an MLflow URI."""
    from encoders.ecapa import resolve_weights_path

    return resolve_weights_path(weights)


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def trim_long_silences(wav: np.ndarray) -> np.ndarray:
    """Resemblyzer's `trim_long_silences`, sample for sample: float32 [n] at 16 kHz → float32 [m ≤ n] with
    pauses longer than webrtcvad's smoothed, dilated voice mask allows cut out.

    Resemblyzer packs the 16-bit PCM for webrtcvad with `struct.pack(*samples)`, one Python int per sample
    (~4 ms of its ~5 ms for 8 s); numpy makes the same bytes directly.
    """
    import webrtcvad
    from resemblyzer import hparams
    from scipy.ndimage import binary_dilation

    window = hparams.vad_window_length * hparams.sampling_rate // 1000
    wav = wav[: len(wav) - (len(wav) % window)]
    pcm = np.round(wav * (2**15 - 1)).astype("<i2").tobytes()
    vad = webrtcvad.Vad(mode=3)
    flags = np.array(
        [
            vad.is_speech(pcm[start * 2 : (start + window) * 2], sample_rate=hparams.sampling_rate)
            for start in range(0, len(wav), window)
        ],
        dtype=np.float64,
    )
    width = hparams.vad_moving_average_width
    padded = np.concatenate((np.zeros((width - 1) // 2), flags, np.zeros(width // 2)))
    summed = np.cumsum(padded, dtype=float)
    summed[width:] = summed[width:] - summed[:-width]
    mask = np.round(summed[width - 1 :] / width).astype(bool)
    mask = binary_dilation(mask, np.ones(hparams.vad_max_silence_length + 1))
    return wav[np.repeat(mask, window)]


class GE2EEncoder(BatchedSpeakerEncoder):
    """Resemblyzer VoiceEncoder: float32 16 kHz mono clips → float32 [256] unit vectors.

    weights: a Resemblyzer checkpoint (`{"model_state": ...}`); None uses the `pretrained.pt` in the wheel.
    partial_rate: partial windows per second (Resemblyzer's default 1.3); min_coverage: keep a last partial
    that covers at least this fraction of a window. trim_silences: run Resemblyzer's VAD-based removal of long
    pauses. denoise: spectral gating (`encoders.denoise`) before the mels — the cheap alternative to a
    distilled student. impersonation_threshold / consent_threshold: calibrated cosines that belong to these
    weights (read from the config by the platform; stored with the registered version).
    """

    name = "ge2e"
    dim = 256
    sample_rate = 16000
    pretrained = True
    training_data = "Resemblyzer GE2E: LibriSpeech-other, VoxCeleb 1+2 (per its README)"

    def __init__(
        self,
        weights: str | Path | None = None,
        device: str = "cpu",
        partial_rate: float = 1.3,
        min_coverage: float = 0.75,
        trim_silences: bool = True,
        num_threads: int | None = None,
        impersonation_threshold: float | None = None,
        consent_threshold: float | None = None,
        denoise: bool = False,
    ) -> None:
        from resemblyzer import VoiceEncoder

        if num_threads:
            torch.set_num_threads(int(num_threads))
        self.device = torch.device(device)
        self.model = VoiceEncoder(device=self.device, verbose=False)
        training: dict[str, object] = {}
        if weights is not None:
            self.weights_path = _resolve(weights)
            checkpoint = torch.load(self.weights_path, map_location="cpu", weights_only=False)
            self.model.load_state_dict(checkpoint["model_state"], strict=False)
            if checkpoint.get("format") == DISTILLED_FORMAT:
                training = checkpoint
        else:
            import resemblyzer

            self.weights_path = Path(resemblyzer.__file__).resolve().parent / "pretrained.pt"
        self.model.eval()
        self.weights_sha256 = _file_digest(self.weights_path)
        self.version = f"resemblyzer-0.1.4-{self.weights_sha256[:12]}"
        self.weights_source = f"resemblyzer wheel {self.weights_path.name} sha256:{self.weights_sha256[:12]}"
        if training:
            self.version = f"ge2e-distilled-{self.weights_sha256[:12]}"
            self.weights_source = (
                f"distilled from GE2E: {training.get('run', '?')} sha256:{self.weights_sha256[:12]}"
            )
            self.training_data = f"{self.training_data}; then {training.get('data', 'generated speech')}"
        self.consent_threshold = consent_threshold
        self.denoise = denoise
        self.partial_rate = partial_rate
        self.min_coverage = min_coverage
        self.trim_silences = trim_silences
        self.impersonation_threshold = impersonation_threshold

    @property
    def weights_files(self) -> list[Path]:
        return [self.weights_path]

    def params(self) -> dict[str, str | int | float | bool]:
        return {
            **super().params(),
            "partial_rate": self.partial_rate,
            "min_coverage": self.min_coverage,
            "trim_silences": self.trim_silences,
            "denoise": self.denoise,
        }

    def _mel_partials(self, samples: np.ndarray) -> np.ndarray:
        """samples: float32 [n] at 16 kHz → mel partials float32 [k, 160, 40] (Resemblyzer's frames)."""
        from resemblyzer import audio as ge2e_audio
        from resemblyzer.voice_encoder import VoiceEncoder

        wav = np.asarray(samples, dtype=np.float32)
        if self.denoise:
            from encoders.denoise import spectral_gate

            wav = spectral_gate(wav)
        wav = ge2e_audio.normalize_volume(wav, -30, increase_only=True)
        if self.trim_silences and wav.size > 16000:
            trimmed = trim_long_silences(wav)
            wav = trimmed if trimmed.size >= 16000 else wav  # keep clips the VAD would empty
        wav_slices, mel_slices = VoiceEncoder.compute_partial_slices(
            wav.size, self.partial_rate, self.min_coverage
        )
        needed = wav_slices[-1].stop
        if needed >= wav.size:
            wav = np.pad(wav, (0, needed - wav.size), "constant")
        mel = ge2e_audio.wav_to_mel_spectrogram(wav)
        return np.stack([mel[s] for s in mel_slices]).astype(np.float32)

    def embed_arrays(self, clips: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
        """clips: each float32 [n] mono at `sample_rate` Hz → float32 [len(clips), 256], L2-normalized.

        All partial windows of all clips go through the LSTM as one batch.
        """
        if not clips:
            return np.zeros((0, self.dim), dtype=np.float32)
        partials = [
            self._mel_partials(resample(np.asarray(c, dtype=np.float32), sample_rate, self.sample_rate))
            for c in clips
        ]
        counts = [p.shape[0] for p in partials]
        with torch.inference_mode():
            batch = torch.from_numpy(np.concatenate(partials)).to(self.device)
            partial_embeds = self.model(batch).cpu().numpy()
        out = np.empty((len(clips), self.dim), dtype=np.float32)
        start = 0
        for i, k in enumerate(counts):
            out[i] = l2_normalize(partial_embeds[start : start + k].mean(axis=0))
            start += k
        return out


class RobustGE2EEncoder(GE2EEncoder):
    """GE2E distilled for noise and codecs (`encoders.distill`, student "ge2e"): same LSTM and front end, weights
    fine-tuned so degraded audio lands on the teacher's clean embedding. weights: the committed checkpoint
    `encoders/weights/ge2e-robust.pt` by default (see encoders/weights/PROVENANCE.md)."""

    name = "ge2e_robust"

    def __init__(self, weights: str | Path | None = None, **kwargs: Any) -> None:
        super().__init__(weights=weights or DEFAULT_ROBUST_WEIGHTS, **kwargs)


DEFAULT_ROBUST_WEIGHTS = REPO_ROOT / "encoders" / "weights" / "ge2e-robust.pt"
