"""What a client can rely on: OpenAPI documents every answer, the states and codes are enums, GET /v1/limits are
the limits the server really applies, and a quote is exactly what the call is then metered at."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bentos.api.app import create_app
from bentos.core.errors import ErrorCode
from bentos.core.personas import PersonaState
from bentos.devkit.emulator_process import EmulatorProcess
from bentos.devkit.harness import RunningPlatform, platform_overrides, start_platform
from encoders.voices import VoiceSet
from tests.service.test_end_to_end import create_live_persona

TTS_MAX_CHARS = 40  # small, so speaking exactly the limit stays quick
TTS_LONG_MAX_CHARS = 120  # longer texts are spoken in parts, up to this
UPLOAD_LIMIT = 3 * 1024 * 1024


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app(None).openapi()


@pytest.fixture(scope="module")
def limited(emulator: EmulatorProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    overrides = platform_overrides(tmp_path_factory.mktemp("limits"), emulator)
    running = start_platform(
        [
            *overrides,
            f"server.tts_max_chars={TTS_MAX_CHARS}",
            f"server.tts_long_max_chars={TTS_LONG_MAX_CHARS}",
            f"server.max_upload_bytes={UPLOAD_LIMIT}",
        ]
    )
    try:
        yield running
    finally:
        running.stop()


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def test_every_operation_documents_a_schema_for_its_success_and_the_error_envelope(
    spec: dict[str, Any],
) -> None:
    for name, operation in _operations(spec):
        responses = operation["responses"]
        successes = [status for status in responses if status.startswith("2")]
        assert successes, name
        for status in successes:
            content = responses[status].get("content") or {}
            assert content, (name, status)
            assert all(media.get("schema") for media in content.values()), (name, status, content)
        errors = responses["4XX"]["content"]["application/json"]["schema"]
        assert errors == {"$ref": "#/components/schemas/ErrorEnvelope"}, name
    statuses = {name: sorted(op["responses"]) for name, op in _operations(spec)}
    assert "201" in statuses["POST /accounts"] and "202" in statuses["POST /voices"]
    assert "201" in statuses["POST /settlements"] and "201" in statuses["POST /files"]


def test_streamed_speech_is_documented_as_audio(spec: dict[str, Any]) -> None:
    for path in ("/tts", "/v1/audio/speech"):
        content = spec["paths"][path]["post"]["responses"]["200"]["content"]
        assert {"audio/mpeg", "audio/wav", "audio/flac", "audio/ogg", "audio/pcm"} == set(content)


def test_states_visibilities_and_error_codes_are_enums(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    assert schemas["PersonaState"]["enum"] == [s.value for s in PersonaState]
    assert schemas["PersonaView"]["properties"]["status"] == {"$ref": "#/components/schemas/PersonaState"}
    assert schemas["JobView"]["properties"]["state"]["anyOf"][0] == {
        "$ref": "#/components/schemas/PersonaState"
    }
    assert schemas["Visibility"]["enum"] == ["public", "unlisted", "private"]
    assert schemas["ErrorBody"]["properties"]["code"] == {"$ref": "#/components/schemas/ErrorCode"}
    codes = set(schemas["ErrorCode"]["enum"])
    assert codes == {c.value for c in ErrorCode}
    assert {"invalid_text", "provider_rate_limited", "idempotency_key_reused", "audio_too_short"} <= codes


def test_limits_need_no_key_and_match_what_the_schema_and_the_server_enforce(
    limited: RunningPlatform, spec: dict[str, Any]
) -> None:
    r = limited.client().get("/v1/limits")
    assert r.status_code == 200, r.text
    limits = r.json()
    assert set(limits) == {"tts", "upload", "persona", "prices", "pipeline", "chain", "reports", "keys"}
    assert limits["reports"]["reasons"] == ["impersonation", "offensive", "scam", "other"]
    assert limits["keys"]["scopes"] == ["full", "speech", "read"]
    # The request schemas bound what these limits say.
    key_fields = spec["components"]["schemas"]["NewKeyRequest"]["properties"]
    assert key_fields["name"]["maxLength"] == limits["keys"]["nameMaxChars"]
    assert limits["chain"] == {"explorerUrl": None}  # the embedded chain has no explorer to link to
    tts, upload, persona = limits["tts"], limits["upload"], limits["persona"]
    assert tts["maxChars"] == TTS_MAX_CHARS and upload["maxBytes"] == UPLOAD_LIMIT
    assert tts["speed"] == {"min": 0.5, "max": 2.0} and tts["volume"] == {"min": 0.1, "max": 2.0}
    assert tts["instructionModels"] == ["stepaudio-2.5-tts"] and tts["instructionMaxChars"] == 200
    assert (
        set(tts["voiceLabels"]) == {"language", "emotion", "style"}
        and "高兴" in tts["voiceLabels"]["emotion"]
    )
    assert upload["formats"] == ["wav", "mp3"] and upload["minSeconds"] < upload["maxSeconds"]
    prices = limits["prices"]
    assert prices["listPricePer10kChars"] == limited.platform.prices.list_price_per_10k
    assert prices["unit"] == "micro" and prices["microPerUnit"] == 1_000_000 and prices["rounding"] == "up"
    assert tts["models"] == list(prices["listPricePer10kChars"])
    assert limits["pipeline"] == {
        "states": ["uploaded", "validated", "embedded", "registered", "cloned", "previewed", "live"],
        "finalStates": ["live", "failed", "revoked"],
    }
    # The request schema bounds what the persona limits say.
    fields = spec["components"]["schemas"]["CreateVoice"]["properties"]
    assert fields["name"]["maxLength"] == persona["nameMaxChars"]
    assert fields["description"]["maxLength"] == persona["descriptionMaxChars"]
    assert fields["personaPrompt"]["maxLength"] == persona["promptMaxChars"]
    assert fields["text"]["anyOf"][0]["maxLength"] == persona["transcriptMaxChars"]
    assert fields["sampleText"]["anyOf"][0]["maxLength"] == persona["sampleTextMaxChars"]
    assert fields["tags"]["maxItems"] == persona["maxTags"]
    assert fields["tags"]["items"]["maxLength"] == persona["tagMaxChars"]
    assert fields["visibility"]["enum"] == persona["visibilities"]


def test_tts_accepts_exactly_the_long_form_limit_and_refuses_one_more(
    limited: RunningPlatform, voice_set: VoiceSet
) -> None:
    _, creator_key = limited.sign_up("creator")
    voice = create_live_persona(limited, creator_key, voice_set.clips[5].mp3_path.read_bytes())["id"]
    _, key = limited.sign_up("consumer")
    client = limited.client(key)
    tts = client.get("/v1/limits").json()["tts"]
    assert (tts["maxChars"], tts["longMaxChars"]) == (TTS_MAX_CHARS, TTS_LONG_MAX_CHARS)
    text = ("Speak these words. " * 10)[: tts["longMaxChars"]]

    refused = client.post("/tts", json={"voice": voice, "text": text + "x"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_text"
    spoken = client.post("/tts", json={"voice": voice, "text": text, "format": "wav"})
    assert spoken.status_code == 200 and spoken.headers["x-usage-chars"] == str(len(text))
    assert len(spoken.content) > 0


def test_a_quote_is_the_amount_the_call_is_metered_at(limited: RunningPlatform, voice_set: VoiceSet) -> None:
    _, creator_key = limited.sign_up("creator")
    persona = create_live_persona(
        limited, creator_key, voice_set.clips[14].mp3_path.read_bytes(), priceMultiplierBps=13_457
    )
    _, key = limited.sign_up("consumer")
    client = limited.client(key)
    text = "What will this cost?"

    quote = client.get(f"/voices/{persona['id']}/quote", params={"chars": len(text)})
    assert quote.status_code == 200, quote.text
    same = client.get("/quotes", params={"voice": persona["id"], "chars": len(text)})
    assert same.json() == quote.json()
    before = client.get("/balance").json()["available"]
    assert client.post("/tts", json={"voice": persona["id"], "text": text}).status_code == 200
    metered = client.get("/usage").json()["calls"][0]

    prices = limited.platform.prices
    unit = -(-prices.list_price(persona["model"]) * 13_457 // 10_000)
    assert quote.json() == {
        "voiceId": persona["id"],
        "chars": len(text),
        "model": persona["model"],
        "unitPrice": unit,
        "amount": metered["amount"],
        "currency": "CNY",
        "multiplierBps": 13_457,
    }
    assert metered["unitPrice"] == unit
    assert metered["amount"] >= -(-len(text) * unit // 10_000)  # rounded up, never free
    assert client.get("/balance").json()["available"] == before - metered["amount"]
    too_long = client.get(f"/voices/{persona['id']}/quote", params={"chars": TTS_LONG_MAX_CHARS + 1})
    assert too_long.status_code == 422 and too_long.json()["error"]["code"] == "invalid_request"


def test_persona_json_keeps_its_fields_and_the_creator_only_part(
    limited: RunningPlatform, voice_set: VoiceSet
) -> None:
    _, creator_key = limited.sign_up("creator")
    persona = create_live_persona(limited, creator_key, voice_set.clips[11].mp3_path.read_bytes())
    public = {
        "id", "name", "description", "tags", "language", "visibility", "status", "model", "pricePer10kChars",
        "priceMultiplierBps", "character", "calls", "creator", "sampleText", "sampleAudioUrl", "createdAt", "revokedAt",
    }  # fmt: skip
    owner_only = {
        "personaPrompt", "notices", "failure", "embedding", "chain", "stepVoiceId", "stepFileId", "cloneDuplicated",
        "impersonation",
    }  # fmt: skip
    assert set(persona) == public | owner_only
    seen_by_others = limited.client().get(f"/voices/{persona['id']}").json()
    assert set(seen_by_others) == public
    listed = limited.client().get("/voices", params={"limit": 100}).json()["data"]
    assert all(set(p) == public - {"character"} for p in listed)  # the character is on the detail only
