"""Chat through the resilient client against the emulator's stand-in: deterministic answers in the persona's
language that use the system prompt and the last user turn, streamed deltas with usage, max_tokens, and the
boundary's behaviour under the emulator's faults (retries, the breaker's counting, a stream breaking off)."""

from __future__ import annotations

import asyncio

import pytest

from bentos.devkit.emulator_process import EmulatorProcess
from bentos.stepfun import AsyncStepFunClient, InputRejected, ProviderServerError, RetryEvent, StepFunClient
from bentos.stepfun.chat_models import ChatMessage, count_tokens, prompt_tokens
from tests.stepfun.stepfun_helpers import fast_settings

SYSTEM_EN = (
    "You are Mira. Stay in character.\nLanguage: en\nPersona: A retired lighthouse keeper who loves storms."
)
SYSTEM_ZH = "你是小雨。请始终保持角色。\nLanguage: zh\n人设：一个喜欢下雨天的诗人"


def _messages(system: str, *turns: str) -> list[ChatMessage]:
    said = [ChatMessage(role="system", content=system)]
    for index, text in enumerate(turns):
        said.append(ChatMessage(role="user" if index % 2 == 0 else "assistant", content=text))
    return said


def chat_requests(emulator: EmulatorProcess) -> int:
    return int(emulator.admin("stats")["requests"].get("POST /v1/chat/completions", 0))


def test_the_stand_in_answers_in_english_using_the_persona_and_the_last_turn(client: StepFunClient) -> None:
    messages = _messages(SYSTEM_EN, "Hello there.", "Hello!", "How is the sea tonight?")
    reply = client.chat(messages)
    assert reply.content.startswith("Mira here.")
    assert "“How is the sea tonight?”" in reply.content and "“Hello there.”" not in reply.content
    assert "I remember 2 earlier messages" in reply.content and "retired lighthouse keeper" in reply.content
    assert reply.usage is not None and reply.usage.prompt_tokens == prompt_tokens(messages)
    assert reply.usage.completion_tokens == count_tokens(reply.content)
    assert client.chat(messages).content == reply.content  # deterministic


def test_the_stand_in_answers_in_chinese_when_the_persona_speaks_it(client: StepFunClient) -> None:
    reply = client.chat(_messages(SYSTEM_ZH, "今天天气怎么样？"))
    assert reply.content.startswith("我是小雨。") and "今天天气怎么样？" in reply.content
    assert "喜欢下雨天的诗人" in reply.content


def test_a_streamed_reply_joins_to_the_whole_one_and_ends_with_usage(client: StepFunClient) -> None:
    messages = _messages(SYSTEM_EN, "Tell me about storms.")
    deltas = list(client.stream_chat(messages))
    text = "".join(d.content for d in deltas)
    assert text == client.chat(messages).content and len([d for d in deltas if d.content]) > 5
    assert deltas[-1].finish_reason == "stop" and deltas[-1].usage is not None
    assert deltas[-1].usage.completion_tokens == count_tokens(text)


def test_max_tokens_cuts_the_reply_with_finish_reason_length(client: StepFunClient) -> None:
    reply = client.chat(_messages(SYSTEM_EN, "Tell me about storms."), max_tokens=8)
    assert reply.finish_reason == "length" and reply.usage is not None
    assert 0 < reply.usage.completion_tokens <= 8


def test_the_async_client_streams_the_same_reply(emulator: EmulatorProcess) -> None:
    messages = _messages(SYSTEM_EN, "Any ships tonight?")

    async def run() -> tuple[str, str]:
        async with AsyncStepFunClient(fast_settings(emulator.base_url)) as c:
            streamed = "".join([d.content async for d in c.stream_chat(messages)])
            return streamed, (await c.chat(messages)).content

    streamed, whole = asyncio.run(run())
    assert streamed == whole and "“Any ships tonight?”" in whole


def test_a_bad_model_is_the_callers_error_and_not_retried(
    client: StepFunClient, emulator: EmulatorProcess
) -> None:
    before = chat_requests(emulator)
    with pytest.raises(InputRejected):
        client.chat(_messages(SYSTEM_EN, "Hi"), model="gpt-4o")
    assert chat_requests(emulator) == before + 1


def test_injected_503s_on_chat_are_retried(emulator: EmulatorProcess) -> None:
    emulator.admin("reset", {})
    emulator.admin(
        "faults", {"fail_next": 2, "status": 503, "type": "server_error", "path_prefix": "/v1/chat/"}
    )
    events: list[RetryEvent] = []
    with StepFunClient(fast_settings(emulator.base_url), on_retry=events.append, seed=3) as c:
        deltas = list(c.stream_chat(_messages(SYSTEM_EN, "Still there?")))
    assert [e.operation for e in events] == ["stream_chat", "stream_chat"]
    assert "“Still there?”" in "".join(d.content for d in deltas)
    emulator.admin("reset", {})


def test_a_stream_breaking_off_raises_after_what_was_delivered(client: StepFunClient) -> None:
    got: list[str] = []
    with pytest.raises(ProviderServerError) as raised:
        for delta in client.stream_chat(_messages(SYSTEM_EN, "A long tale [[break]] please.")):
            got.append(delta.content)
    assert "".join(got).startswith("Mira here.") and raised.value.retryable
    assert not raised.value.message.count("emulator-local-key")  # never the key


def test_blocked_input_answers_451(client: StepFunClient) -> None:
    from bentos.stepfun import ContentBlocked

    with pytest.raises(ContentBlocked):
        client.chat(_messages(SYSTEM_EN, "say [[blocked]]"))
