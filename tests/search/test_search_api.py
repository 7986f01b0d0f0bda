"""GET /voices finds by tag, prompt word and creator name over HTTP, and GET /v1/limits says which labels each
model takes — on SQLite and on PostgreSQL + Redis (`platform_server`)."""

from __future__ import annotations

import pytest

from bentos.devkit.harness import RunningPlatform
from bentos.stepfun.models import SpeechRequest
from encoders.voices import VoiceSet
from tests.service.test_end_to_end import create_live_persona


def test_calm_is_found_by_tag_prompt_word_and_creator(
    platform_server: RunningPlatform, voice_set: VoiceSet
) -> None:
    _, key = platform_server.sign_up("creator")
    creator = platform_server.client(key).get("/accounts/me").json()["name"]
    audio = voice_set.clips[0].mp3_path.read_bytes()
    persona = create_live_persona(
        platform_server,
        key,
        audio,
        name="Quiet Harbour",
        personaPrompt="A calm storyteller.",
        tags=["bedtime"],
    )
    anonymous = platform_server.client()
    for params in ({"q": "calm"}, {"q": "BEDTIME"}, {"tag": "bedtime"}, {"q": creator}):
        found = anonymous.get("/voices", params=params).json()
        assert persona["id"] in [p["id"] for p in found["data"]], params
    assert anonymous.get("/voices", params={"q": "calm", "tag": "opera"}).json() == {"data": [], "total": 0}


def test_limits_list_each_models_labels_and_no_explorer_for_a_dev_chain(
    platform_server: RunningPlatform,
) -> None:
    limits = platform_server.client().get("/v1/limits").json()
    tts = limits["tts"]
    assert limits["chain"] == {"explorerUrl": None}
    assert tts["modelLabels"]["stepaudio-2.5-tts"] == {}  # it takes an instruction instead
    assert "温柔" in tts["modelLabels"]["step-tts-2"]["style"]
    assert "温柔" not in tts["modelLabels"]["step-tts-mini"]["style"]
    assert tts["labelGlosses"]["粤语"] == "Cantonese"
    for model, kinds in tts["modelLabels"].items():  # every label offered is one the provider accepts
        for kind, values in kinds.items():
            for value in values:
                SpeechRequest(model=model, input="hi", voice="v", voice_label={kind: value})
                assert value in tts["labelGlosses"]


@pytest.mark.parametrize("style", ["温柔", "骄傲"])
def test_a_tts2_style_is_refused_by_a_model_that_does_not_list_it(style: str) -> None:
    with pytest.raises(ValueError, match="only supported on step-tts-2"):
        SpeechRequest(model="step-tts-mini", input="hi", voice="v", voice_label={"style": style})
