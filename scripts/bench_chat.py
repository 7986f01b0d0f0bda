"""Chat turn benchmark: time to the first text delta and to the first audio byte of a streamed, spoken reply through
the platform (`POST /v1/chat/completions`, `stream: true`, `modalities: ["text", "audio"]`, WAV) against calling
the emulator's chat and TTS directly the way a client would (stream the chat; speak its first complete sentence
as soon as it is complete).

    .venv/bin/python -m scripts.bench_chat [--turns 20] [--threads 1]

In-process platform (uvicorn in a thread) against a loopback emulator; the same persona, system message, user turn
and speech request both ways (the platform's own `system_message` and `speech_request`), one warm-up turn each
first. Prints a table and writes bench_results/chat.json. Targets: first text ≤ direct + 20 ms; first audio ≤
direct first-sentence TTS + 50 ms (p50).
"""

from __future__ import annotations

import argparse
import base64
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from bentos.core.chat import PCM_RATE, current_character, split_complete, system_message
from bentos.core.speech import SpeechOrder, speech_request
from bentos.devkit.harness import EMULATOR_KEY, RunningPlatform, platform_overrides, start_platform
from bentos.stepfun.chat_models import ChatMessage
from bentos.stepfun.client import StepFunClient
from bentos.store.models import Persona
from scripts.bench_common import (
    bench_clips,
    bench_emulator,
    live_persona,
    pct,
    pin_threads,
    print_table,
    sign_up,
    write_results,
)

MESSAGE = "Tell me a short story about the old mill by the river"
TEXT_TARGET_MS = 20.0
AUDIO_TARGET_MS = 50.0


def platform_turn(client: httpx.Client, voice: str, message: str) -> tuple[float, float, float]:
    """One streamed, spoken turn through the platform → seconds to the first text delta, to the first audio
    byte and to `[DONE]`."""
    body = {
        "model": voice,
        "messages": [{"role": "user", "content": message}],
        "stream": True,
        "modalities": ["text", "audio"],
        "audio": {"voice": voice, "format": "wav"},
    }
    start = time.perf_counter()
    first_text = first_audio = 0.0
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            response.read()
            raise RuntimeError(f"POST /v1/chat/completions: {response.status_code} {response.text[:300]}")
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if "error" in event:
                raise RuntimeError(f"the stream broke off: {event['error']}")
            for choice in event.get("choices") or []:
                delta = choice.get("delta") or {}
                if delta.get("content") and not first_text:
                    first_text = time.perf_counter() - start
                audio = (delta.get("audio") or {}).get("data")
                if audio and base64.b64decode(audio) and not first_audio:
                    first_audio = time.perf_counter() - start
    return first_text, first_audio, time.perf_counter() - start


def direct_turn(
    client: StepFunClient, system: str, persona: Persona, message: str
) -> tuple[float, float, float]:
    """The same turn straight to the emulator → seconds to the first text delta, to the first audio byte (the
    first sentence spoken as soon as it is complete) and of that TTS call alone (request → first byte)."""
    messages = [ChatMessage(role="system", content=system), ChatMessage(role="user", content=message)]
    start = time.perf_counter()
    first_text, text, sentence = 0.0, "", ""
    for delta in client.stream_chat(messages):
        if delta.content and not first_text:
            first_text = time.perf_counter() - start
        text += delta.content or ""
        complete = split_complete(text)
        if complete.sentences:
            sentence = complete.sentences[0]
            break  # a client speaks the first sentence now (the rest of the reply is not needed for this figure)
    order = SpeechOrder(voice=persona.id, text=sentence or text, format="pcm", sample_rate=PCM_RATE)
    tts_start = time.perf_counter()
    first_audio = 0.0
    for chunk in client.stream_speech(speech_request(persona, order)):
        if chunk and not first_audio:
            first_audio = time.perf_counter()
    return first_text, first_audio - start, first_audio - tts_start


def persona_and_system(running: RunningPlatform, voice: str) -> tuple[Persona, str]:
    with running.platform.sessions() as session:
        persona = session.scalars(select(Persona).where(Persona.id == voice)).one()
        system = system_message(persona, current_character(session, persona))
        session.expunge(persona)
    return persona, system


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=20, help="timed turns each way")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    pin_threads(args.threads)
    warm_clip, voice_clip = bench_clips(2)[:2]
    with (
        tempfile.TemporaryDirectory() as tmp,
        bench_emulator(Path(tmp) / "emulator", EMULATOR_KEY, warm_clip) as emu,
    ):
        running = start_platform([*platform_overrides(Path(tmp) / "inproc", emu), "encoder=seeded"])
        try:
            creator, consumer = sign_up(running.base_url, "creator"), sign_up(running.base_url, "consumer")
            voice = live_persona(running.base_url, creator, voice_clip, "Chat voice")
            persona, system = persona_and_system(running, voice)
            headers = {"Authorization": f"Bearer {consumer}"}
            with (
                httpx.Client(base_url=running.base_url, headers=headers, timeout=120) as client,
                StepFunClient(running.platform.provider_settings) as direct,
            ):
                platform_turn(
                    client, voice, MESSAGE
                )  # warm: the voice's first synthesis, the routes' imports
                direct_turn(direct, system, persona, MESSAGE)
                via = [platform_turn(client, voice, f"{MESSAGE} ({i})") for i in range(args.turns)]
                straight = [
                    direct_turn(direct, system, persona, f"{MESSAGE} ({i})") for i in range(args.turns)
                ]
        finally:
            running.stop()

    def row(path: str, what: str, samples: list[float], target: str = "") -> dict[str, Any]:
        return {"path": path, "measure": what, "n": len(samples), "p50_ms": pct(samples, 50),
                "p95_ms": pct(samples, 95), "target": target}  # fmt: skip

    direct_text, direct_audio = [t[0] for t in straight], [t[1] for t in straight]
    rows = [
        row("direct", "first text delta", direct_text),
        row("direct", "first audio byte (chat → 1st sentence → TTS)", direct_audio),
        row("direct", "first-sentence TTS alone (request → 1st byte)", [t[2] for t in straight]),
        row("platform", "first text delta", [t[0] for t in via], f"≤ direct + {TEXT_TARGET_MS:g} ms"),
        row("platform", "first audio byte", [t[1] for t in via], f"≤ direct + {AUDIO_TARGET_MS:g} ms"),
        row("platform", "whole turn ([DONE], billed)", [t[2] for t in via]),
    ]
    text_gap = rows[3]["p50_ms"] - rows[0]["p50_ms"]
    audio_gap = rows[4]["p50_ms"] - rows[1]["p50_ms"]
    print_table(f"chat turn, {args.turns} turns each way (in-process platform, emulator, WAV)", rows)
    print(
        f"\nplatform overhead p50: first text +{text_gap:.1f} ms (target ≤ {TEXT_TARGET_MS:g}: "
        f"{'met' if text_gap <= TEXT_TARGET_MS else 'MISSED'}), first audio +{audio_gap:.1f} ms "
        f"(target ≤ {AUDIO_TARGET_MS:g}: {'met' if audio_gap <= AUDIO_TARGET_MS else 'MISSED'})"
    )
    write_results(
        "chat",
        {
            "turns": args.turns,
            "format": "wav",
            "rows": rows,
            "overhead_p50_ms": {"first_text": round(text_gap, 2), "first_audio": round(audio_gap, 2)},
            "targets_ms": {"first_text": TEXT_TARGET_MS, "first_audio": AUDIO_TARGET_MS},
            "met": {"first_text": text_gap <= TEXT_TARGET_MS, "first_audio": audio_gap <= AUDIO_TARGET_MS},
        },
    )


if __name__ == "__main__":
    main()
