"""The persona pipeline as a user sees it: ordered steps, progress, and which states are final."""

from __future__ import annotations

STEPS: tuple[str, ...] = ("uploaded", "validated", "embedded", "registered", "cloned", "previewed", "live")
FINAL_STATES = frozenset({"live", "failed", "revoked"})

STEP_LABELS: dict[str, str] = {
    "uploaded": "Uploaded",
    "validated": "Audio checked",
    "embedded": "Voice embedded",
    "registered": "Registered on chain",
    "cloned": "Voice cloned",
    "previewed": "Preview recorded",
    "live": "Live",
    "failed": "Failed",
    "revoked": "Revoked",
}

STATUS_BADGES: dict[str, str] = {
    "live": ":green-badge[live]",
    "failed": ":red-badge[failed]",
    "revoked": ":gray-badge[revoked]",
}


def progress(status: str) -> float:
    """Fraction of the pipeline done for a persona status (0.0 … 1.0); failed/revoked count as done."""
    if status in STEPS:
        return STEPS.index(status) / (len(STEPS) - 1)
    return 1.0


def is_final(status: str) -> bool:
    return status in FINAL_STATES


def badge(status: str) -> str:
    """Markdown badge for a persona status; steps still running show in blue."""
    return STATUS_BADGES.get(status, f":blue-badge[{STEP_LABELS.get(status, status).lower()}]")
