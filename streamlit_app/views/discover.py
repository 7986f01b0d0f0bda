"""Discover: search, filter and sort public personas; play their samples; open or call one."""

from __future__ import annotations

import streamlit as st

from streamlit_app import contract, session
from streamlit_app.api_client import ApiError, Persona
from streamlit_app.money import format_cny
from streamlit_app.notices import show_api_error
from streamlit_app.pipeline import badge
from streamlit_app.samples import play_sample

PAGE_SIZE = 12
SORTS = {"popular": "Most called", "new": "Newest"}


def persona_card(persona: Persona) -> None:
    with st.container(border=True):
        st.markdown(f"#### {persona['name']} {badge(persona['status'])}")
        language = contract.language_name(persona["language"])
        st.caption(
            f"by {persona['creator']['name'] or 'unknown'} · {language} · "
            f"{persona['calls']:,} calls · {format_cny(persona['pricePer10kChars'])} / 10k chars"
        )
        if persona["tags"]:
            st.markdown(" ".join(f":violet-badge[{tag}]" for tag in persona["tags"]))
        if persona.get("description"):
            st.write(persona["description"])
        open_col, speak_col, sample_col = st.columns(3)
        if open_col.button("Open", key=f"open-{persona['id']}", icon=":material/open_in_new:"):
            st.switch_page("views/persona.py", query_params={"id": persona["id"]})
        if speak_col.button("Generate", key=f"speak-{persona['id']}", icon=":material/graphic_eq:"):
            st.switch_page("views/generate.py", query_params={"voice": persona["id"]})
        playing = st.session_state.setdefault("vp_discover_playing", set())
        if sample_col.button("Sample", key=f"sample-{persona['id']}", icon=":material/play_arrow:"):
            playing.add(persona["id"])
        if persona["id"] in playing:
            play_sample(persona, autoplay=True)


st.title("Discover voices")
languages = ["", *contract.limits()["persona"]["languages"]]
search_col, tag_col, language_col, sort_col = st.columns([3, 2, 2, 2])
query = search_col.text_input("Search", placeholder="name, description, prompt…")
tag = tag_col.text_input("Tag", placeholder="e.g. narrator")
language = language_col.selectbox(
    "Language", languages, format_func=lambda code: contract.language_name(code) if code else "Any language"
)
sort = sort_col.selectbox("Sort by", list(SORTS), format_func=SORTS.__getitem__)

# A new search starts again at the first page.
filters = (query, tag, language, sort)
if st.session_state.get("vp_discover_filters") != filters:
    st.session_state["vp_discover_filters"] = filters
    st.session_state["vp_discover_page"] = 0
page_number: int = st.session_state.setdefault("vp_discover_page", 0)

with session.client() as api:
    try:
        page = api.list_voices(
            q=query.strip() or None,
            tag=tag.strip() or None,
            language=language or None,
            sort=sort,  # type: ignore[arg-type]
            limit=PAGE_SIZE,
            offset=page_number * PAGE_SIZE,
        )
    except ApiError as err:
        show_api_error(err, context="Could not load personas")
        if err.status in (401, 403):
            session.require_account()
        st.stop()

total, personas = page["total"], page["data"]
if not personas:
    st.info("No personas match. Try fewer filters — or create the first one on **Create**.")
else:
    first = page_number * PAGE_SIZE + 1
    st.caption(f"Showing {first}–{first + len(personas) - 1} of {total:,} personas")
    columns = st.columns(3)
    for i, persona in enumerate(personas):
        with columns[i % 3]:
            persona_card(persona)

    previous_col, _, next_col = st.columns([1, 4, 1])
    if previous_col.button("← Previous", disabled=page_number == 0):
        st.session_state["vp_discover_page"] = page_number - 1
        st.rerun()
    if next_col.button("Next →", disabled=(page_number + 1) * PAGE_SIZE >= total):
        st.session_state["vp_discover_page"] = page_number + 1
        st.rerun()
