"""What an API key (or a session opened with one) may do: `full`, `speech` (read, and call speech and chat) or
`read` (GET only). Checked once per request, in bentos.api.deps.caller (and by the realtime socket)."""

from __future__ import annotations

import enum
import re

from bentos.core.errors import ErrorCode, PlatformError


class Scope(enum.StrEnum):
    FULL = "full"
    SPEECH = "speech"
    READ = "read"


SCOPES = tuple(Scope)
LEGACY_FULL = "*"  # keys issued before scopes existed, and sessions opened with a password
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The calls that speak (and are billed): what a `speech` key is for, besides reading.
_SPEECH_CALLS = re.compile(
    r"^(/tts|/v1/audio/speech|/v1/chat/completions|/v1/realtime/audio|/voices/[^/]+/chat)/?$"
)


def parse(scopes: str) -> Scope:
    """The stored scope text of a key → its scope (the legacy "*" is `full`)."""
    if scopes in (LEGACY_FULL, ""):
        return Scope.FULL
    try:
        return Scope(scopes)
    except ValueError:  # a value this version does not know: the least it could mean
        return Scope.READ


def validate(scope: str) -> Scope:
    try:
        return Scope(scope)
    except ValueError:
        allowed = ", ".join(SCOPES)
        raise PlatformError(ErrorCode.INVALID_SCOPE, f"scope must be one of: {allowed}", 422) from None


# Giving up one's own credential never needs a scope: a `read` key must be able to end its session or itself.
_SIGN_OUT = frozenset({("DELETE", "/sessions/current"), ("DELETE", "/accounts/me/keys/current")})


def permits(scopes: str, method: str, path: str) -> bool:
    scope = parse(scopes)
    if scope is Scope.FULL or method.upper() in _READ_METHODS or (method.upper(), path) in _SIGN_OUT:
        return True
    return scope is Scope.SPEECH and _SPEECH_CALLS.match(path) is not None


def require(scopes: str, method: str, path: str) -> None:
    if not permits(scopes, method, path):
        raise PlatformError(
            ErrorCode.INSUFFICIENT_SCOPE,
            f"this key's scope ({parse(scopes)}) does not allow {method.upper()} {path}",
            403,
        )
