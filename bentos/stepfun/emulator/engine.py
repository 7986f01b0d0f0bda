"""The emulator's offline voice engine: Debian TTS base voices, adapted toward a cloned reference with WORLD.

Clone: embed the reference (Resemblyzer GE2E), pick the nearest installed base voice per language, measure the
reference's F0 (median, spread) and mean spectral envelope, then choose a formant warp and envelope-correction
strength on a small grid by speaker similarity. Speech: synthesise with the base voice, re-impose F0 and
timbre with pyworld, apply the prosody table, speed and volume. Deterministic for equal inputs. Never sounds
like StepFun: it is an honest stand-in, measurably closer to the reference than the unadapted base voice.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
import zlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyworld as pw
import soxr

from encoders.synthetic import BaseVoice, available_voices, synthesize

from ..models import SpeechRequest
from .prosody import Prosody, prosody_for
from .stats_cache import CacheState, StatsCache, default_cache_dir, environment_key

log = logging.getLogger(__name__)

ENGINE_VERSION = 1
ANALYSIS_RATE = 16000
EMBEDDING_DIM = 256  # GE2E
FRAME_MS = 5.0
_BANDS_HZ = np.geomspace(80.0, 7600.0, 48)  # where envelopes are compared (log-spaced)
_CALIBRATION = {
    "en": "The quick brown fox jumps over the lazy dog, then it runs away into the quiet forest.",
    "cmn": "今天天气很好，我们一起去公园散步吧。我很喜欢这样的日子。",
}
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_SENTENCE = re.compile(r"[^。！？!?；;.\n]+[。！？!?；;.\n]*")
_FEMALE_HINTS = ("nv", "female", "jiejie", "meimei", "shaonv", "xuejie", "yujie", "shunv")
_FEMALE_BASES = ("slt", "f1", "f2", "f3", "f4", "Alicia", "belinda", "Annie", "aunty", "Andrea", "steph")


def lang_of(text: str) -> str:
    return "cmn" if _CJK.search(text) else "en"


def speakable(text: str) -> bool:
    """Has something to say: a letter or a digit (Unicode L* or N*). '...', '!!!', '_' or emoji alone do not."""
    return any(unicodedata.category(ch)[0] in "LN" for ch in text)


def split_sentences(text: str, max_chars: int = 160) -> list[str]:
    """Sentence-sized pieces (the unit of streaming); long sentences are cut at spaces/commas. Pieces with
    nothing speakable are dropped: a synthesiser given only punctuation produces no audio."""
    pieces = [p.strip() for p in _SENTENCE.findall(text) if p.strip()]
    out: list[str] = []
    for piece in pieces or [text.strip()]:
        while len(piece) > max_chars:
            cut = max(
                piece.rfind(" ", 0, max_chars),
                piece.rfind("，", 0, max_chars),
                piece.rfind(",", 0, max_chars),
            )
            cut = cut if cut > 0 else max_chars
            out.append(piece[:cut].strip())
            piece = piece[cut:].strip()
        if speakable(piece):
            out.append(piece)
    return out


def _ascii_fold(text: str) -> str:
    """'café' → 'cafe', '²' → '2', 'Ⅻ' → 'XII'; what has no ASCII form is dropped."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


@dataclass(frozen=True)
class VoiceStats:
    """A voice as measured: GE2E embedding [256], F0 median (Hz), log-F0 spread, band envelope."""

    embedding: list[float]
    f0_median: float
    f0_spread: float
    envelope: list[float]  # mean log-power at _BANDS_HZ over voiced frames, mean removed

    @classmethod
    def from_json(cls, raw: Any) -> VoiceStats:
        """A cached entry, checked (ValueError): the right sizes, finite numbers."""
        try:
            stats = cls(
                embedding=[float(v) for v in raw["embedding"]],
                f0_median=float(raw["f0_median"]),
                f0_spread=float(raw["f0_spread"]),
                envelope=[float(v) for v in raw["envelope"]],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed voice statistics: {exc!r}") from exc
        if len(stats.embedding) != EMBEDDING_DIM or len(stats.envelope) != len(_BANDS_HZ):
            raise ValueError("voice statistics of the wrong size")
        values = np.asarray([*stats.embedding, *stats.envelope, stats.f0_median, stats.f0_spread])
        if not np.all(np.isfinite(values)):
            raise ValueError("voice statistics are not finite")
        return stats


@dataclass
class VoiceProfile:
    """A voice as the engine renders it (persisted with a cloned voice; built-in ids get a fixed one)."""

    base: dict[str, str]  # lang ('en'|'cmn') → BaseVoice id
    f0_median: float  # target mean F0, Hz
    f0_spread: float  # target log-F0 spread
    warp: float = 1.0  # formant warp: >1 raises formants (shorter vocal tract)
    envelope_strength: float = 0.0
    envelope: list[float] = field(default_factory=list)  # target band envelope (empty: no correction)
    version: int = ENGINE_VERSION


def _world(x: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xd = np.ascontiguousarray(x, dtype=np.float64)
    f0, t = pw.dio(xd, rate, frame_period=FRAME_MS)
    f0 = pw.stonemask(xd, f0, t, rate)
    return f0, pw.cheaptrick(xd, f0, t, rate), pw.d4c(xd, f0, t, rate)


def _band_envelope(sp: np.ndarray, f0: np.ndarray, rate: int) -> np.ndarray:
    voiced = sp[f0 > 0] if np.any(f0 > 0) else sp
    freqs = np.linspace(0, rate / 2, sp.shape[1])
    mean_log = np.log(voiced + 1e-12).mean(axis=0)
    env = np.interp(_BANDS_HZ, freqs, mean_log)
    return env - env.mean()


def _f0_stats(f0: np.ndarray) -> tuple[float, float]:
    voiced = f0[f0 > 0]
    if voiced.size < 10:
        return 0.0, 0.0
    logf = np.log(voiced)
    return float(np.exp(np.median(logf))), float(np.std(logf))


class SpeakerEmbedder:
    """Resemblyzer's GE2E, loaded once per process (weights ship in the wheel)."""

    _lock = threading.Lock()
    _encoder: Any = None

    @classmethod
    def embed(cls, samples: np.ndarray, rate: int) -> np.ndarray:
        """samples float32 [n] at `rate` → L2-normalised float32 [256]."""
        with cls._lock:
            if cls._encoder is None:
                from resemblyzer import VoiceEncoder

                cls._encoder = VoiceEncoder("cpu", verbose=False)
            wav = soxr.resample(samples.astype(np.float32), rate, ANALYSIS_RATE).astype(np.float32)
            # Resemblyzer's preprocess_wav = resample + -30 dBFS + VAD trim; done here without its first-call
            # numba compile (seconds), our inputs being trimmed already.
            rms = float(np.sqrt(np.mean(wav**2))) or 1.0
            emb = cls._encoder.embed_utterance(wav * (10 ** (-30 / 20) / rms))
        return np.asarray(emb, dtype=np.float32)


def analyse(samples: np.ndarray, rate: int) -> VoiceStats:
    x = soxr.resample(samples.astype(np.float32), rate, ANALYSIS_RATE) if rate != ANALYSIS_RATE else samples
    f0, sp, _ = _world(x, ANALYSIS_RATE)
    median, spread = _f0_stats(f0)
    env = _band_envelope(sp, f0, ANALYSIS_RATE)
    emb = SpeakerEmbedder.embed(samples, rate)
    return VoiceStats([float(v) for v in emb], median, spread, [float(v) for v in env])


class VoiceEngine:
    """Thread-safe. Base-voice statistics (~0.5 s to measure per voice) come from a cache file in cache_dir,
    by default the machine-wide one `make setup` fills (see stats_cache); missing ones are measured on first
    use and written back, under the cache's lock so concurrent emulators share the work.
    """

    def __init__(self, cache_dir: Path | None = None, max_candidates: int = 0) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.max_candidates = max_candidates  # 0: every installed voice of a language
        self._lock = threading.Lock()  # guards _stats and the counters
        self._compute_lock = threading.Lock()  # one measuring thread per process (the file lock: per machine)
        self._stats: dict[str, VoiceStats] = {}
        self._voices = {v.id: v for v in available_voices()}
        self.cache = StatsCache(self.cache_dir, f"base-voices-v{ENGINE_VERSION}", self.cache_key())
        self.computed = 0  # base voices measured by this engine
        state, entries = self.cache.load()
        self.cache_state: CacheState = state if self._adopt(entries) else "corrupt"
        self.loaded = len(self._stats)  # base voices read from the cache file at start

    def cache_key(self) -> dict[str, Any]:
        """Everything the base-voice statistics depend on; a cache file of another key is recomputed."""
        return {
            "engine_version": ENGINE_VERSION,
            "analysis": {
                "rate": ANALYSIS_RATE,
                "frame_ms": FRAME_MS,
                "bands_hz": [float(b) for b in _BANDS_HZ],
                "calibration": _CALIBRATION,
                "embedding_dim": EMBEDDING_DIM,
            },
            "voices": sorted(self._voices),
            **environment_key(),
        }

    def _adopt(self, entries: dict[str, Any]) -> bool:
        """Take the installed voices' entries of a loaded file; False (nothing taken) if one is malformed."""
        try:
            parsed = {vid: VoiceStats.from_json(raw) for vid, raw in entries.items() if vid in self._voices}
        except ValueError as exc:
            log.warning("voice engine cache %s is corrupt (%s): recomputing", self.cache.path, exc)
            return False
        with self._lock:
            for vid, stats in parsed.items():
                self._stats.setdefault(vid, stats)
        return True

    def cache_info(self) -> dict[str, Any]:
        with self._lock:
            return {
                "path": str(self.cache.path), "state": self.cache_state, "loaded": self.loaded,
                "computed": self.computed, "reads": self.cache.reads, "writes": self.cache.writes,
                "voices": len(self._stats),
            }  # fmt: skip

    # -- base voices
    def candidates(self, lang: str) -> list[BaseVoice]:
        voices = [v for v in self._voices.values() if v.lang.startswith(lang) and v.lang != "en-gb-x-rp"]
        return voices[: self.max_candidates] if self.max_candidates else voices

    def has_stats(self, voice: BaseVoice) -> bool:
        with self._lock:
            return voice.id in self._stats

    def warm(self) -> dict[str, Any]:
        """Measure every candidate base voice not in the cache yet (`--warm-cache`); returns cache_info()."""
        self.ensure_stats([*self.candidates("en"), *self.candidates("cmn")])
        return self.cache_info()

    def ensure_stats(self, voices: Iterable[BaseVoice]) -> None:
        """Have statistics for all of `voices`: from memory, from the cache file (another emulator may have
        written them since this one started), else measured here and written back after each voice."""
        wanted = list(voices)
        with self._lock:
            if all(v.id in self._stats for v in wanted):
                return
        with self._compute_lock, self.cache.locked() as writable:
            if writable:
                state, entries = self.cache.load()
                if state == "loaded":
                    self._adopt(entries)
            for voice in wanted:
                with self._lock:
                    if voice.id in self._stats:
                        continue
                samples, rate = synthesize(voice, _CALIBRATION["cmn" if voice.lang == "cmn" else "en"])
                stats = analyse(samples, rate)
                with self._lock:
                    self._stats[voice.id] = stats
                    self.computed += 1
                    entries = {vid: asdict(s) for vid, s in self._stats.items()}
                if writable:
                    self.cache.save(entries)

    def base_stats(self, voice: BaseVoice) -> VoiceStats:
        self.ensure_stats([voice])
        with self._lock:
            return self._stats[voice.id]

    # -- cloning
    def clone_profile(
        self, samples: np.ndarray, rate: int, exclude: frozenset[str] = frozenset()
    ) -> VoiceProfile:
        """Reference float32 [n] at `rate` (5–10 s of speech) → the adapted profile.

        exclude: base voice ids not to pick (benchmarks hold out the voice a reference was generated with).
        """
        ref = analyse(samples, rate)
        ref_emb = np.asarray(ref.embedding)
        base: dict[str, str] = {}
        pools = {lang: [v for v in self.candidates(lang) if v.id not in exclude] for lang in ("en", "cmn")}
        self.ensure_stats([*pools["en"], *pools["cmn"]])  # one pass over the cache (and its lock) if missing
        for lang, pool in pools.items():
            scored = [(float(np.dot(ref_emb, self.base_stats(v).embedding)), v.id) for v in pool]
            base[lang] = max(scored)[1]
        profile = VoiceProfile(base, ref.f0_median, ref.f0_spread, envelope=ref.envelope)
        self._fit(profile, ref_emb)
        return profile

    def _fit(self, profile: VoiceProfile, ref_emb: np.ndarray) -> None:
        """Pick warp and envelope strength on a small grid by GE2E similarity on the calibration sentence."""
        voice = self._voices[profile.base["en"]]
        stats = self.base_stats(voice)
        ratio = profile.f0_median / stats.f0_median if stats.f0_median and profile.f0_median else 1.0
        warp0 = float(np.clip(ratio**0.25, 0.88, 1.15))
        samples, rate = synthesize(voice, _CALIBRATION["en"])
        analysis = _world(samples, rate)
        best = (-2.0, 1.0, 0.0)
        for warp in (warp0 * 0.96, warp0, warp0 * 1.04):
            for strength in (0.0, 0.5, 1.0):
                trial = VoiceProfile(
                    profile.base, profile.f0_median, profile.f0_spread, warp, strength, profile.envelope
                )
                out = self._render(analysis, rate, stats, trial, Prosody())
                score = float(np.dot(ref_emb, SpeakerEmbedder.embed(out, rate)))
                best = max(best, (score, warp, strength))
        profile.warp, profile.envelope_strength = best[1], best[2]

    # -- built-in voices
    def builtin_profile(self, voice_id: str) -> VoiceProfile:
        """A fixed, deterministic rendering for each official voice id (gender from its name)."""
        female = any(h in voice_id for h in _FEMALE_HINTS)
        h = zlib.crc32(voice_id.encode())
        base = {}
        for lang in ("en", "cmn"):
            pool = [
                v for v in self.candidates(lang) if (v.name in _FEMALE_BASES) == female
            ] or self.candidates(lang)
            base[lang] = pool[h % len(pool)].id
        f0 = (195.0 + (h % 50)) if female else (100.0 + (h % 30))
        return VoiceProfile(base, f0, 0.12 + (h % 7) / 100, warp=1.06 if female else 0.96)

    # -- synthesis
    def synthesize(self, profile: VoiceProfile, text: str, request: SpeechRequest) -> tuple[np.ndarray, int]:
        """One sentence → float32 mono [n] at the engine rate (the caller resamples to the requested rate);
        empty when the base voice produced no audio for it."""
        prosody = prosody_for(request)
        lang = lang_of(text)
        base = self._voices.get(profile.base.get(lang, "")) or self.candidates(lang)[0]
        if base.engine != "espeak":
            # flite and festival are English-only: flite says nothing for other letters, festival segfaults
            # on them. Give them the ASCII they can read; text with none left goes to espeak, which reads all.
            folded = _ascii_fold(text)
            if speakable(folded):
                text = folded
            else:
                base = self._espeak_fallback(lang) or base
        voice = base
        if prosody.language and base.engine == "espeak":
            voice = BaseVoice(f"espeak:{prosody.language}+{base.name}", "espeak", base.name, prosody.language)
        rate_scale = (request.speed or 1.0) * prosody.rate
        samples, rate = synthesize(voice, text, stretch=1.0 / rate_scale)
        if samples.size < rate * FRAME_MS / 1000 * 4:  # too short for WORLD's analysis: nothing was said
            return np.zeros(0, np.float32), rate
        stats = self.base_stats(base)
        out = self._render(_world(samples, rate), rate, stats, profile, prosody)
        gain = (request.volume or 1.0) * prosody.energy
        rms = float(np.sqrt(np.mean(out**2))) or 1.0
        return np.clip(out * (0.1 / rms) * gain, -1.0, 1.0).astype(np.float32), rate

    def _espeak_fallback(self, lang: str) -> BaseVoice | None:
        return next(
            (
                v
                for v in self._voices.values()
                if v.engine == "espeak" and v.lang == ("cmn" if lang == "cmn" else "en-us")
            ),
            None,
        )

    @staticmethod
    def _render(
        analysis: tuple[np.ndarray, np.ndarray, np.ndarray],
        rate: int,
        stats: VoiceStats,
        profile: VoiceProfile,
        prosody: Prosody,
    ) -> np.ndarray:
        f0, sp, ap = analysis
        f0 = f0.copy()
        voiced = f0 > 0
        if voiced.any() and profile.f0_median > 0:
            logf = np.log(f0[voiced])
            centre = np.median(logf)
            spread = profile.f0_spread / stats.f0_spread if stats.f0_spread > 0 else 1.0
            spread = float(np.clip(spread, 0.4, 2.5)) * prosody.pitch_range
            f0[voiced] = np.exp(np.log(profile.f0_median * prosody.pitch) + (logf - centre) * spread)
        bins = np.linspace(0, rate / 2, sp.shape[1])
        if abs(profile.warp - 1.0) > 1e-3:  # formant shift: sp'(f) = sp(f / warp)
            src = np.clip(bins / profile.warp, 0, rate / 2)
            sp = np.stack([np.interp(src, bins, frame) for frame in sp])
        if profile.envelope_strength > 0 and profile.envelope:
            base_env = np.interp(_BANDS_HZ / profile.warp, _BANDS_HZ, np.asarray(stats.envelope))
            delta = np.clip(np.asarray(profile.envelope) - base_env, -2.5, 2.5) * profile.envelope_strength
            correction = np.interp(bins, _BANDS_HZ, delta)  # held flat outside the compared bands
            sp = sp * np.exp(correction)[None, :]
        out = pw.synthesize(f0, np.ascontiguousarray(sp), ap, rate, FRAME_MS)
        return np.asarray(out, dtype=np.float32)
