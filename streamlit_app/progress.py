"""Following a persona through the pipeline: a polling fragment that stops once it is final."""

from __future__ import annotations

from typing import Any

import streamlit as st

from streamlit_app import contract, session
from streamlit_app.api_client import ApiError, Persona, PipelineLimits
from streamlit_app.notices import show_api_error
from streamlit_app.pipeline import is_final, label, progress

POLL_SECONDS = 1.5
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
        lines = [
            f"Pipeline failed at **{step}**: **`{failure.get('code', 'unknown')}`** — "
            f"{failure.get('message', 'no message')}"
        ]
        if failure.get("retryable"):
            lines.append("The platform marks this as temporary; it may be retried.")
        st.error("  \n".join(lines), icon=":material/error:")
    elif status == "revoked":
        st.warning("This persona was revoked by its creator; it no longer speaks.", icon=":material/block:")


def show_steps(status: str, pipeline: PipelineLimits) -> None:
    steps = pipeline["states"]
    done = steps.index(status) if status in steps else -1
    marks = [
        f"{'✅' if i <= done else ('⏳' if i == done + 1 else '▫️')} {label(step)}"
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
    attempts = f" (attempt {job['attempts']})" if job and job.get("attempts", 0) > 1 else ""
    st.progress(progress(status, pipeline), text=f"{label(status)}{attempts} …")
    show_steps(status, pipeline)
