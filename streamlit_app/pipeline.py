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
    "review": "Waiting for review",
}

RUNNING_LABELS: dict[str, str] = {  # what is happening while the persona waits to reach this state
    "validated": "Checking the audio",
    "embedded": "Embedding the voice",
    "registered": "Registering on chain",
    "cloned": "Cloning the voice",
    "previewed": "Recording the preview",
    "live": "Going live",
}

# Rough seconds each step takes against the provider, for the estimate only (cloning dominates): presentation,
# like the labels — the platform enforces nothing here.
TYPICAL_SECONDS: dict[str, float] = {
    "validated": 2,
    "embedded": 3,
    "registered": 3,
    "cloned": 25,
    "previewed": 5,
    "live": 1,
}

STATUS_BADGES: dict[str, str] = {
    "live": ":green-badge[live]",
    "failed": ":red-badge[failed]",
    "revoked": ":gray-badge[revoked]",
    "review": ":orange-badge[in review]",
}


def label(state: str) -> str:
    return STEP_LABELS.get(state, state.replace("_", " ").capitalize())


def running_step(status: str, pipeline: PipelineLimits) -> str | None:
    """The step being worked on while a persona's status is `status` (the next state), None once final."""
    steps = pipeline["states"]
    if status not in steps or steps.index(status) + 1 >= len(steps):
        return None
    return steps[steps.index(status) + 1]


def running_label(step: str) -> str:
    return RUNNING_LABELS.get(step, label(step))


def seconds_left(status: str, pipeline: PipelineLimits, in_step_s: float = 0.0) -> float:
    """A rough estimate of the seconds until live: the typical time of every step not finished yet, less the
    time already spent on the running one (never below a second while one is running)."""
    steps = pipeline["states"]
    if status not in steps:
        return 0.0
    remaining = steps[steps.index(status) + 1 :]
    if not remaining:
        return 0.0
    total = sum(TYPICAL_SECONDS.get(step, 2) for step in remaining)
    current = TYPICAL_SECONDS.get(remaining[0], 2)
    return max(1.0, total - min(in_step_s, current - 1))


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
