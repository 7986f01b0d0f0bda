"""What counts as text a voice can speak: the one rule the platform applies before any provider call."""

from __future__ import annotations

import unicodedata

ALLOWED_CONTROLS = "\n\r\t"


def unspeakable(text: str) -> str | None:
    """Why `text` can't be spoken (control characters, nothing but spaces, emoji or punctuation), or None."""
    if any(unicodedata.category(c) in ("Cc", "Cs") and c not in ALLOWED_CONTROLS for c in text):
        return "must not contain control characters"
    if not any(unicodedata.category(c)[0] in "LN" for c in text):
        return "must contain at least one letter or digit to speak"
    return None
