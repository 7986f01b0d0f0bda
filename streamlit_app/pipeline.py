"""The persona pipeline as a user sees it: its steps and final states come from the platform
(`GET /v1/limits` → `pipeline`); this module only names and colours them."""

from __future__ import annotations

from streamlit_app.api_client import PipelineLimits

STEP_LABELS: dict[str, str] = {  # display names; a state the platform adds later shows as its own name
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


def label(state: str) -> str:
    return STEP_LABELS.get(state, state.replace("_", " ").capitalize())


def progress(status: str, pipeline: PipelineLimits) -> float:
    """Fraction of the pipeline done for a persona status (0.0 … 1.0); final states count as done."""
    steps = pipeline["states"]
    if status in steps and len(steps) > 1:
        return steps.index(status) / (len(steps) - 1)
    return 1.0 if is_final(status, pipeline) else 0.0


def is_final(status: str, pipeline: PipelineLimits) -> bool:
    return status in pipeline["finalStates"]


def badge(status: str) -> str:
    """Markdown badge for a persona status; steps still running show in blue."""
    return STATUS_BADGES.get(status, f":blue-badge[{label(status).lower()}]")
