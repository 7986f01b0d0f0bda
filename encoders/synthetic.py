"""Synthetic speakers from Debian's offline TTS engines (espeak-ng, flite, festival).

No speech corpus can be downloaded here, so test voices and the emulator's base voices are synthesised.
Generated speech is far more consistent than real uploads: EERs on it rank encoders, they do not predict
field accuracy.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

SYNTH_TIMEOUT_S = 60

# Recording-based voices (real speakers, diphone/HTS) first: they make the most distinct speakers.
_FLITE_VOICES = ("kal", "awb", "rms", "slt")
_FESTIVAL_VOICES = {
    "kal_diphone": "english/kal_diphone",
    "ked_diphone": "english/ked_diphone",
    "cmu_us_slt_arctic_hts": "us/cmu_us_slt_arctic_hts",
}
_FESTIVAL_ROOT = Path("/usr/share/festival/voices")
# espeak-ng variants picked for spread of gender and timbre; all ship with Debian's espeak-ng-data.
_ESPEAK_VARIANTS = (
    "m1",
    "f1",
    "m3",
    "f2",
    "m5",
    "f3",
    "m7",
    "f4",
    "adam",
    "Alicia",
    "benjamin",
    "belinda",
    "Andy",
    "Annie",
    "david",
    "aunty",
    "edward",
    "Andrea",
    "Gene",
    "iven",
    "max",
    "steph",
)


class SynthesisError(RuntimeError):
    """A TTS engine is missing or failed on a text."""


@dataclass(frozen=True)
class BaseVoice:
    """One offline synthetic speaker. id is stable: `<engine>:<name>[@<lang>]`."""

    id: str
    engine: str  # espeak | flite | festival
    name: str  # engine voice: flite 'awb', festival 'ked_diphone', espeak variant 'm3'
    lang: str  # BCP-47-ish: 'en', 'en-us', 'cmn'
    pitch: int | None = None  # espeak only: 0..99
    words_per_minute: int | None = None  # espeak only


def _have(binary: str) -> bool:
    return shutil.which(binary) is not None


@functools.cache
def _espeak_variants() -> frozenset[str]:
    if not _have("espeak-ng"):
        return frozenset()
    out = subprocess.run(
        ["espeak-ng", "--voices=variant"],
        capture_output=True,
        text=True,
        timeout=SYNTH_TIMEOUT_S,
        check=False,
    ).stdout
    return frozenset(
        line.split()[4].removeprefix("!v/") for line in out.splitlines()[1:] if len(line.split()) > 4
    )


def available_voices(lang: str | None = None) -> list[BaseVoice]:
    """The installed voices, recording-based first, in a fixed order. lang: 'en' or 'cmn' filters."""
    voices: list[BaseVoice] = []
    if _have("flite"):
        voices += [BaseVoice(f"flite:{v}", "flite", v, "en-us") for v in _FLITE_VOICES]
    if _have("text2wave"):
        voices += [
            BaseVoice(f"festival:{name}", "festival", name, "en-us" if rel.startswith("us/") else "en-gb")
            for name, rel in _FESTIVAL_VOICES.items()
            if (_FESTIVAL_ROOT / rel).is_dir()
        ]
    variants = _espeak_variants()
    for lang_code in ("en-us", "en-gb-x-rp", "cmn"):
        voices += [
            BaseVoice(f"espeak:{lang_code}+{v}", "espeak", v, lang_code)
            for v in _ESPEAK_VARIANTS
            if v in variants
        ]
    if lang is not None:
        voices = [v for v in voices if v.lang.startswith(lang)]
    return voices


def voice_by_id(voice_id: str) -> BaseVoice:
    """Look a voice up by its id; espeak ids may carry an explicit pitch/speed suffix `…/p50/s160`."""
    base, *mods = voice_id.split("/")
    for voice in available_voices():
        if voice.id == base:
            pitch = next((int(m[1:]) for m in mods if m.startswith("p")), None)
            wpm = next((int(m[1:]) for m in mods if m.startswith("s")), None)
            return BaseVoice(voice.id, voice.engine, voice.name, voice.lang, pitch, wpm)
    raise SynthesisError(f"voice {voice_id!r} is not installed")


def _run(cmd: list[str], stdin: str | None = None) -> None:
    proc = subprocess.run(
        cmd, input=stdin, capture_output=True, text=True, timeout=SYNTH_TIMEOUT_S, check=False
    )
    if proc.returncode != 0:
        raise SynthesisError(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.strip()[:200]}")


def synthesize(voice: BaseVoice, text: str, stretch: float = 1.0) -> tuple[np.ndarray, int]:
    """Speak `text` with `voice` → (samples float32 mono [n] in [-1, 1], sample rate in Hz).

    stretch > 1 slows speech down (duration multiplier), < 1 speeds it up. Deterministic for equal inputs.
    """
    text = " ".join(text.split())
    if not text:
        raise SynthesisError("nothing to say")
    with tempfile.TemporaryDirectory(prefix="vp-synth-") as tmp:
        out = Path(tmp) / "out.wav"
        if voice.engine == "espeak":
            wpm = round((voice.words_per_minute or 165) / stretch)
            cmd = ["espeak-ng", "-v", f"{voice.lang}+{voice.name}", "-s", str(wpm), "-w", str(out)]
            if voice.pitch is not None:
                cmd += ["-p", str(voice.pitch)]
            _run([*cmd, "--", text])
        elif voice.engine == "flite":
            _run(
                [
                    "flite",
                    "-voice",
                    voice.name,
                    "--setf",
                    f"duration_stretch={stretch:.3f}",
                    "-t",
                    text,
                    "-o",
                    str(out),
                ]
            )
        elif voice.engine == "festival":
            script = f"(voice_{voice.name}) (Parameter.set 'Duration_Stretch {stretch:.3f})"
            _run(["text2wave", "-eval", script, "-o", str(out)], stdin=text)
        else:
            raise SynthesisError(f"unknown engine {voice.engine!r}")
        data, rate = sf.read(io.BytesIO(out.read_bytes()), dtype="float32", always_2d=True)
    return np.ascontiguousarray(data.mean(axis=1), dtype=np.float32), int(rate)
