"""Test voices: N speakers × M utterances of 5–8 s (WAV + MP3) generated from Debian's offline voices.

voice_set = make_voices(DEFAULT_CACHE, speakers=12, utterances=6)   # VoiceSet of VoiceClip

Deterministic for equal arguments; cached under `DEFAULT_CACHE` (a manifest per argument set), never
committed. Command line: `python -m scripts.make_voices`.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from encoders.synthetic import BaseVoice, available_voices, synthesize

DEFAULT_CACHE = Path(__file__).resolve().parents[1] / ".cache" / "voices"
MIN_S, MAX_S = 5.3, 7.7  # inside 5–8 s with room for trimming differences

# Harvard sentences (IEEE 1969, public domain): phonetically balanced English.
SENTENCES = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.",
    "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.",
    "The girl at the booth sold fifty bonds.",
    "The small pup gnawed a hole in the sock.",
    "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.",
    "The swan dive was far short of perfect.",
    "The beauty of the view stunned the young boy.",
    "Two blue fish swam in the tank.",
    "Her purse was full of useless trash.",
    "The colt reared and threw the tall rider.",
    "It snowed, rained, and hailed the same morning.",
    "Read verse out loud for pleasure.",
)


@dataclass(frozen=True)
class VoiceClip:
    """One generated utterance: the same audio as 16-bit WAV and as MP3."""

    speaker: str
    utterance: int
    wav_path: Path
    mp3_path: Path
    text: str
    duration: float


@dataclass(frozen=True)
class VoiceSet:
    """The clips of one generated set, in speaker order (each speaker's utterances together)."""

    clips: list[VoiceClip]

    @property
    def speakers(self) -> list[str]:
        return sorted({c.speaker for c in self.clips})

    def by_speaker(self) -> dict[str, list[VoiceClip]]:
        out: dict[str, list[VoiceClip]] = {}
        for clip in self.clips:
            out.setdefault(clip.speaker, []).append(clip)
        return out


def speaker_voices(count: int) -> list[BaseVoice]:
    """`count` distinct speakers: recording-based voices interleaved with espeak-ng variants.

    festival kal and flite kal are one recorded speaker (so are the two slt voices): only one of each is used.
    """
    voices = available_voices("en")
    recorded = [v for v in voices if v.engine == "flite"] + [
        v for v in voices if v.id == "festival:ked_diphone"
    ]
    espeak = [v for v in voices if v.engine == "espeak" and v.lang == "en-us"]
    espeak += [v for v in voices if v.engine == "espeak" and v.lang == "en-gb-x-rp"]
    ordered: list[BaseVoice] = []
    for i in range(max(len(recorded), len(espeak))):
        ordered += recorded[i : i + 1] + espeak[i : i + 1]
    if count > len(ordered):
        raise ValueError(f"only {len(ordered)} distinct speakers are installed, asked for {count}")
    return ordered[:count]


def _utterance(voice: BaseVoice, rng: random.Random) -> tuple[np.ndarray, int, str]:
    order = rng.sample(range(len(SENTENCES)), k=len(SENTENCES))
    text = ""
    samples, rate = np.zeros(0, np.float32), 16000
    for idx in order:
        candidate = f"{text} {SENTENCES[idx]}".strip()
        samples, rate = synthesize(voice, candidate)
        text = candidate
        if len(samples) / rate >= MIN_S:
            break
    duration = len(samples) / rate
    if duration > MAX_S:  # one long sentence pair: speak it faster rather than cut words
        samples, rate = synthesize(voice, text, stretch=(MAX_S - 0.2) / duration)
    return samples, rate, text


def make_voices(
    out_dir: Path = DEFAULT_CACHE, speakers: int = 6, utterances: int = 3, seed: int = 0
) -> VoiceSet:
    """Generate (or reuse from cache) `speakers` × `utterances` clips under out_dir; returns the set.

    Each clip is written twice: 16-bit PCM WAV and MP3, mono at the engine's own rate (8, 16 or 22.05 kHz),
    peak-normalized to 0.7.
    """
    folder = Path(out_dir) / f"s{speakers}-u{utterances}-seed{seed}"
    manifest = folder / "manifest.json"
    if manifest.exists():
        clips = [
            VoiceClip(**{**c, "wav_path": Path(c["wav_path"]), "mp3_path": Path(c["mp3_path"])})
            for c in json.loads(manifest.read_text())
        ]
        if all(c.wav_path.exists() and c.mp3_path.exists() for c in clips):
            return VoiceSet(clips)
    folder.mkdir(parents=True, exist_ok=True)
    clips = []
    for s, voice in enumerate(speaker_voices(speakers)):
        speaker = voice.id.replace(":", "_").replace("+", "_")
        for u in range(utterances):
            samples, rate, text = _utterance(voice, random.Random(f"{seed}:{s}:{u}"))
            peak = float(np.max(np.abs(samples))) or 1.0
            samples = (samples * (0.7 / peak)).astype(np.float32)
            wav, mp3 = folder / f"{speaker}-{u}.wav", folder / f"{speaker}-{u}.mp3"
            sf.write(wav, samples, rate, subtype="PCM_16")
            sf.write(mp3, samples, rate, format="MP3")
            clips.append(VoiceClip(speaker, u, wav, mp3, text, round(len(samples) / rate, 3)))
    tmp = manifest.with_suffix(".tmp")
    tmp.write_text(
        json.dumps(
            [{**asdict(c), "wav_path": str(c.wav_path), "mp3_path": str(c.mp3_path)} for c in clips], indent=1
        )
    )
    tmp.replace(manifest)
    return VoiceSet(clips)
