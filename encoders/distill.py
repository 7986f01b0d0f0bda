"""Teacher–student distillation for noise-robust speaker embeddings: GE2E embeds the clean audio (the teacher);
a student learns to map degraded copies (noise, rooms, phone band, MP3/Opus) of it to that clean embedding.

result = distill(DistillSettings.tiny(), out_path)     # checkpoint + held-out EER per condition

Students: "ge2e" (the teacher's own LSTM, initialised from its weights, so it keeps what GE2E learnt from
thousands of real speakers and only learns noise invariance) or "ecapa" (a SpeechBrain ECAPA-TDNN from random
init with a 256-d head, the brief's first idea). Training voices are generated speakers disjoint from the
held-out evaluation speakers (`encoders.voices.speaker_voices`): no espeak-ng variant, recorded voice or its
festival twin of the evaluation set is ever trained on. No speaker labels are needed (an optional AAM margin
on them exists, `margin_weight`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from encoders.degrade import EVAL_CONDITIONS, Condition, degrade, random_condition
from encoders.ecapa import (
    CHECKPOINT_FORMAT,
    build_ecapa_model,
    make_fbank,
    sentence_mean_normalize,
)
from encoders.evaluation import (
    cosine_scores,
    embed_vectors,
    equal_error_rate,
    make_trials,
    min_detection_cost,
)
from encoders.ge2e import DISTILLED_FORMAT, GE2EEncoder
from encoders.synthetic import BaseVoice, available_voices
from encoders.voices import speaker_voices

REPO_ROOT = Path(__file__).resolve().parents[1]

PARTIAL_FRAMES = 160  # GE2E's 1.6 s partial window (10 ms mel frames)
RATE = 16000


@dataclass
class DistillSettings:
    """Sizes and hyper-parameters; the defaults train in ~15 min on one CPU core, `tiny()` in seconds."""

    student: str = "ge2e"  # ge2e | ecapa
    train_speakers: int = 120
    utterances_per_speaker: int = 3
    degraded_copies: int = 3
    eval_speakers: int = 12
    eval_utterances: int = 8
    steps: int = 600
    batch_size: int = 32
    # Share of each batch fed clean audio, so the student's clean behaviour stays the teacher's.
    clean_fraction: float = 0.25
    snr_low_db: float = 0.0
    snr_high_db: float = 30.0
    learning_rate: float = 3e-4
    margin_weight: float = 0.0  # > 0 adds an AAM-softmax on training-speaker labels
    ecapa_channels: tuple[int, ...] = (256, 256, 256, 256, 768)
    crop_seconds: float = 2.0  # ecapa student's training crops
    seed: int = 0
    threads: int = 1
    eval_every: int = 200
    cache_dir: Path = field(default=REPO_ROOT / ".cache" / "voices" / "distill")

    @classmethod
    def tiny(cls, **overrides: Any) -> DistillSettings:
        """A seconds-long run for tests: a handful of speakers and steps."""
        base: dict[str, Any] = {
            "train_speakers": 6,
            "utterances_per_speaker": 2,
            "degraded_copies": 1,
            "eval_speakers": 4,
            "eval_utterances": 2,
            "steps": 12,
            "batch_size": 8,
            "eval_every": 12,
            "learning_rate": 1e-3,
            "ecapa_channels": (32, 32, 32, 32, 96),
        }
        return cls(**{**base, **overrides})


@dataclass
class DistillResult:
    """A finished run: checkpoint, loss/cosine history, held-out EER per condition and the split used."""

    checkpoint: Path
    history: list[dict[str, float]]
    eer: dict[str, float]
    min_dcf: dict[str, float]
    teacher_cosine_before: float
    teacher_cosine_after: float
    train_speakers: list[str]
    eval_speakers: list[str]
    seconds: float


def held_out_voices(count: int) -> list[BaseVoice]:
    """The evaluation speakers (the same `speaker_voices` the notebooks and registry evaluate on)."""
    return speaker_voices(count)


def distill_training_voices(
    count: int, held_out: Sequence[BaseVoice], seed: int
) -> list[tuple[str, BaseVoice]]:
    """`count` (id, voice) generated speakers sharing no timbre with `held_out`: espeak-ng variants not held out
    (in every language, at several pitches), recorded voices only if neither they nor their twin is held out."""
    from encoders.training import training_voices

    twins = {"kal": "kal_diphone", "slt": "cmu_us_slt_arctic_hts"}
    held_names = {v.name for v in held_out} | {twins.get(v.name, v.name) for v in held_out}
    excluded = {v.id for v in available_voices() if v.engine != "espeak" and v.name in held_names}
    return training_voices(count, {v.id for v in held_out} | excluded, seed)


def _speech_cache(settings: DistillSettings) -> dict[str, list[np.ndarray]]:
    from encoders.training import synthesize_speakers

    speakers = distill_training_voices(
        settings.train_speakers, held_out_voices(settings.eval_speakers), settings.seed
    )
    return synthesize_speakers(speakers, settings.utterances_per_speaker, settings.seed, settings.cache_dir)


def timbre_of(speaker_id: str) -> str:
    """The voice a training speaker id sounds like, for the margin loss's labels: an espeak-ng variant at one
    pitch is one timbre in every language ("espeak:cmn+max@p40" and "espeak:en-us+max@p40" → "espeak:max@p40"),
    so the margin never teaches the student to tell languages apart."""
    engine, _, rest = speaker_id.partition(":")
    voice, at, pitch = rest.partition("@")
    return f"{engine}:{voice.rpartition('+')[2]}{at}{pitch}"


def eval_babble_pool(
    eval_speakers: int = 12, talkers: int = 12, cache_dir: Path | None = None
) -> list[np.ndarray]:
    """The evaluation's babble: one utterance each of `talkers` generated speakers from the training side of
    the split (never an evaluation speaker), float32 [n] at 16 kHz; synthesized once, cached."""
    from encoders.training import synthesize_speakers

    voices = distill_training_voices(talkers, held_out_voices(eval_speakers), seed=99)
    cache = cache_dir or DistillSettings().cache_dir
    speech = synthesize_speakers(voices, 1, 99, cache)
    return [speech[s][0] for s in sorted(speech)]


def eval_clips(speakers: int, utterances: int) -> tuple[list[np.ndarray], list[str]]:
    """Held-out evaluation clips (float32 [n] at 16 kHz through the platform's intake) and speaker labels."""
    from encoders.benchmarking import clips_from_voice_set
    from encoders.voices import DEFAULT_CACHE, make_voices

    return clips_from_voice_set(make_voices(DEFAULT_CACHE, speakers=speakers, utterances=utterances))


def babble_pool(clips: dict[str, list[np.ndarray]], count: int = 12) -> list[np.ndarray]:
    """Speech for babble noise: the first utterance of `count` training speakers (never evaluation speakers)."""
    return [clips[s][0] for s in sorted(clips)[:count]]


def degraded_sets(
    clips: Sequence[np.ndarray],
    pool: Sequence[np.ndarray],
    conditions: dict[str, Condition] | None = None,
    seed: int = 1,
) -> dict[str, list[np.ndarray]]:
    """{condition: every clip (float32 [n] 16 kHz) degraded independently under it}; fixed seed, so every
    encoder is measured on the same draws."""
    out: dict[str, list[np.ndarray]] = {}
    for name, condition in (conditions or EVAL_CONDITIONS).items():
        rng = np.random.default_rng(seed)
        out[name] = [degrade(c, condition, rng, pool) for c in clips]
    return out


def condition_scores(
    encoder: Any, sets: dict[str, list[np.ndarray]], speakers: Sequence[str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{condition: (cosine scores float64 [t], target labels bool [t])} over all-pairs trials of each set."""
    trials = make_trials(speakers)
    return {name: cosine_scores(embed_vectors(encoder, clips, RATE), trials) for name, clips in sets.items()}


def condition_table(
    encoder: Any, sets: dict[str, list[np.ndarray]], speakers: Sequence[str]
) -> dict[str, dict[str, float]]:
    """{condition: {"eer", "min_dcf"}} of `encoder` on the degraded `sets` (see `degraded_sets`)."""
    return {
        name: {"eer": equal_error_rate(s, t), "min_dcf": min_detection_cost(s, t)}
        for name, (s, t) in condition_scores(encoder, sets, speakers).items()
    }


class _Ge2eStudent:
    """GE2E's LSTM as a student: mel crops float32 [batch, 160, 40] → unit embeddings [batch, 256]."""

    def __init__(self, teacher: GE2EEncoder) -> None:
        from resemblyzer import VoiceEncoder

        self.model = VoiceEncoder(device="cpu", verbose=False)
        self.model.load_state_dict(teacher.model.state_dict())

    @staticmethod
    def features(wave: np.ndarray) -> torch.Tensor:
        from resemblyzer import audio as ge2e_audio

        wav = ge2e_audio.normalize_volume(np.asarray(wave, dtype=np.float32), -30, increase_only=True)
        if wav.size < PARTIAL_FRAMES * 160:
            wav = np.pad(wav, (0, PARTIAL_FRAMES * 160 - wav.size))
        return torch.from_numpy(ge2e_audio.wav_to_mel_spectrogram(wav))

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.model.lstm(batch)
        raw = self.model.relu(self.model.linear(hidden[-1]))
        return raw / (raw.norm(dim=1, keepdim=True) + 1e-6)

    def crop_frames(self, settings: DistillSettings) -> int:
        return PARTIAL_FRAMES

    def save(self, path: Path, record: dict[str, Any]) -> None:
        torch.save({"model_state": self.model.state_dict(), "format": DISTILLED_FORMAT, **record}, path)


class _EcapaStudent:
    """A SpeechBrain ECAPA-TDNN with a 256-d head: fbank crops [batch, frames, 80] → unit embeddings."""

    def __init__(self, settings: DistillSettings) -> None:
        self.arch: dict[str, Any] = {
            "n_mels": 80,
            "channels": list(settings.ecapa_channels),
            "attention_channels": 64,
            "lin_neurons": 256,
        }
        self.model = build_ecapa_model(**self.arch)
        self.fbank = make_fbank(80)

    def features(self, wave: np.ndarray) -> torch.Tensor:
        with torch.inference_mode():
            feats = self.fbank(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))[None, :])
            return sentence_mean_normalize(feats, torch.ones(1))[0].clone()

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        out = self.model(batch).squeeze(1)
        return out / (out.norm(dim=1, keepdim=True) + 1e-6)

    def crop_frames(self, settings: DistillSettings) -> int:
        return int(settings.crop_seconds * 100)

    def save(self, path: Path, record: dict[str, Any]) -> None:
        torch.save(
            {
                "format": CHECKPOINT_FORMAT,
                "arch": self.arch,
                "state_dict": self.model.state_dict(),
                "training": record,
            },
            path,
        )


def load_student_encoder(checkpoint: Path, student: str) -> Any:
    """The platform encoder for a distilled checkpoint: `RobustGE2EEncoder` or `EcapaEncoder` on it."""
    if student == "ge2e":
        from encoders.ge2e import RobustGE2EEncoder

        return RobustGE2EEncoder(weights=checkpoint)
    from encoders.ecapa import EcapaEncoder

    return EcapaEncoder(weights=checkpoint)


def _crop(feats: torch.Tensor, frames: int, rng: np.random.Generator) -> torch.Tensor:
    if feats.shape[0] <= frames:
        return torch.nn.functional.pad(feats, (0, 0, 0, frames - feats.shape[0]))
    start = int(rng.integers(0, feats.shape[0] - frames + 1))
    return feats[start : start + frames]


def _teacher_cosine(encoder: Any, teacher: np.ndarray, waves: Sequence[np.ndarray]) -> float:
    """Mean cosine between an encoder's embeddings of degraded `waves` and the teacher's clean embeddings."""
    vectors = embed_vectors(encoder, list(waves), RATE)
    return float(np.mean(np.sum(vectors * teacher, axis=1)))


def distill(
    settings: DistillSettings,
    out_path: Path,
    on_step: Callable[[dict[str, float]], None] | None = None,
    run_name: str = "local",
) -> DistillResult:
    """Generate and degrade training speech, embed it clean with the teacher, train the student towards those
    embeddings from degraded inputs, evaluate the held-out table and write the checkpoint."""
    started = time.perf_counter()
    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    teacher = GE2EEncoder()
    speech = _speech_cache(settings)
    speaker_ids = sorted(speech)
    pool = babble_pool(speech)
    clean: list[np.ndarray] = [c for s in speaker_ids for c in speech[s]]
    timbres = sorted({timbre_of(s) for s in speaker_ids})
    labels = [timbres.index(timbre_of(s)) for s in speaker_ids for _ in speech[s]]
    targets = torch.from_numpy(embed_vectors(teacher, clean, RATE))
    student: _Ge2eStudent | _EcapaStudent = (
        _Ge2eStudent(teacher) if settings.student == "ge2e" else _EcapaStudent(settings)
    )
    # Each utterance: its clean features plus `degraded_copies` degraded ones (index 0 = clean).
    snr = (settings.snr_low_db, settings.snr_high_db)
    versions: list[list[torch.Tensor]] = []
    probe: list[np.ndarray] = []
    for wave in clean:
        copies = [
            degrade(wave, random_condition(rng, snr), rng, pool) for _ in range(settings.degraded_copies)
        ]
        probe.append(copies[0])
        versions.append([student.features(w) for w in (wave, *copies)])
    prep_seconds = time.perf_counter() - started

    def cosine_to_teacher() -> float:
        encoder = _as_encoder(student, settings)
        return _teacher_cosine(encoder, targets.numpy(), probe)

    before = cosine_to_teacher()
    params = list(student.model.parameters())
    margin_head = None
    if settings.margin_weight > 0:
        from speechbrain.lobes.models.ECAPA_TDNN import Classifier
        from speechbrain.nnet.losses import AdditiveAngularMargin, LogSoftmaxWrapper

        margin_head = Classifier(input_size=256, out_neurons=len(timbres))
        margin_loss = LogSoftmaxWrapper(AdditiveAngularMargin(margin=0.2, scale=30.0))
        params += list(margin_head.parameters())
    optimizer = torch.optim.Adam(params, lr=settings.learning_rate)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, settings.learning_rate, total_steps=settings.steps
    )
    frames = student.crop_frames(settings)
    label_tensor = torch.tensor(labels)
    history: list[dict[str, float]] = []
    losses: list[float] = []
    for step in range(1, settings.steps + 1):
        student.model.train()
        idx = rng.integers(0, len(versions), size=settings.batch_size)
        pick = [
            0 if rng.random() < settings.clean_fraction else int(rng.integers(1, len(versions[i])))
            for i in idx
        ]
        batch = torch.stack([_crop(versions[i][k], frames, rng) for i, k in zip(idx, pick, strict=True)])
        out = student.forward(batch)
        loss = (1 - (out * targets[torch.from_numpy(idx)]).sum(dim=1)).mean()
        if margin_head is not None:
            logits = margin_head(out.unsqueeze(1))
            loss = loss + settings.margin_weight * margin_loss(
                logits, label_tensor[torch.from_numpy(idx)].unsqueeze(1)
            )
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 3.0)
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.item()))
        if step % settings.eval_every == 0 or step == settings.steps:
            row = {
                "step": float(step),
                "loss": float(np.mean(losses)),
                "teacher_cosine": cosine_to_teacher(),
                "seconds": time.perf_counter() - started,
            }
            losses = []
            history.append(row)
            if on_step is not None:
                on_step(row)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "run": run_name,
        "data": f"generated: {len(speaker_ids)} speakers (espeak-ng variants x pitch, none of the "
        f"{settings.eval_speakers} evaluation timbres) x {settings.utterances_per_speaker} utts, "
        f"{settings.degraded_copies} degraded copies each (noise {'/'.join(('white', 'pink', 'brown', 'babble'))} "
        f"{snr[0]:g}-{snr[1]:g} dB, synthetic rooms, phone band, MP3/Opus); teacher GE2E on clean",
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(settings).items()},
        "prep_seconds": prep_seconds,
    }
    student.save(out_path, record)
    encoder = load_student_encoder(out_path, settings.student)
    after = _teacher_cosine(encoder, targets.numpy(), probe)
    clips, eval_labels = eval_clips(settings.eval_speakers, settings.eval_utterances)
    sets = degraded_sets(clips, eval_babble_pool(settings.eval_speakers))
    table = condition_table(encoder, sets, eval_labels)
    return DistillResult(
        checkpoint=out_path,
        history=history,
        eer={k: v["eer"] for k, v in table.items()},
        min_dcf={k: v["min_dcf"] for k, v in table.items()},
        teacher_cosine_before=before,
        teacher_cosine_after=after,
        train_speakers=speaker_ids,
        eval_speakers=sorted(set(eval_labels)),
        seconds=time.perf_counter() - started,
    )


def _as_encoder(student: _Ge2eStudent | _EcapaStudent, settings: DistillSettings) -> Any:
    """The student in training wrapped as a platform encoder (weights shared, eval mode) for measurements."""
    student.model.eval()
    if isinstance(student, _Ge2eStudent):
        ge2e = GE2EEncoder()
        ge2e.model = student.model
        return ge2e
    from encoders.ecapa import EcapaEncoder

    ecapa = EcapaEncoder(weights="random", allow_random=True, **student.arch)
    ecapa.model = student.model
    return ecapa
