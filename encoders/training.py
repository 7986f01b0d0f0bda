"""Train a small ECAPA-TDNN on generated speakers with an additive angular margin (AAM-softmax) loss.

result, registered = run_training(TrainingSettings.tiny(), out_path)   # MLflow run + registered model

Training speakers: every installed espeak-ng voice × variant (several pitches each), flite and festival
voices, minus the held-out evaluation speakers (`encoders.voices.speaker_voices`), which are only used for
EER. Augmentation, applied offline per utterance: speed (0.95/1.05), pitch (±1 semitone), additive noise
(10–20 dB SNR) and an MP3 round-trip through soundfile. Generated speech is far more consistent than real
uploads: the EER here ranks models, it does not predict accuracy in the field.
"""

from __future__ import annotations

import io
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from encoders.audio import load_audio, normalize_loudness, resample
from encoders.ecapa import (
    CHECKPOINT_FORMAT,
    DEFAULT_TRAINED_WEIGHTS,
    EcapaEncoder,
    build_ecapa_model,
    make_fbank,
    pad_batch,
    sentence_mean_normalize,
)
from encoders.evaluation import cosine_scores, equal_error_rate, make_trials, min_detection_cost
from encoders.registry import RegisteredEncoder, RegistrySettings, configure, log_encoder, promote_best
from encoders.synthetic import BaseVoice, available_voices, synthesize
from encoders.voices import DEFAULT_CACHE, make_voices, speaker_voices

REPO_ROOT = Path(__file__).resolve().parents[1]
RATE = 16000
SENTENCES = (
    "The bright morning light crept slowly over the quiet hills.",
    "Please remember to bring the blue folder to the meeting tomorrow.",
    "A gentle wind carried the smell of fresh bread down the street.",
    "Seven old ships sailed past the harbour before the storm arrived.",
    "She counted the coins twice and still could not believe the total.",
    "Every evening the children played football in the empty parking lot.",
    "The museum opens at nine and closes early on public holidays.",
    "He tuned the guitar carefully before the concert began.",
    "Our neighbours painted their front door a cheerful shade of yellow.",
    "Rain fell steadily while the train waited at the small station.",
    "Could you tell me the way to the nearest post office, please?",
    "The scientist wrote her results neatly in a leather notebook.",
)


@dataclass(frozen=True)
class TrainingSettings:
    """Sizes and hyper-parameters. The defaults train in a few minutes on two CPU cores; `tiny()` in
    seconds."""

    train_speakers: int = 96
    utterances_per_speaker: int = 5
    eval_speakers: int = 12
    eval_utterances: int = 4
    augmentations_per_utterance: int = 2
    epochs: int = 8
    steps_per_epoch: int = 30
    batch_size: int = 32
    crop_seconds: float = 2.0
    n_mels: int = 80
    channels: tuple[int, ...] = (256, 256, 256, 256, 768)
    attention_channels: int = 64
    lin_neurons: int = 192
    margin: float = 0.2
    scale: float = 30.0
    learning_rate: float = 3e-3
    seed: int = 0
    threads: int = 2
    cache_dir: Path = field(default=REPO_ROOT / ".cache" / "voices" / "ecapa-train")

    @classmethod
    def tiny(cls, **overrides: Any) -> TrainingSettings:
        """A seconds-long run for tests: a handful of speakers, a narrow model, a few steps."""
        base: dict[str, Any] = {
            "train_speakers": 8,
            "utterances_per_speaker": 2,
            "eval_speakers": 4,
            "eval_utterances": 2,
            "augmentations_per_utterance": 1,
            "epochs": 2,
            "steps_per_epoch": 3,
            "batch_size": 8,
            "crop_seconds": 1.0,
            "channels": (32, 32, 32, 32, 96),
            "attention_channels": 16,
            "lin_neurons": 64,
        }
        return cls(**{**base, **overrides})

    @property
    def arch(self) -> dict[str, Any]:
        return {
            "n_mels": self.n_mels,
            "channels": list(self.channels),
            "attention_channels": self.attention_channels,
            "lin_neurons": self.lin_neurons,
        }


@dataclass
class TrainingResult:
    """A finished run: the checkpoint (loadable by `EcapaEncoder(weights=...)`), per-epoch history and
    held-out EER."""

    checkpoint: Path
    history: list[dict[str, float]]
    eer: float
    min_dcf: float
    train_speakers: list[str]
    eval_speakers: list[str]
    seconds: float


def training_voices(count: int, exclude: set[str], seed: int = 0) -> list[tuple[str, BaseVoice]]:
    """`count` (speaker id, voice) pairs not in `exclude`: installed voices first, then espeak-ng variants at
    other pitches (a different pitch makes a different synthetic speaker)."""
    # An espeak-ng variant (m1, f2, …) is one timbre across languages: hold it out everywhere, not just in
    # one.
    held_variants = {v.name for v in available_voices() if v.id in exclude and v.engine == "espeak"}
    base = [
        v
        for v in available_voices()
        if v.id not in exclude and not (v.engine == "espeak" and v.name in held_variants)
    ]
    speakers: list[tuple[str, BaseVoice]] = [(v.id, v) for v in base]
    espeak = [v for v in base if v.engine == "espeak"]
    for pitch in (25, 75, 10, 90, 40, 60):
        speakers += [
            (f"{v.id}@p{pitch}", BaseVoice(f"{v.id}@p{pitch}", v.engine, v.name, v.lang, pitch=pitch))
            for v in espeak
        ]
    if count > len(speakers):
        raise ValueError(f"only {len(speakers)} training speakers can be generated, asked for {count}")
    random.Random(seed).shuffle(speakers)
    return speakers[:count]


def _utterance_text(rng: random.Random) -> str:
    return " ".join(rng.sample(SENTENCES, k=2))


def prepare(samples: np.ndarray, rate: int) -> np.ndarray:
    """float32 [n] at `rate` → float32 [m] at 16 kHz, loudness-normalized to -23 LUFS (as intake does)."""
    return normalize_loudness(resample(samples, rate, RATE), RATE, -23.0)


def synthesize_speakers(
    speakers: list[tuple[str, BaseVoice]], utterances: int, seed: int, cache_dir: Path
) -> dict[str, list[np.ndarray]]:
    """Clips per speaker id: `utterances` × float32 [n] at 16 kHz (cached as .npz under cache_dir)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, list[np.ndarray]] = {}
    for speaker, voice in speakers:
        path = (
            cache_dir
            / f"{speaker.replace(':', '_').replace('+', '_').replace('@', '_')}-u{utterances}-s{seed}-v2.npz"
        )
        if path.exists():
            with np.load(path) as data:
                out[speaker] = [data[f"arr_{i}"] for i in range(utterances)]
            continue
        rng = random.Random(f"{seed}:{speaker}")
        clips = [prepare(*synthesize(voice, _utterance_text(rng))) for _ in range(utterances)]
        np.savez(path, *clips)
        out[speaker] = clips
    return out


def mp3_round_trip(samples: np.ndarray, rate: int = RATE) -> np.ndarray:
    """float32 [n] → encoded to MP3 and decoded back with soundfile (libsndfile's LAME/mpg123), float32
    [n']."""
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="MP3")
    buffer.seek(0)
    decoded, _ = sf.read(buffer, dtype="float32")
    return np.ascontiguousarray(decoded, dtype=np.float32)


def pitch_shift(samples: np.ndarray, up: bool) -> np.ndarray:
    """float32 [n] at 16 kHz shifted about one semitone up (16/15) or down (16/17), same duration, float32
    [~n].

    Resampling by a small-integer ratio then phase-vocoder stretching back: torchaudio's pitch_shift resamples
    by 2^(1/12), whose sinc kernel takes seconds per clip.
    """
    to_rate = 15000 if up else 17000
    moved = torch.from_numpy(resample(samples, RATE, to_rate))
    n_fft, hop = 512, 128
    window = torch.hann_window(n_fft)
    spec = torch.stft(moved, n_fft, hop, window=window, return_complex=True)
    phase_advance = torch.linspace(0, torch.pi * hop, spec.shape[-2])[..., None]
    stretched = AF.phase_vocoder(spec, rate=to_rate / RATE, phase_advance=phase_advance)
    out = torch.istft(stretched, n_fft, hop, window=window, length=samples.shape[0])
    return out.numpy().astype(np.float32)


def augment(samples: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """One augmentation of float32 [n] at 16 kHz: 'speed', 'pitch', 'noise' or 'mp3' → float32 [m] at 16
    kHz."""
    if kind == "speed":
        factor = float(rng.choice([0.95, 1.05]))
        return resample(samples, int(RATE * factor), RATE)
    if kind == "pitch":
        return pitch_shift(samples, up=bool(rng.integers(0, 2)))
    if kind == "noise":
        snr_db = float(rng.uniform(10, 20))
        power = float(np.mean(samples**2)) or 1e-6
        noise = rng.standard_normal(samples.shape[0]) * np.sqrt(power / 10 ** (snr_db / 10))
        return (samples + noise).astype(np.float32)
    if kind == "mp3":
        return mp3_round_trip(samples)
    raise ValueError(f"unknown augmentation {kind!r}")


AUGMENTATIONS = ("speed", "pitch", "noise", "mp3")


def fbank_features(clips: list[np.ndarray], n_mels: int) -> list[torch.Tensor]:
    """Each float32 [n] at 16 kHz → sentence-mean-normalized fbanks float32 [frames, n_mels]."""
    fbank = make_fbank(n_mels)
    out = []
    with torch.inference_mode():
        for clip in clips:
            wav = torch.from_numpy(np.ascontiguousarray(clip))[None, :]
            feats = fbank(wav)
            out.append(sentence_mean_normalize(feats, torch.ones(1))[0].clone())
    return out


def embed_clips(model: Any, clips: list[np.ndarray], n_mels: int, batch_size: int = 16) -> np.ndarray:
    """Embed float32 [n] 16 kHz clips with a (training) ECAPA model → float32 [len(clips), lin_neurons]."""
    fbank = make_fbank(n_mels)
    vectors = []
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(clips), batch_size):
            wavs, lengths = pad_batch(clips[start : start + batch_size])
            feats = sentence_mean_normalize(fbank(wavs), lengths)
            vectors.append(model(feats, lengths).squeeze(1).numpy())
    return np.concatenate(vectors).astype(np.float32)


def load_eval_set(settings: TrainingSettings) -> tuple[list[np.ndarray], list[str]]:
    """Held-out clips (float32 [n] at 16 kHz, through the platform's intake) and their speaker labels."""
    voice_set = make_voices(
        DEFAULT_CACHE, speakers=settings.eval_speakers, utterances=settings.eval_utterances
    )
    clips = [load_audio(c.wav_path).samples for c in voice_set.clips]
    return clips, [c.speaker for c in voice_set.clips]


def train_ecapa(
    settings: TrainingSettings,
    out_path: Path,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    run_name: str = "local",
) -> TrainingResult:
    """Generate data, train, evaluate EER on held-out generated speakers each epoch, write the checkpoint.

    on_epoch receives {epoch, loss, accuracy, eer, min_dcf, seconds} after each epoch (e.g. to log to MLflow).
    """
    started = time.perf_counter()
    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    held_out = {v.id for v in speaker_voices(settings.eval_speakers)}
    speakers = training_voices(settings.train_speakers, held_out, settings.seed)
    clips = synthesize_speakers(speakers, settings.utterances_per_speaker, settings.seed, settings.cache_dir)
    speaker_ids = sorted(clips)
    label_of = {s: i for i, s in enumerate(speaker_ids)}
    waves: list[np.ndarray] = []
    labels: list[int] = []
    for speaker in speaker_ids:
        for clip in clips[speaker]:
            kinds = rng.choice(AUGMENTATIONS, size=settings.augmentations_per_utterance, replace=False)
            for wave in [clip, *(augment(clip, str(k), rng) for k in kinds)]:
                waves.append(wave)
                labels.append(label_of[speaker])
    features = fbank_features(waves, settings.n_mels)
    eval_clips, eval_speakers = load_eval_set(settings)
    trials = make_trials(eval_speakers)

    from speechbrain.lobes.models.ECAPA_TDNN import Classifier
    from speechbrain.nnet.losses import AdditiveAngularMargin, LogSoftmaxWrapper

    model = build_ecapa_model(**settings.arch)
    classifier = Classifier(input_size=settings.lin_neurons, out_neurons=len(speaker_ids))
    loss_fn = LogSoftmaxWrapper(AdditiveAngularMargin(margin=settings.margin, scale=settings.scale))
    params = list(model.parameters()) + list(classifier.parameters())
    optimizer = torch.optim.Adam(params, lr=settings.learning_rate, weight_decay=2e-5)
    total_steps = settings.epochs * settings.steps_per_epoch
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, settings.learning_rate, total_steps=total_steps
    )
    crop = int(settings.crop_seconds * 100)  # fbank frames are 10 ms
    label_tensor = torch.tensor(labels)
    history: list[dict[str, float]] = []
    eer = min_dcf = 1.0
    for epoch in range(1, settings.epochs + 1):
        model.train()
        classifier.train()
        losses, correct, seen = [], 0, 0
        for _ in range(settings.steps_per_epoch):
            idx = rng.integers(0, len(features), size=settings.batch_size)
            batch = torch.zeros(settings.batch_size, crop, settings.n_mels)
            for slot, i in enumerate(idx):
                feats = features[int(i)]
                start = int(rng.integers(0, max(1, feats.shape[0] - crop + 1)))
                piece = feats[start : start + crop]
                batch[slot, : piece.shape[0]] = piece
            targets = label_tensor[torch.from_numpy(idx)].unsqueeze(1)
            embeddings = model(batch)
            logits = classifier(embeddings)
            loss = loss_fn(logits, targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            correct += int((logits.squeeze(1).argmax(dim=1) == targets.squeeze(1)).sum())
            seen += settings.batch_size
        scores, is_target = cosine_scores(embed_clips(model, eval_clips, settings.n_mels), trials)
        eer, min_dcf = equal_error_rate(scores, is_target), min_detection_cost(scores, is_target)
        row = {
            "epoch": float(epoch),
            "loss": float(np.mean(losses)),
            "accuracy": correct / seen,
            "eer": eer,
            "min_dcf": min_dcf,
            "seconds": time.perf_counter() - started,
        }
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    settings_record = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(settings).items()}
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "arch": settings.arch,
            "state_dict": model.state_dict(),
            "training": {
                "run": run_name,
                "data": f"generated: {len(speaker_ids)} speakers (espeak-ng variants × pitch, flite, "
                "festival) × "
                f"{settings.utterances_per_speaker} utts, augmented {'/'.join(AUGMENTATIONS)}",
                "settings": settings_record,
                "eer": eer,
                "min_dcf": min_dcf,
            },
        },
        out_path,
    )
    return TrainingResult(
        checkpoint=out_path,
        history=history,
        eer=eer,
        min_dcf=min_dcf,
        train_speakers=speaker_ids,
        eval_speakers=sorted(set(eval_speakers)),
        seconds=time.perf_counter() - started,
    )


def run_training(
    settings: TrainingSettings,
    out: Path = DEFAULT_TRAINED_WEIGHTS,
    registry: RegistrySettings | None = None,
    register: bool = True,
) -> tuple[TrainingResult, RegisteredEncoder | None]:
    """Train with per-epoch metrics in an MLflow run, then (unless `register` is false) log the checkpoint as
    a new version of speaker-encoder-ecapa and promote the best version to `champion`."""
    configure(registry)
    with mlflow.start_run(run_name="train-ecapa") as run:
        mlflow.log_params({k: str(v) for k, v in asdict(settings).items()})
        mlflow.set_tags({"task": "train", "encoder": "ecapa", "training_data": "generated speakers"})

        def log_epoch(row: dict[str, float]) -> None:
            mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=int(row["epoch"]))

        result = train_ecapa(settings, out, on_epoch=log_epoch, run_name=f"mlflow run {run.info.run_id}")
        mlflow.log_artifact(str(result.checkpoint), artifact_path="checkpoint")
        mlflow.log_metrics(
            {"final_eer": result.eer, "final_min_dcf": result.min_dcf, "train_seconds": result.seconds}
        )
    if not register:
        return result, None
    encoder = EcapaEncoder(weights=result.checkpoint)
    cfg: dict[str, Any] = {"_target_": "encoders.ecapa.EcapaEncoder", "weights": str(result.checkpoint)}
    registered = log_encoder(
        encoder,
        cfg,
        metrics={"eer": result.eer, "min_dcf": result.min_dcf},
        extra_tags={
            "training_run": run.info.run_id,
            "eval_set": f"generated, {len(result.eval_speakers)} speakers",
        },
        settings=registry,
    )
    promote_best("ecapa", settings=registry)
    return result, registered
