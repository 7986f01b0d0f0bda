"""Discover: full-text search (name, description, prompt, tags, creator) over public personas, tags and creators as
one-click filters, language and sort; samples play in place. The search, filters, sort and pages are the
platform's (`GET /voices?q=&tag=&language=&sort=&limit=&offset=`): this page only builds the query."""

from __future__ import annotations

import streamlit as st

from streamlit_app import contract, session
from streamlit_app.api_client import ApiError, Persona
from streamlit_app.dates import local_date
from streamlit_app.money import exactly, format_cny
from streamlit_app.notices import show_api_error
from streamlit_app.pipeline import badge
from streamlit_app.samples import play_sample

PAGE_SIZE = 12
SORTS = {"popular": "Most called", "new": "Newest"}
QUERY, TAG, LANGUAGE, SORT, PAGE = (
    "vp_discover_q",
    "vp_discover_tag",
    "vp_discover_language",
    "vp_discover_sort",
    "vp_discover_page",
)


def calls(n: int) -> str:
    return f"{n:,} call" + ("" if n == 1 else "s")


def filter_by(**values: str) -> None:
    """A click on a tag or a creator: set that filter (the widgets read it on this rerun) and go to page 1."""
    for name, value in values.items():
        st.session_state[name] = value
    st.session_state[PAGE] = 0


def persona_card(persona: Persona) -> None:
    pid = persona["id"]
    with st.container(border=True):
        st.markdown(f"#### {persona['name']} {badge(persona['status'])}")
        creator = persona["creator"]["name"] or ""
        with st.container(horizontal=True, gap="small"):
            if creator:
                st.button(
                    f"by {creator}",
                    key=f"creator-{pid}",
                    type="tertiary",
                    help="Show this creator's personas",
                    on_click=filter_by,
                    kwargs={QUERY: creator, TAG: ""},
                )
            for tag in persona["tags"]:
                st.button(
                    f"#{tag}",
                    key=f"tag-{pid}-{tag}",
                    type="tertiary",
                    help=f"Show personas tagged {tag}",
                    on_click=filter_by,
                    kwargs={TAG: tag},
                )
        price = persona["pricePer10kChars"]
        st.caption(
            f"{contract.language_name(persona['language'])} · {calls(persona['calls'])} · "
            f"{format_cny(price)} / 10k chars · since {local_date(persona.get('createdAt'))}",
            help=exactly(price),
        )
        if persona.get("description"):
            st.write(persona["description"])
        playing = st.session_state.setdefault("vp_discover_playing", set())
        # A row that wraps instead of cutting a button short on a narrow card.
        with st.container(horizontal=True, gap="small"):
            if st.button("Open", key=f"open-{pid}", icon=":material/open_in_new:", width="content"):
                st.switch_page("views/persona.py", query_params={"id": pid})
            if st.button("Generate", key=f"speak-{pid}", icon=":material/graphic_eq:", width="content"):
                st.switch_page("views/generate.py", query_params={"voice": pid})
            if st.button("Sample", key=f"sample-{pid}", icon=":material/play_arrow:", width="content"):
                playing.add(pid)
        if pid in playing:
            play_sample(persona, autoplay=True)


st.title("Discover voices")
languages = ["", *contract.limits()["persona"]["languages"]]
search_col, tag_col, language_col, sort_col = st.columns([3, 2, 2, 2])
query = search_col.text_input(
    "Search", key=QUERY, placeholder="name, description, prompt, tag or creator", on_change=filter_by
)
tag = tag_col.text_input("Tag", key=TAG, placeholder="e.g. narrator", on_change=filter_by)
language = language_col.selectbox(
    "Language",
    languages,
    key=LANGUAGE,
    format_func=lambda code: contract.language_name(code) if code else "Any language",
    on_change=filter_by,
)
sort = sort_col.selectbox(
    "Sort by", list(SORTS), key=SORT, format_func=SORTS.__getitem__, on_change=filter_by
)
if tag.strip():
    st.button(f"Tag: #{tag.strip()} ✕", key="clear-tag", on_click=filter_by, kwargs={TAG: ""})
page_number: int = st.session_state.setdefault(PAGE, 0)

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
        st.session_state[PAGE] = page_number - 1
        st.rerun()
    if next_col.button("Next →", disabled=(page_number + 1) * PAGE_SIZE >= total):
        st.session_state[PAGE] = page_number + 1
        st.rerun()
