"""Content moderation: a configurable blocklist (configs/moderation/*.yaml) screens persona names, descriptions,
prompts, TTS input and chat before any hold or provider call, so blocked text is never stored or billed."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bentos.core.errors import ErrorCode, PlatformError

# Zero-width and other invisible format characters would otherwise split a term and slip it through.
_INVISIBLE = {"Cf"}


def normalize(text: str) -> str:
    """What terms are matched against: NFKC (full-width → ASCII), case-folded, invisible characters removed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if unicodedata.category(ch) not in _INVISIBLE)


def _pattern(term: str) -> re.Pattern[str] | None:
    words = normalize(term).split()
    if not words:
        return None
    if all(w.isascii() for w in words):  # whole words, any run of spaces or punctuation between them
        return re.compile(r"(?<![\w])" + r"[\W_]+".join(map(re.escape, words)) + r"(?![\w])")
    return re.compile(r"\s*".join(map(re.escape, "".join(words))))  # CJK: anywhere, spaces ignored


@dataclass(frozen=True)
class Moderation:
    """configs/moderation/*.yaml: `blocklist`, the terms refused (English and Chinese); `impersonation_review`,
    whether a persona whose voice is within the encoder's calibrated threshold of another creator's live persona
    waits for an admin (core/review.py) instead of being cloned."""

    blocklist: Sequence[str] = ()
    impersonation_review: bool = True
    _patterns: tuple[tuple[str, re.Pattern[str]], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        compiled = tuple((t, p) for t in self.blocklist if (p := _pattern(t)) is not None)
        object.__setattr__(self, "_patterns", compiled)

    def match(self, text: str) -> str | None:
        """The first blocked term `text` contains, or None."""
        if not text or not self._patterns:
            return None
        normal = normalize(text)
        return next((term for term, pattern in self._patterns if pattern.search(normal)), None)


NO_MODERATION = Moderation()


def blocked(what: str) -> PlatformError:
    """The one refusal for blocked content (ours, 400); the provider's own 451 carries the same code."""
    return PlatformError(
        ErrorCode.CONTENT_BLOCKED, f"the {what} contains content that is not allowed on VoxPersona", 400
    )


def screen(blocklist: Moderation | None, fields: Mapping[str, str | None]) -> None:
    """Raise 400 `content_blocked` if any field's text holds a blocked term (the message names the field, never
    the term: a list that is easy to read is easy to get around)."""
    if blocklist is None:
        return
    for what, text in fields.items():
        if text and blocklist.match(text) is not None:
            raise blocked(what)


def persona_texts(draft: object) -> dict[str, str | None]:
    """The texts of a persona a user writes and others read or hear, by the name the refusal gives them."""
    return {
        "name": getattr(draft, "name", None),
        "description": getattr(draft, "description", None),
        "persona prompt": getattr(draft, "persona_prompt", None),
        "sample text": getattr(draft, "sample_text", None),
        "greeting": getattr(draft, "greeting", None),
    }
