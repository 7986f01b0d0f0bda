"""ECAPA-TDNN speaker encoder (SpeechBrain's architecture) over 80-band log-mel filterbanks at 16 kHz.

Weights come, in order, from: a configured local path or MLflow URI (a SpeechBrain pretrained folder with
`embedding_model.ckpt`, e.g. `speechbrain/spkrec-ecapa-voxceleb` fetched once by a user with internet, or a
checkpoint written by `encoders.training`), else the default training output `var/models/ecapa/ecapa.pt`.
Random initialisation happens only when `allow_random=True` and is reported as `pretrained=False`.
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
DEFAULT_TRAINED_WEIGHTS = REPO_ROOT / "var" / "models" / "ecapa" / "ecapa.pt"
CHECKPOINT_FORMAT = "voxpersona-ecapa/1"
SPEECHBRAIN_CKPT = "embedding_model.ckpt"
RANDOM_WEIGHTS = "random"  # weights: "random" (+ allow_random) pins random init even if trained weights exist

# The architecture of speechbrain/spkrec-ecapa-voxceleb (its hyperparams.yaml); its checkpoint holds only
# weights.
SPEECHBRAIN_VOXCELEB_ARCH: dict[str, Any] = {
    "n_mels": 80,
    "channels": [1024, 1024, 1024, 1024, 3072],
    "attention_channels": 128,
    "lin_neurons": 192,
}


class EncoderWeightsMissing(RuntimeError):
    """No usable weights were found and random initialisation was not explicitly allowed."""


def resolve_weights_path(weights: str | Path) -> Path:
    """A local path for `weights`: a filesystem path, or an MLflow URI (`models:/`, `runs:/`, …) downloaded
    once."""
    text = str(weights)
    if "://" in text or text.startswith(("models:/", "runs:/")):
        import mlflow

        return Path(mlflow.artifacts.download_artifacts(artifact_uri=text))
    path = Path(text).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


def forget_speechbrain_redirects() -> None:
    """Drop SpeechBrain's not-yet-imported deprecation redirects to its optional integrations
    (`speechbrain.k2_integration` → `speechbrain.integrations.k2_fsa`, `….lobes.models.flair`, …) from
    `sys.modules`. Those integrations need packages that are not installed (k2, flair, spacy): anything that walks
    `sys.modules` reading `__file__` — hypothesis, `inspect.getmodule` — triggers their import and gets an
    ImportError in code that never uses SpeechBrain. The integrations themselves (`speechbrain.integrations.*`)
    and every other redirect (`speechbrain.pretrained`) import as before; only the deprecated alias names of the
    integrations stop resolving."""
    import sys

    from speechbrain.utils.importutils import LazyModule

    for name, module in list(sys.modules.items()):
        if (
            isinstance(module, LazyModule)
            and module.lazy_module is None
            and str(module.target).startswith("speechbrain.integrations.")
        ):
            del sys.modules[name]


def build_ecapa_model(n_mels: int, channels: Sequence[int], attention_channels: int, lin_neurons: int) -> Any:
    """A SpeechBrain `ECAPA_TDNN` taking fbanks float32 [batch, frames, n_mels] → float32 [batch, 1,
    lin_neurons]."""
    from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN

    forget_speechbrain_redirects()

    return ECAPA_TDNN(
        input_size=n_mels,
        channels=list(channels),
        attention_channels=attention_channels,
        lin_neurons=lin_neurons,
    )


def make_fbank(n_mels: int) -> Any:
    """SpeechBrain `Fbank`: waveforms float32 [batch, n] at 16 kHz → log-mel float32 [batch, frames,
    n_mels]."""
    from speechbrain.lobes.features import Fbank

    forget_speechbrain_redirects()

    return Fbank(n_mels=n_mels)


def sentence_mean_normalize(feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Subtract each utterance's mean feature over its valid frames (SpeechBrain's sentence-level
    InputNormalization with std_norm=False). feats: float32 [batch, frames, bands]; lengths: float32 [batch],
    fraction of frames valid.
    """
    frames = feats.shape[1]
    valid = torch.clamp((lengths * frames).round().long(), min=1)
    mask = (torch.arange(frames)[None, :] < valid[:, None]).to(feats.dtype).unsqueeze(-1)
    mean = (feats * mask).sum(dim=1, keepdim=True) / valid[:, None, None].to(feats.dtype)
    return (feats - mean) * mask


def pad_batch(clips: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """clips: float32 [n_i] each → (zero-padded float32 [batch, max n], relative lengths float32 [batch])."""
    longest = max(int(c.shape[0]) for c in clips)
    wavs = torch.zeros(len(clips), longest)
    for i, c in enumerate(clips):
        wavs[i, : c.shape[0]] = torch.from_numpy(np.ascontiguousarray(c, dtype=np.float32))
    lengths = torch.tensor([c.shape[0] / longest for c in clips], dtype=torch.float32)
    return wavs, lengths


class EcapaEncoder(BatchedSpeakerEncoder):
    """ECAPA-TDNN: float32 16 kHz mono clips → float32 [lin_neurons] unit vectors (192-d by default).

    weights: path or MLflow URI of a SpeechBrain folder/`embedding_model.ckpt` or of our training checkpoint;
    None looks for the default training output; "random" (with allow_random) forces random init. The architecture comes from the checkpoint (ours) or the
    SpeechBrain VoxCeleb recipe (theirs); `n_mels`/`channels`/`attention_channels`/`lin_neurons` only apply to
    random init. allow_random: build untrained weights (seeded by `seed`) when none are found — tagged
    pretrained=False.
    """

    name = "ecapa"
    sample_rate = 16000

    def __init__(
        self,
        weights: str | Path | None = None,
        allow_random: bool = False,
        device: str = "cpu",
        n_mels: int = 80,
        channels: Sequence[int] = (512, 512, 512, 512, 1536),
        attention_channels: int = 128,
        lin_neurons: int = 192,
        seed: int = 0,
        num_threads: int | None = None,
        max_batch: int = 1,
        impersonation_threshold: float | None = None,
        consent_threshold: float | None = None,
    ) -> None:
        # Calibrated cosines that belong to these weights (read from the config by the platform).
        self.impersonation_threshold = impersonation_threshold
        self.consent_threshold = consent_threshold
        if num_threads:
            torch.set_num_threads(int(num_threads))
        self.max_batch = max_batch
        self.device = torch.device(device)
        arch: dict[str, Any] = {
            "n_mels": n_mels,
            "channels": list(channels),
            "attention_channels": attention_channels,
            "lin_neurons": lin_neurons,
        }
        state, arch, source, training_data, weights_file = self._load_weights(weights, allow_random, arch)
        if state is None:
            torch.manual_seed(seed)
        self.arch = arch
        self.model = build_ecapa_model(**arch)
        if state is not None:
            self.model.load_state_dict(state)
        self.model.to(self.device).eval()
        self.fbank = make_fbank(int(arch["n_mels"])).to(self.device)
        self.dim = int(arch["lin_neurons"])
        self.pretrained = state is not None
        self.weights_source = source
        self.training_data = training_data
        self._weights_file = weights_file
        if weights_file is not None:
            self.version = "sha256:" + hashlib.sha256(weights_file.read_bytes()).hexdigest()[:12]
        else:
            self.version = f"random-seed{seed}"

    @staticmethod
    def _load_weights(
        weights: str | Path | None, allow_random: bool, arch: dict[str, Any]
    ) -> tuple[dict[str, torch.Tensor] | None, dict[str, Any], str, str, Path | None]:
        """(state dict or None, architecture, provenance, training data, weights file) for the configured
        weights."""
        if str(weights).lower() == RANDOM_WEIGHTS:
            if not allow_random:
                raise EncoderWeightsMissing('weights: "random" needs allow_random=true')
            return None, arch, "random init", "none", None
        if weights is None:
            if DEFAULT_TRAINED_WEIGHTS.exists():
                weights = DEFAULT_TRAINED_WEIGHTS
            elif allow_random:
                return None, arch, "random init", "none", None
            else:
                raise EncoderWeightsMissing(
                    "ECAPA has no weights: set encoder.weights to a SpeechBrain pretrained folder "
                    "(embedding_model.ckpt), a trained checkpoint or an MLflow URI; or train one with "
                    f"scripts/train_ecapa.py (writes {DEFAULT_TRAINED_WEIGHTS}); or set "
                    "encoder.allow_random=true "
                    "for an untrained (pretrained=false) model."
                )
        path = resolve_weights_path(weights)
        if path.is_dir():
            candidates = [path / SPEECHBRAIN_CKPT, path / "ecapa.pt", *sorted(path.rglob("ecapa.pt"))]
            found = next((p for p in candidates if p.is_file()), None)
            if found is None:
                raise EncoderWeightsMissing(f"no {SPEECHBRAIN_CKPT} or ecapa.pt under {path}")
            path = found
        if not path.is_file():
            raise EncoderWeightsMissing(f"ECAPA weights not found: {path}")
        blob = torch.load(path, map_location="cpu", weights_only=False)
        if isinstance(blob, dict) and blob.get("format") == CHECKPOINT_FORMAT:
            training = blob.get("training", {})
            return (
                blob["state_dict"],
                dict(blob["arch"]),
                f"trained: {training.get('run', path.name)}",
                str(training.get("data", "generated voices")),
                path,
            )
        # SpeechBrain's embedding_model.ckpt: a bare state dict of the VoxCeleb recipe's ECAPA_TDNN.
        return blob, dict(SPEECHBRAIN_VOXCELEB_ARCH), f"speechbrain checkpoint {path}", "VoxCeleb 1+2", path

    @property
    def weights_files(self) -> list[Path]:
        return [self._weights_file] if self._weights_file is not None else []

    def params(self) -> dict[str, str | int | float | bool]:
        return {
            **super().params(),
            "n_mels": int(self.arch["n_mels"]),
            "channels": ",".join(str(c) for c in self.arch["channels"]),
            "attention_channels": int(self.arch["attention_channels"]),
            "lin_neurons": int(self.arch["lin_neurons"]),
        }

    def features(self, wavs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """wavs: float32 [batch, n] at 16 kHz; lengths: float32 [batch] relative → normalized fbanks
        [batch, frames,
        n_mels]."""
        return sentence_mean_normalize(self.fbank(wavs), lengths)

    def embed_arrays(self, clips: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
        """clips: each float32 [n] mono at `sample_rate` Hz → float32 [len(clips), dim], L2-normalized; forward
        passes of at most `max_batch` clips."""
        return self.embed_in_chunks(clips, sample_rate, self.max_batch)

    def embed_chunk(self, clips: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
        """One padded forward pass: clips (float32 [n] each at `sample_rate` Hz) → float32 [len(clips), dim]."""
        if not clips:
            return np.zeros((0, self.dim), dtype=np.float32)
        at_rate = [resample(np.asarray(c, dtype=np.float32), sample_rate, self.sample_rate) for c in clips]
        wavs, lengths = pad_batch(at_rate)
        with torch.inference_mode():
            wavs, lengths = wavs.to(self.device), lengths.to(self.device)
            vectors = self.model(self.features(wavs, lengths), lengths).squeeze(1).cpu().numpy()
        return np.stack([l2_normalize(v) for v in vectors])
