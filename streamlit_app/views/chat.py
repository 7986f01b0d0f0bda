"""Chat: talk with a persona — its reply text streams in as it is written, its voice plays when the reply ends.

Each turn is one streamed `POST /v1/chat/completions` (text deltas, then the spoken sentences as WAV deltas) that
names the thread's stored conversation (`conversation`, the platform's extension), so every turn of a thread is
stored in one conversation; the page sends the earlier turns as `messages` (the platform windows them). The list is the
caller's stored conversations (`GET /conversations`): open one to continue it, delete one, start a new one. The
persona's creator edits its character (greeting, tone, language) here too.
"""

from __future__ import annotations

import contextlib
from typing import Any

import streamlit as st

from streamlit_app import contract, session
from streamlit_app.api_client import ApiError, Balance, Character, ChatTurn, Persona, PlatformClient
from streamlit_app.money import format_cny
from streamlit_app.notices import show_api_error, show_short_of_money

_THREAD = "vp_chat_thread"  # {"persona": id, "messages": [{role, content, audio?, cost?}], "stored": [ids]}
_PICKED = "vp_chat_persona"  # the persona select box
_CHARACTERS = "vp_chat_characters"  # persona id → its character, fetched once a session
_NOTICE = "vp_chat_notice"  # what a list button's callback has to say on the next run
SENT_MESSAGES = 16  # earlier messages sent with a turn (the platform keeps its own, smaller window of these)


def choices(api: PlatformClient, wanted: str | None) -> dict[str, Persona]:
    """Live personas the caller can talk with, plus the one asked for by id (it may be unlisted)."""
    options = {
        p["id"]: p for p in api.list_voices(sort="popular", limit=100)["data"] if p["status"] == "live"
    }
    if wanted and wanted not in options:
        try:
            found = api.get_voice(wanted)
        except ApiError:
            return options
        if found["status"] == "live":
            options = {wanted: found, **options}
    return options


def thread(persona_id: str) -> dict[str, Any]:
    """The conversation shown: a new one whenever another persona is picked."""
    current: dict[str, Any] | None = st.session_state.get(_THREAD)
    if current is None or current["persona"] != persona_id:
        current = st.session_state[_THREAD] = {"persona": persona_id, "messages": [], "stored": []}
    return current


def character(persona_id: str, *, fresh: bool = False) -> Character | None:
    known: dict[str, Character] = st.session_state.setdefault(_CHARACTERS, {})
    if fresh or persona_id not in known:
        with session.client() as api:
            try:
                known[persona_id] = api.character(persona_id)
            except ApiError:
                return None
    return known[persona_id]


def show_message(message: dict[str, Any]) -> None:
    with st.chat_message(message["role"]):
        st.markdown(message["content"])
        if message.get("audio"):
            st.audio(message["audio"], format="audio/wav")
        if message.get("cost") is not None:
            st.caption(f"This reply cost {format_cny(message['cost'])}")


# -- the conversation list (its buttons act in callbacks, before the page is drawn again) --------------------


def open_conversation(conversation_id: str, persona_ids: list[str]) -> None:
    with session.client() as api:
        try:
            found = api.conversation(conversation_id)
        except ApiError as err:
            st.session_state[_NOTICE] = err
            return
    if found["personaId"] not in persona_ids:
        st.session_state[_NOTICE] = ApiError(404, "voice_not_live", "this persona can't be talked with now")
        return
    st.session_state[_PICKED] = found["personaId"]
    st.session_state[_THREAD] = {
        "persona": found["personaId"],
        "messages": [
            {"role": m["role"], "content": m["content"]}
            for m in found["messages"]
            if m["role"] in ("user", "assistant")
        ],
        "stored": [found["id"]],
    }


def delete_conversations(conversation_ids: list[str]) -> None:
    """Delete stored conversations; the thread shown forgets them, and is cleared when none of it is left."""
    with session.client() as api:
        for conversation_id in conversation_ids:
            try:
                api.delete_conversation(conversation_id)
            except ApiError as err:
                if err.status != 404:  # already gone is what was asked for
                    st.session_state[_NOTICE] = err
                    return
    current: dict[str, Any] | None = st.session_state.get(_THREAD)
    if current and set(current["stored"]) & set(conversation_ids):
        current["stored"] = [c for c in current["stored"] if c not in conversation_ids]
        if not current["stored"]:
            current["messages"] = []


def new_conversation() -> None:
    current: dict[str, Any] | None = st.session_state.get(_THREAD)
    if current:
        current.update(messages=[], stored=[])


def show_conversations(persona_ids: list[str]) -> None:
    st.subheader("Conversations")
    st.button("New conversation", icon=":material/add_comment:", on_click=new_conversation)
    with session.client() as api:
        try:
            found = api.conversations()
        except ApiError as err:
            show_api_error(err, context="Could not load your conversations")
            return
    if not found:
        st.caption("No conversations yet.")
        return
    shown: list[str] = st.session_state.get(_THREAD, {}).get("stored", [])
    for c in found:
        with st.container(border=True):
            last = c["lastTurn"]["content"] if c["lastTurn"] else ""
            mark = " · open" if c["id"] in shown else ""
            st.markdown(f"**{c['persona']}** · {c['turns']} messages{mark}")
            st.caption(f"{last[:80]}{'…' if len(last) > 80 else ''}")
            open_col, delete_col = st.columns(2)
            open_col.button(
                "Open", key=f"open-{c['id']}", on_click=open_conversation, args=(c["id"], persona_ids)
            )
            delete_col.button(
                "Delete", key=f"delete-{c['id']}", on_click=delete_conversations, args=([c["id"]],)
            )


# -- the creator's character editor --------------------------------------------------------------------------


def edit_character(persona: Persona) -> None:
    current = character(persona["id"])
    if current is None:
        st.caption("The character could not be loaded.")
        return
    limits = contract.limits()
    labels = limits["tts"]["voiceLabels"]
    languages = limits["persona"]["languages"]
    emotions = ["none", *labels.get("emotion", [])]
    styles = ["none", *labels.get("style", [])]
    with st.form(f"character-{persona['id']}"):
        st.caption(
            f"Version {current['version']}: every edit is a new version; each turn records the one it used."
        )
        prompt = st.text_area(
            "Persona prompt",
            current.get("personaPrompt") or "",
            max_chars=limits["persona"]["promptMaxChars"],
        )
        greeting = st.text_area("Greeting", current.get("greeting") or "", help="what the persona opens with")
        emotion_col, style_col, language_col = st.columns(3)
        mood, tone = current.get("emotion") or "none", current.get("style") or "none"
        emotion = emotion_col.selectbox(
            "Emotion", emotions, index=emotions.index(mood) if mood in emotions else 0
        )
        style = style_col.selectbox("Style", styles, index=styles.index(tone) if tone in styles else 0)
        language = language_col.selectbox(
            "Language",
            languages,
            index=languages.index(current["language"]) if current["language"] in languages else 0,
            format_func=contract.language_name,
        )
        saved = st.form_submit_button("Save character")
    if not saved:
        return
    if emotion != "none" and style != "none":
        st.error("Pick an emotion or a style, not both: the voice takes one label.", icon=":material/error:")
        return
    wanted: dict[str, str | None] = {
        "personaPrompt": prompt.strip() or None,
        "greeting": greeting.strip() or None,
        "emotion": None if emotion == "none" else emotion,
        "style": None if style == "none" else style,
        "language": language,
    }
    changes = {k: v for k, v in wanted.items() if v != (current.get(k) or None)}
    if changes.get("personaPrompt", "") is None:
        del changes["personaPrompt"]  # the prompt can be rewritten, not cleared
    if not changes:
        st.info("Nothing changed.")
        return
    with session.client() as api:
        try:
            edited = api.edit_character(persona["id"], changes)
        except ApiError as err:
            show_api_error(err, context="The character was not saved")
            return
    st.session_state.setdefault(_CHARACTERS, {})[persona["id"]] = edited
    st.success(f"Saved as version {edited['version']}.", icon=":material/check:")


# -- a turn --------------------------------------------------------------------------------------------------


def stored_conversation(
    api: PlatformClient, persona_id: str, request_id: str | None, reply: str
) -> str | None:
    """The stored conversation the platform recorded this turn in (its newest with this persona and reply)."""
    try:
        found = api.conversations()
    except ApiError:
        return None
    for c in found:
        last: dict[str, Any] = dict(c["lastTurn"] or {})
        usage = last.get("usage") or {}
        if c["personaId"] == persona_id and (
            (request_id and usage.get("requestId") == request_id) or last.get("content") == reply
        ):
            return c["id"]
    return None


def take_turn(persona: Persona, talk: dict[str, Any], message: str) -> None:
    """Show the message, stream the reply into the transcript, then play its audio."""
    show_message({"role": "user", "content": message})
    earlier: list[ChatTurn] = [{"role": m["role"], "content": m["content"]} for m in talk["messages"]]
    sent = [*earlier[-SENT_MESSAGES:], ChatTurn(role="user", content=message)]
    with st.chat_message("assistant"), session.client() as api:
        try:
            joined = talk["stored"][-1] if talk["stored"] else None
            stream = api.stream_chat(persona["id"], sent, audio_format="wav", conversation=joined)
        except ApiError as err:
            if err.code == "insufficient_balance":
                show_short_of_money(
                    err, "a reply can cost up to", "Nothing was said and nothing was charged."
                )
            else:
                show_api_error(err, context="No reply")
            return
        with stream:
            text = st.write_stream(stream.text())
        reply = text if isinstance(text, str) else stream.reply
        audio = stream.audio if stream.audio_format and len(stream.audio) > 44 else None
        if audio:
            st.audio(audio, format="audio/wav", autoplay=True)
        cost = (stream.usage or {}).get("amount")
        if cost is not None:
            st.caption(f"This reply cost {format_cny(cost)}")
        if stream.error is not None:
            show_api_error(stream.error, context="The reply broke off")
        stored = (stream.usage or {}).get("conversation") or (
            stored_conversation(api, persona["id"], stream.request_id, reply) if reply else None
        )
    talk["messages"] += [
        {"role": "user", "content": message},
        {"role": "assistant", "content": reply, "audio": audio, "cost": cost},
    ]
    if stored and stored not in talk["stored"]:
        talk["stored"].append(stored)


# -- the page ------------------------------------------------------------------------------------------------

st.title("Chat")
me = session.require_account()
wanted = st.query_params.get("voice")
with session.client() as api:
    try:
        personas = choices(api, wanted)
    except ApiError as err:
        show_api_error(err, context="Could not load personas")
        st.stop()
if not personas:
    st.info("No live personas yet — create one on **Create**.")
    st.stop()

ids = list(personas)
if st.session_state.get(_PICKED) not in ids:
    st.session_state[_PICKED] = wanted if wanted in ids else ids[0]
voice_id = st.selectbox(
    "Persona",
    ids,
    key=_PICKED,
    format_func=lambda i: f"{personas[i]['name']} — by {personas[i]['creator']['name'] or 'unknown'}",
)
persona = personas[voice_id]
talk = thread(voice_id)
balance_slot = st.empty()  # filled last, so it shows what this run's turn took
st.caption(
    f"Each reply costs its chat tokens plus the characters spoken at {format_cny(persona['pricePer10kChars'])} "
    f"per 10,000 with {persona['model']}; the most a reply may cost is held while it is written, the rest "
    "comes back."
)
if persona["creator"]["id"] == me["id"]:
    with st.expander("Character", icon=":material/theater_comedy:"):
        edit_character(persona)

notice = st.session_state.pop(_NOTICE, None)
if isinstance(notice, ApiError):
    show_api_error(notice, context="Conversation")

chat_col, list_col = st.columns([3, 1])
with chat_col:
    known = character(voice_id)
    greeting = known.get("greeting") if known else None
    if greeting and not talk["messages"]:
        show_message({"role": "assistant", "content": greeting})
    for message in talk["messages"]:
        show_message(message)
prompt = st.chat_input(f"Say something to {persona['name']}")
with chat_col:
    if prompt and prompt.strip():
        take_turn(persona, talk, prompt.strip())
    if talk["stored"]:
        st.button(
            "Delete this conversation",
            icon=":material/delete:",
            on_click=delete_conversations,
            args=(list(talk["stored"]),),
            help="deletes the stored conversations this thread is made of",
        )
with list_col:
    show_conversations(ids)
funds: Balance | None = None
with session.client() as api, contextlib.suppress(ApiError):
    funds = api.balance()
if funds is not None:
    balance_slot.metric("Balance", format_cny(funds["available"]))
