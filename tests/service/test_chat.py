"""Talking with a persona over HTTP, against a served platform and the emulator: the creator versions its
character, a caller holds a conversation (the history window honoured, deletion), the official OpenAI SDK gets
text and audio (plain and streamed, the first audio before the text ends), every turn is metered exactly, a short
balance gets a 402 before any provider call, and a provider failure mid-stream bills only what was delivered."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
import soundfile as sf
from openai import APIError, NotFoundError, OpenAI

from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.harness import RunningPlatform, platform_overrides, start_platform, wait_for
from encoders.voices import VoiceSet
from tests.service.test_end_to_end import create_live_persona

HISTORY_TURNS = 2
PROMPT = "A retired lighthouse keeper who loves storms, tea and old sea songs."
FUNDS = 50_000_000  # ¥50 per funded account


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory, emulator: EmulatorProcess) -> Iterator[RunningPlatform]:
    overrides = [
        *platform_overrides(tmp_path_factory.mktemp("chat"), emulator),
        "billing.trial_credit=0",  # every balance here is granted, so a fresh account is short
        f"chat.history_turns={HISTORY_TURNS}",
    ]
    running = start_platform(overrides)
    yield running
    running.stop()


def _funded(running: RunningPlatform, role: str = "consumer") -> tuple[str, str]:
    from bentos.core.accounts import open_admin

    account_id, key = running.sign_up(role)
    if not hasattr(running, "_admin_key"):
        _, admin_key = open_admin(running.platform.sessions, "Ops", f"ops-chat-{id(running)}@example.com")
        running._admin_key = admin_key  # type: ignore[attr-defined]
    granted = running.client(running._admin_key).post(  # type: ignore[attr-defined]
        "/admin/credits", json={"accountId": account_id, "amount": FUNDS, "reason": "chat tests"}
    )
    assert granted.status_code == 201, granted.text
    return account_id, key


@pytest.fixture(scope="module")
def persona(talk: RunningPlatform, voice_set: VoiceSet) -> dict[str, Any]:
    _, key = _funded(talk, "creator")
    made = create_live_persona(
        talk, key, voice_set.clips[2].mp3_path.read_bytes(), name="Mira", personaPrompt=PROMPT
    )
    return {**made, "creatorKey": key}


def _chat_calls(emulator: EmulatorProcess) -> int:
    return int(emulator.admin("stats")["requests"].get("POST /v1/chat/completions", 0))


def _available(client: Any) -> int:
    return int(client.get("/balance").json()["available"])


def _usage_row(client: Any, request_id: str) -> dict[str, Any] | None:
    calls = client.get("/usage", params={"limit": 200}).json()["calls"]
    return next((c for c in calls if c["requestId"] == request_id), None)


def test_the_creator_versions_the_character_and_only_the_creator_reads_the_prompt(
    talk: RunningPlatform, persona: dict[str, Any]
) -> None:
    voice = persona["id"]
    creator = talk.client(persona["creatorKey"])
    _, consumer_key = _funded(talk)
    consumer = talk.client(consumer_key)

    first = creator.get(f"/voices/{voice}/character").json()
    assert first["version"] == 0 and first["personaPrompt"] == PROMPT and first["language"] == "en"
    edited = creator.patch(f"/voices/{voice}/character", json={"greeting": "Ahoy there!", "emotion": "高兴"})
    assert edited.status_code == 200, edited.text
    assert edited.json()["version"] == first["version"] + 1 and edited.json()["emotion"] == "高兴"

    seen = consumer.get(f"/voices/{voice}/character").json()
    assert seen["greeting"] == "Ahoy there!" and "personaPrompt" not in seen
    assert consumer.patch(f"/voices/{voice}/character", json={"greeting": "hi"}).status_code == 403
    wrong = creator.patch(f"/voices/{voice}/character", json={"emotion": "sleepy"})
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "invalid_persona"
    both = creator.patch(f"/voices/{voice}/character", json={"style": "温柔"})
    assert both.status_code == 200  # kept beside the emotion; speech uses the emotion (one voice label)
    cleared = creator.patch(f"/voices/{voice}/character", json={"emotion": None})
    assert cleared.status_code == 200 and cleared.json()["emotion"] is None
    assert cleared.json()["style"] == "温柔" and cleared.json()["version"] == first["version"] + 3


def test_a_conversation_keeps_a_bounded_history_and_can_be_deleted(
    talk: RunningPlatform, persona: dict[str, Any]
) -> None:
    _, key = _funded(talk)
    client = talk.client(key)
    voice, conversation = persona["id"], None
    said = ["How is the sea tonight?", "Any storms coming?", "Sing me a song.", "Goodnight, keeper."]
    for turn, message in enumerate(said):
        body: dict[str, Any] = {"message": message}
        if conversation:
            body["conversation"] = conversation
        answered = client.post(f"/voices/{voice}/chat", json=body)
        assert answered.status_code == 200, answered.text
        reply = answered.json()
        conversation = reply["conversation"]
        assert reply["reply"].startswith("Mira here.")  # the system message carries the persona's name
        assert f"“{message}”" in reply["reply"]  # the emulator quotes the last user turn
        assert "retired lighthouse keeper" in reply["reply"]  # … and the persona prompt
        earlier = int(re.search(r"I remember (\d+) earlier", reply["reply"]).group(1))  # type: ignore[union-attr]
        assert earlier == min(2 * turn, 2 * HISTORY_TURNS)  # the window: the last HISTORY_TURNS exchanges
        assert reply["audio"] is None and reply["usage"]["ttsChars"] == 0

    listed = client.get("/conversations").json()["data"]
    assert [c["id"] for c in listed] == [conversation]
    assert listed[0]["persona"] == "Mira" and listed[0]["turns"] == 2 * len(said)
    assert listed[0]["lastTurn"]["role"] == "assistant" and said[-1] in listed[0]["lastTurn"]["content"]
    detail = client.get(f"/conversations/{conversation}").json()
    assert [m["content"] for m in detail["messages"] if m["role"] == "user"] == said

    other = talk.client(_funded(talk)[1])
    assert other.get(f"/conversations/{conversation}").status_code == 404  # another caller's is not there
    assert client.delete(f"/conversations/{conversation}").status_code == 200
    assert client.get(f"/conversations/{conversation}").status_code == 404
    assert client.get("/conversations").json()["data"] == []
    again = client.post(f"/voices/{voice}/chat", json={"message": "Hello?", "conversation": conversation})
    assert again.status_code == 404


def test_a_spoken_turn_is_metered_exactly(talk: RunningPlatform, persona: dict[str, Any]) -> None:
    _, key = _funded(talk)
    client = talk.client(key)
    before = _available(client)
    answered = client.post(
        f"/voices/{persona['id']}/chat", json={"message": "Tell me about the sea.", "audio": True}
    )
    assert answered.status_code == 200, answered.text
    reply = answered.json()
    usage = reply["usage"]
    audio = base64.b64decode(reply["audio"])
    assert sf.info(io.BytesIO(audio)).duration > 0.5  # an MP3 of the spoken reply
    assert usage["ttsChars"] == len(reply["spoken"]) > 0 and usage["chatAmount"] > 0
    row = _usage_row(client, usage["requestId"])
    assert row is not None and row["amount"] == usage["ttsAmount"] and row["chars"] == usage["ttsChars"]
    assert row["creatorShare"] > 0  # the creator earns on the TTS part
    assert before - _available(client) == usage["chatAmount"] + usage["ttsAmount"] == usage["amount"]
    assert client.get("/balance").json()["reserved"] == 0


def test_a_short_balance_gets_402_and_the_provider_is_not_called(
    talk: RunningPlatform, emulator: EmulatorProcess, persona: dict[str, Any]
) -> None:
    _, key = talk.sign_up("consumer")  # no credit at all
    client = talk.client(key)
    calls = _chat_calls(emulator)
    refused = client.post(f"/voices/{persona['id']}/chat", json={"message": "Hello?"})
    assert refused.status_code == 402 and refused.json()["error"]["code"] == "insufficient_balance"
    sdk = OpenAI(base_url=f"{talk.base_url}/v1", api_key=key, max_retries=0)
    with pytest.raises(APIError):
        sdk.chat.completions.create(
            model=persona["id"], messages=[{"role": "user", "content": "Hi"}], stream=True
        )
    assert _chat_calls(emulator) == calls
    assert client.get("/conversations").json()["data"] == []


def test_the_openai_sdk_gets_text_and_audio(talk: RunningPlatform, persona: dict[str, Any]) -> None:
    _, key = _funded(talk)
    client = talk.client(key)
    sdk = OpenAI(base_url=f"{talk.base_url}/v1", api_key=key)
    before = _available(client)
    completion = sdk.chat.completions.create(
        model=persona["id"],
        messages=[{"role": "user", "content": "What do you see from the lamp room?"}],
        modalities=["text", "audio"],
        audio={"voice": persona["id"], "format": "wav"},
    )
    message = completion.choices[0].message
    assert message.content and "What do you see from the lamp room?" in message.content
    assert message.audio is not None and message.audio.transcript and message.audio.id
    wav = base64.b64decode(message.audio.data)
    assert sf.info(io.BytesIO(wav)).format == "WAV" and sf.info(io.BytesIO(wav)).duration > 0.5
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    request_id = completion.id.removeprefix("chatcmpl-")
    row = _usage_row(client, request_id)
    turn = client.get("/conversations").json()["data"][0]["lastTurn"]["usage"]
    assert row is not None and turn["requestId"] == request_id and row["amount"] == turn["ttsAmount"]
    assert before - _available(client) == turn["amount"]


def test_the_openai_sdk_streams_audio_before_the_text_ends(
    talk: RunningPlatform, emulator: EmulatorProcess, persona: dict[str, Any]
) -> None:
    _, key = _funded(talk)
    client = talk.client(key)
    sdk = OpenAI(base_url=f"{talk.base_url}/v1", api_key=key)
    # The emulator answers at once; a real model writes as it goes: pace its chunks like generation.
    emulator.admin("faults", {"chunk_delay_ms": 60, "path_prefix": "/v1/chat/"})
    before = _available(client)
    question = "Is there a storm on the horizon tonight, keeper?"
    stream = sdk.chat.completions.create(
        model=persona["id"],
        messages=[{"role": "user", "content": question}],
        modalities=["text", "audio"],
        audio={"voice": persona["id"], "format": "wav"},
        stream=True,
        stream_options={"include_usage": True},
    )
    order, text, audio, transcript, ids = [], "", b"", "", set()
    for chunk in stream:
        ids.add(chunk.id)
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        if delta.content:
            order.append("text")
            text += delta.content
        if delta.audio is not None and delta.audio.data:
            order.append("audio")
            audio += base64.b64decode(delta.audio.data)
            transcript += delta.audio.transcript or ""
    assert question in text and transcript.strip()
    assert order.index("audio") < len(order) - 1 - order[::-1].index(
        "text"
    )  # first audio before the last text
    samples, rate = sf.read(io.BytesIO(audio))
    assert rate == 24_000 and len(samples) / rate > 0.5  # one continuous WAV, sentence after sentence
    (completion_id,) = ids
    turn = client.get("/conversations").json()["data"][0]["lastTurn"]
    assert turn["content"] == text and turn["usage"]["requestId"] == completion_id.removeprefix("chatcmpl-")
    row = _usage_row(client, turn["usage"]["requestId"])
    assert row is not None and row["amount"] == turn["usage"]["ttsAmount"]
    assert before - _available(client) == turn["usage"]["amount"]


def test_a_provider_failure_mid_stream_ends_with_an_error_and_bills_what_was_delivered(
    talk: RunningPlatform, persona: dict[str, Any]
) -> None:
    _, key = _funded(talk)
    client = talk.client(key)
    sdk = OpenAI(base_url=f"{talk.base_url}/v1", api_key=key, max_retries=0)
    before = _available(client)
    stream = sdk.chat.completions.create(
        model=persona["id"],
        messages=[{"role": "user", "content": "Tell me a long story [[break]] about the sea."}],
        modalities=["text", "audio"],
        audio={"voice": persona["id"], "format": "mp3"},
        stream=True,
    )
    text = ""
    with pytest.raises(APIError) as raised:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
    error = raised.value.body
    assert isinstance(error, dict) and error["code"] == "provider_unavailable" and error["retryable"]
    assert text  # some text came before the failure

    def settled() -> (
        dict[str, Any] | None
    ):  # the turn is billed as its stream ends, just after the error event
        if client.get("/balance").json()["reserved"] != 0:
            return None
        found = client.get("/conversations").json()["data"]
        return found[0]["lastTurn"] if found else None

    turn = wait_for(settled, timeout=30, what="the broken turn billed")
    assert turn["content"] == text  # what was delivered, and only that, is billed
    usage = turn["usage"]
    assert usage["completionTokens"] < 40 and usage["chatAmount"] > 0
    row = _usage_row(client, usage["requestId"])
    assert (row["amount"] if row else 0) == usage["ttsAmount"]
    assert before - _available(client) == usage["amount"]
    assert client.get("/balance").json()["reserved"] == 0


def test_openai_turns_join_one_conversation_when_asked_and_no_one_elses(
    talk: RunningPlatform, persona: dict[str, Any]
) -> None:
    _, key = _funded(talk)
    client = talk.client(key)
    sdk = OpenAI(base_url=f"{talk.base_url}/v1", api_key=key)
    first = sdk.chat.completions.create(
        model=persona["id"], messages=[{"role": "user", "content": "Good evening, keeper."}]
    )
    conversation = first.model_extra["voxpersona"]["conversation"] if first.model_extra else None
    assert conversation
    history = [
        {"role": "user", "content": "Good evening, keeper."},
        {"role": "assistant", "content": first.choices[0].message.content or ""},
        {"role": "user", "content": "Is the light still burning?"},
    ]
    chunks = list(
        sdk.chat.completions.create(
            model=persona["id"], messages=history, stream=True, extra_body={"conversation": conversation}
        )
    )
    done = [c.model_extra["voxpersona"] for c in chunks if c.model_extra and c.model_extra.get("voxpersona")]
    assert done and done[-1]["conversation"] == conversation  # the streamed turn joined it
    stored = client.get(f"/conversations/{conversation}").json()
    assert [m["content"] for m in stored["messages"] if m["role"] == "user"] == [
        "Good evening, keeper.",
        "Is the light still burning?",
    ]
    _, other_key = _funded(talk)
    other = OpenAI(base_url=f"{talk.base_url}/v1", api_key=other_key, max_retries=0)
    with pytest.raises(NotFoundError):  # another caller's conversation looks missing
        other.chat.completions.create(
            model=persona["id"],
            messages=[{"role": "user", "content": "Let me in."}],
            extra_body={"conversation": conversation},
        )
