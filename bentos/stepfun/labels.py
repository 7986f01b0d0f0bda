"""Which voice labels each speech model takes, read from the contract's rules in `models.py`, with English glosses
so a client can offer them as choices instead of a free-text box (GET /v1/limits → `tts.modelLabels`)."""

from __future__ import annotations

from bentos.stepfun.models import (
    EMOTION_LABELS,
    INSTRUCTION_MODELS,
    LANGUAGE_LABELS,
    STYLE_LABELS_ALL,
    STYLE_LABELS_TTS2,
)

TTS2_STYLE_MODELS = ("step-tts-2", "step-tts-vivid")  # the models SpeechRequest lets take STYLE_LABELS_TTS2

GLOSSES: dict[str, str] = {  # the provider's label values are Chinese words; what each means
    "粤语": "Cantonese",
    "四川话": "Sichuanese",
    "日语": "Japanese",
    "高兴": "happy",
    "非常高兴": "very happy",
    "悲伤": "sad",
    "生气": "angry",
    "非常生气": "very angry",
    "撒娇": "coquettish",
    "恐惧": "fearful",
    "惊讶": "surprised",
    "兴奋": "excited",
    "钦佩": "admiring",
    "困惑": "confused",
    "慢速": "slow",
    "极慢": "very slow",
    "快速": "fast",
    "极快": "very fast",
    "冷漠": "indifferent",
    "尴尬": "awkward",
    "沮丧": "dejected",
    "骄傲": "proud",
    "温柔": "gentle",
    "甜美": "sweet",
    "豪爽": "bold",
    "严肃": "serious",
    "傲慢": "arrogant",
    "老年": "elderly",
    "吼叫": "shouting",
    "阴阳怪气": "sarcastic",
    "磕巴": "stammering",
}


def labels_for(model: str) -> dict[str, list[str]]:
    """The voice labels `model` accepts, by kind (language, emotion, style); empty for a model that takes a
    spoken `instruction` instead."""
    if model in INSTRUCTION_MODELS:
        return {}
    styles = STYLE_LABELS_ALL + (STYLE_LABELS_TTS2 if model in TTS2_STYLE_MODELS else ())
    return {"language": list(LANGUAGE_LABELS), "emotion": list(EMOTION_LABELS), "style": list(styles)}


def labels_by_model(models: list[str]) -> dict[str, dict[str, list[str]]]:
    return {model: labels_for(model) for model in models}
