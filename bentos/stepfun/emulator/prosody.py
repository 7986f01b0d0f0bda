"""How voice_label / instruction change delivery in the emulator: a fixed, documented table (deterministic).

Each label scales mean pitch, pitch range (log-F0 spread around the mean), speaking rate and loudness. The
numbers are chosen to be audible and plausible, not to imitate StepFun.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models import SpeechRequest


@dataclass(frozen=True)
class Prosody:
    pitch: float = 1.0  # × mean F0
    pitch_range: float = 1.0  # × log-F0 spread
    rate: float = 1.0  # × speaking rate (>1 faster)
    energy: float = 1.0  # × amplitude
    language: str | None = None  # espeak language for language labels


NEUTRAL = Prosody()

LABEL_PROSODY: dict[str, Prosody] = {
    # emotions
    "高兴": Prosody(1.08, 1.25, 1.05, 1.10),
    "非常高兴": Prosody(1.15, 1.40, 1.10, 1.20),
    "悲伤": Prosody(0.92, 0.70, 0.85, 0.80),
    "生气": Prosody(1.05, 1.30, 1.10, 1.30),
    "非常生气": Prosody(1.10, 1.50, 1.15, 1.40),
    "撒娇": Prosody(1.15, 1.30, 0.95, 0.95),
    "恐惧": Prosody(1.10, 1.20, 1.15, 0.85),
    "惊讶": Prosody(1.15, 1.50, 1.00, 1.10),
    "兴奋": Prosody(1.12, 1.40, 1.15, 1.20),
    "钦佩": Prosody(1.03, 1.15, 0.95, 1.00),
    "困惑": Prosody(1.00, 1.20, 0.90, 0.90),
    # styles
    "慢速": Prosody(rate=0.80),
    "极慢": Prosody(rate=0.60),
    "快速": Prosody(rate=1.25),
    "极快": Prosody(rate=1.50),
    "冷漠": Prosody(0.97, 0.50, 1.00, 0.90),
    "尴尬": Prosody(1.02, 0.80, 0.95, 0.85),
    "沮丧": Prosody(0.92, 0.60, 0.85, 0.80),
    "骄傲": Prosody(1.02, 1.20, 0.95, 1.10),
    "温柔": Prosody(1.03, 0.80, 0.90, 0.80),
    "甜美": Prosody(1.12, 1.10, 1.00, 0.90),
    "豪爽": Prosody(0.97, 1.30, 1.10, 1.25),
    "严肃": Prosody(0.95, 0.70, 0.95, 1.00),
    "傲慢": Prosody(0.98, 1.20, 0.90, 1.05),
    "老年": Prosody(0.88, 0.80, 0.80, 0.85),
    "吼叫": Prosody(1.20, 1.50, 1.10, 1.60),
    "阴阳怪气": Prosody(1.05, 1.80, 0.95, 1.00),
    "磕巴": Prosody(1.00, 1.00, 0.85, 1.00),
    # languages: Cantonese has an espeak-ng voice; no Japanese/Sichuanese voice is installed, so those keep
    # Mandarin and only change prosody (honest approximation).
    "粤语": Prosody(language="yue"),
    "四川话": Prosody(1.00, 1.20, 1.05, 1.00),
    "日语": Prosody(1.05, 0.90, 1.05, 1.00),
}

# instruction (stepaudio-2.5-tts) → the first label whose keyword occurs in it.
INSTRUCTION_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("very happy", "非常高兴"), ("happy", "高兴"), ("joy", "高兴"), ("sad", "悲伤"),
    ("very angry", "非常生气"),
    ("angry", "生气"), ("afraid", "恐惧"), ("scared", "恐惧"), ("surprised", "惊讶"), ("excited", "兴奋"),
    ("gentle", "温柔"), ("soft", "温柔"), ("sweet", "甜美"), ("serious", "严肃"), ("shout", "吼叫"),
    ("slowly", "慢速"), ("slow", "慢速"), ("quickly", "快速"), ("fast", "快速"), ("old", "老年"),
)  # fmt: skip


def prosody_for(request: SpeechRequest) -> Prosody:
    """The prosody a request asks for: its voice_label, or a keyword of its instruction, else neutral."""
    if request.voice_label is not None:
        return LABEL_PROSODY.get(request.voice_label.value, NEUTRAL)
    if request.instruction:
        text = request.instruction.lower()
        for label in LABEL_PROSODY:
            if label in text:
                return LABEL_PROSODY[label]
        for keyword, label in INSTRUCTION_KEYWORDS:
            if keyword in text:
                return LABEL_PROSODY[label]
    return NEUTRAL
