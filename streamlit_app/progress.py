"""Following a persona through the pipeline: a polling fragment that stops once it is final."""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from streamlit_app import contract, session
from streamlit_app.api_client import ApiError, Job, Persona, PipelineLimits
from streamlit_app.notices import plain, show_api_error, small_code
from streamlit_app.pipeline import is_final, label, progress, running_label, running_step, seconds_left

POLL_SECONDS = 1.5
_STEP_SINCE = "vp_pipeline_step_since"  # (voice id, status, monotonic time the status was first seen)
PERSONA_PAGE = "views/persona.py"
GENERATE_PAGE = "views/generate.py"


def show_outcome(persona: Persona) -> None:
    """The final word on a persona: live (with its sample), failed (step, code, message) or revoked."""
    status = persona["status"]
    if status == "live":
        st.success(f"**{persona['name']}** is live.", icon=":material/check_circle:")
    elif status == "failed":
        failure: dict[str, Any] = dict(persona.get("failure") or {})
        step = label(str(failure["step"])) if failure.get("step") else "unknown step"
        lines = [f"Creating the persona failed at **{step}**: {plain(str(failure.get('message') or ''))}"]
        if failure.get("retryable"):
            lines.append("The platform marks this as temporary; it may be retried.")
        lines.append(small_code(str(failure.get("code", "unknown"))))
        st.error("  \n".join(lines), icon=":material/error:")
    elif status == "revoked":
        st.warning("This persona was revoked by its creator; it no longer speaks.", icon=":material/block:")


def show_steps(status: str, pipeline: PipelineLimits) -> None:
    steps = pipeline["states"]
    done = steps.index(status) if status in steps else -1
    marks = [
        f"{'✅' if i <= done else ('⏳' if i == done + 1 else '▫️')} "
        + (f"**{running_label(step)}…**" if i == done + 1 else label(step))
        for i, step in enumerate(steps)
    ]
    st.caption(" · ".join(marks))


@st.fragment(run_every=POLL_SECONDS)
def follow_pipeline(voice_id: str, job_id: str | None = None) -> None:
    """Poll `GET /voices/{id}` (and the job, for retry counts) until final, then rerun the page."""
    pipeline = contract.limits()["pipeline"]
    with session.client() as api:
        try:
            persona = api.get_voice(voice_id)
            job = api.get_job(job_id) if job_id else None
        except ApiError as err:
            show_api_error(err, context="Could not read the pipeline state")
            return
    status = persona["status"]
    if is_final(status, pipeline):
        st.rerun()  # the page now renders the outcome instead of this poller, so polling stops
    if status == "review":  # waits for an admin, not for a step: no progress to show (core/review.py)
        st.info(
            "An admin is reviewing this persona: its voice sounds very like another creator's persona. It is "
            "cloned (and the fee charged) only once approved — follow it on **My personas**.",
            icon=":material/policy:",
        )
        return
    st.progress(progress(status, pipeline), text=progress_text(voice_id, status, pipeline, job))
    show_steps(status, pipeline)


def progress_text(voice_id: str, status: str, pipeline: PipelineLimits, job: Job | None) -> str:
    """The step running now (not the last one finished), its attempt, and about how long is left."""
    now = time.monotonic()
    seen = st.session_state.get(_STEP_SINCE)
    if not seen or seen[0] != voice_id or seen[1] != status:
        seen = st.session_state[_STEP_SINCE] = (voice_id, status, now)
    step = running_step(status, pipeline)
    doing = running_label(step) if step else label(status)
    attempts = f" (attempt {job['attempts']})" if job and job.get("attempts", 0) > 1 else ""
    left = seconds_left(status, pipeline, now - seen[2])
    return f"{doing}{attempts}… about {left:.0f} s left"
