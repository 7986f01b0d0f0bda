"""The Streamlit pages, run with AppTest against the fake platform over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from streamlit.testing.v1 import AppTest

from streamlit_app.money import format_cny
from tests.frontend.fake_platform import FakePlatform, tone_wav

OpenApp = Callable[..., AppTest]


def page_text(app: AppTest) -> str:
    """Everything a user can read on the page, in one string (and no page may have crashed)."""
    assert not app.exception, [e.value for e in app.exception]
    kinds: tuple[str, ...] = ("markdown", "caption", "title", "header", "subheader")
    kinds += ("success", "info", "warning", "error", "code")
    parts = [e.value for kind in kinds for e in getattr(app, kind)]
    parts += [f"{m.label} {m.value}" for m in app.metric]
    return "\n".join(str(p) for p in parts)


def rerun_until(app: AppTest, done: Callable[[AppTest], bool], timeout: float = 20.0) -> AppTest:
    """Rerun the page (as the polling fragment would) until `done` holds, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while not done(app):
        assert time.monotonic() < deadline, f"gave up waiting; the page says:\n{page_text(app)}"
        app.run()
    return app


# Signing up, in and out (sessions, the key shown once, reset, key management) runs against the real platform:
# tests/accounts/test_account_page.py (AppTest) and tests/frontend/test_frontend_signin_journey.py (chromium).


def test_create_page_shows_the_audio_error_code(open_app: OpenApp, fake: FakePlatform) -> None:
    _, key = fake.new_account("Brief Speaker")
    app = open_app("views/create.py", api_key=key)
    app.file_uploader[0].upload("hello.wav", tone_wav(2.0), "audio/wav")
    app.run()
    errors = " ".join(e.value for e in app.error)
    assert "audio_too_short" in errors
    assert "at least 5" in errors.lower()


def test_create_requires_consent_before_calling_the_platform(open_app: OpenApp, fake: FakePlatform) -> None:
    _, key = fake.new_account("Hasty")
    app = open_app("views/create.py", api_key=key)
    app.file_uploader[0].upload("me.wav", tone_wav(6.0), "audio/wav")
    app.run()
    app.text_input[0].input("No Consent")
    app.button[0].click().run()
    assert "Consent is required" in " ".join(e.value for e in app.error)
    assert not [r for r in fake.requests if r.path == "/voices" and r.method == "POST"]


def test_create_follows_the_pipeline_to_live(open_app: OpenApp, fake: FakePlatform) -> None:
    _, key = fake.new_account("Maker")
    app = open_app("views/create.py", api_key=key)
    app.file_uploader[0].upload("me.wav", tone_wav(6.5), "audio/wav")
    app.run()
    assert "Audio accepted: 6.5 s" in page_text(app)
    app.text_input[0].input("Warm Narrator")
    app.checkbox[0].check()
    app.button[0].click().run()
    rerun_until(app, lambda a: any("is live" in s.value for s in a.success))
    assert not app.error
    assert app.get("audio")  # the sample plays


def test_failed_pipeline_shows_step_code_and_message(open_app: OpenApp, fake: FakePlatform) -> None:
    _, key = fake.new_account("Unlucky")
    app = open_app("views/create.py", api_key=key)
    app.file_uploader[0].upload("me.wav", tone_wav(6.0), "audio/wav")
    app.run()
    app.text_input[0].input("Doomed Voice")
    app.checkbox[0].check()
    app.button[0].click().run()
    rerun_until(app, lambda a: bool(a.error))
    failure = app.error[0].value
    assert "provider_auth_failed" in failure and "StepFun rejected the API key" in failure
    assert "Voice cloned" in failure


def test_discover_lists_public_personas(open_app: OpenApp, fake: FakePlatform) -> None:
    creator, key = fake.new_account("Lister")
    fake.add_live_persona(creator["id"], "Harbour Pilot", tags=["sea"], calls=900)
    fake.add_live_persona(creator["id"], "Secret Diary", visibility="private")
    app = open_app(api_key=key)  # Discover is the default page
    text = page_text(app)
    assert "Harbour Pilot" in text
    assert "Secret Diary" not in text
    app.text_input[0].input("harbour").run()
    assert "Harbour Pilot" in page_text(app)
    app.text_input[0].input("no such voice at all").run()
    assert "No personas match" in page_text(app)


def test_generate_plays_audio_and_shows_chars_and_cost(open_app: OpenApp, fake: FakePlatform) -> None:
    creator, key = fake.new_account("Caller")
    persona = fake.add_live_persona(creator["id"], "Bell Ringer", pricePer10kChars=2_000_000)
    app = open_app("views/generate.py", api_key=key, voice=persona["id"])
    app.text_area[0].input("Twelve chars")
    app.button[0].click().run()
    assert not app.error, page_text(app)
    assert app.get("audio")
    metrics = {m.label: m for m in app.metric}
    assert metrics["Characters billed"].value == "12"
    assert metrics["Cost"].value == "<¥0.01"  # to the cent, never "¥0.00" for a call that cost something
    assert metrics["Cost"].proto.help == "Exactly ¥0.0024"  # the exact amount on hover


def test_persona_page_lets_only_the_creator_revoke(open_app: OpenApp, fake: FakePlatform) -> None:
    creator, creator_key = fake.new_account("Owner")
    _, other_key = fake.new_account("Visitor")
    persona = fake.add_live_persona(creator["id"], "Lighthouse")

    visitor = open_app("views/persona.py", api_key=other_key, id=persona["id"])
    assert "Lighthouse" in page_text(visitor)
    assert "registered" in page_text(visitor)
    assert not [b for b in visitor.button if b.label == "Revoke persona"]

    owner = open_app("views/persona.py", api_key=creator_key, id=persona["id"])
    owner.checkbox[0].check().run()
    next(b for b in owner.button if b.label == "Revoke persona").click().run()
    assert "revoked" in page_text(owner)
    assert fake.personas[persona["id"]]["status"] == "revoked"


def test_account_page_settles_creator_earnings(open_app: OpenApp, fake: FakePlatform) -> None:
    creator, creator_key = fake.new_account("Earner")
    _, caller_key = fake.new_account("Listener", role="consumer")
    persona = fake.add_live_persona(creator["id"], "Storyteller", pricePer10kChars=10_000_000)
    from streamlit_app.api_client import PlatformClient

    with PlatformClient(fake.base_url, caller_key) as api:
        api.synthesize(voice=persona["id"], text="x" * 100)

    app = open_app("views/account.py", api_key=creator_key)
    assert "Storyteller" in str(app.dataframe[0].value)
    assert "¥0.07" in page_text(app)  # 70 % of ¥0.10 unsettled
    next(b for b in app.button if b.label == "Settle now").click().run()
    rerun_until(app, lambda a: "confirmed" in page_text(a))
    assert "¥0.00" in page_text(app)  # nothing left unsettled


# -- the platform's contract (GET /v1/limits, GET /voices/{id}/quote) drives what the pages offer ---------


def widget(widgets: Any, label: str) -> Any:
    """The one widget with this label (AppTest lists widgets by kind, not by label)."""
    found = [w for w in widgets if w.label == label]
    assert len(found) == 1, [w.label for w in widgets]
    return found[0]


def quote_requests(fake: FakePlatform) -> list[str]:
    return [r.path for r in fake.requests if r.method == "GET" and r.path in ("/quotes", "/quote")]


def test_generate_text_box_counts_to_the_platforms_max_chars(open_app: OpenApp, fake: FakePlatform) -> None:
    assert fake.limits is not None
    tts = fake.limits["tts"]
    tts["maxChars"] = 777  # not the platform's real 1,000: the page must have read it
    tts["models"] = ["step-tts-2", "stepaudio-2.5-tts"]
    tts["formats"] = ["mp3", "wav"]
    tts["speed"] = {"min": 0.75, "max": 1.5}
    creator, key = fake.new_account("Counter")
    persona = fake.add_live_persona(creator["id"], "Metronome", model="step-tts-2")
    app = open_app("views/generate.py", api_key=key, voice=persona["id"])
    page_text(app)
    assert app.text_area[0].proto.max_chars == 777
    assert widget(app.selectbox, "Model").options == ["step-tts-2", "stepaudio-2.5-tts"]
    assert widget(app.selectbox, "Format").options == ["mp3", "wav"]
    speed = widget(app.slider, "Speed")
    assert (speed.min, speed.max, speed.value) == (0.75, 1.5, 1.0)


def test_generate_price_is_the_platforms_quote(open_app: OpenApp, fake: FakePlatform) -> None:
    creator, key = fake.new_account("Estimator")
    # 3 chars at 1,000 µ¥ per 10k = 0.3 µ¥: the platform rounds up to 1 µ¥ (half-up would have said 0).
    persona = fake.add_live_persona(creator["id"], "Penny", pricePer10kChars=1_000)
    app = open_app("views/generate.py", api_key=key, voice=persona["id"])
    assert not quote_requests(fake)  # nothing typed, nothing asked

    app.text_area[0].input("abc").run()
    from streamlit_app.api_client import PlatformClient

    with PlatformClient(fake.base_url, key) as api:
        quote = api.quote(persona["id"], 3, "step-tts-mini")
    assert quote["amount"] == 1
    assert f"Price: **{format_cny(quote['amount'])}** for 3 characters with step-tts-mini" in page_text(app)
    assert len(quote_requests(fake)) == 2  # the page's and ours

    app.run()
    widget(app.slider, "Speed").set_value(1.5).run()
    assert len(quote_requests(fake)) == 2, "asked again though the text did not change"
    app.text_area[0].input("abcd" * 250).run()  # 1,000 chars → 100 µ¥
    assert len(quote_requests(fake)) == 3
    assert "Price: **<¥0.01** for 1,000 characters" in page_text(app)
    price_line = next(m for m in app.markdown if m.value.startswith("Price:"))
    assert price_line.proto.help.startswith("Exactly ¥0.0001")
    widget(app.selectbox, "Model").select("step-tts-2").run()  # another model: another price, asked again
    assert len(quote_requests(fake)) == 4
    assert "Price: **¥0.56** for 1,000 characters with step-tts-2" in page_text(app)


def test_generate_shows_the_balance_dropping_by_exactly_the_price(
    open_app: OpenApp, fake: FakePlatform
) -> None:
    creator, key = fake.new_account("Payer", role="consumer")
    persona = fake.add_live_persona(creator["id"], "Toll Booth", pricePer10kChars=2_000_000)
    app = open_app("views/generate.py", api_key=key, voice=persona["id"])
    assert {m.label: m.value for m in app.metric}["Balance"] == "¥2.00"
    app.text_area[0].input("x" * 50).run()
    assert "Price: **¥0.01** for 50 characters" in page_text(app)
    next(b for b in app.button if b.label == "Generate").click().run()
    assert not app.error, page_text(app)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Cost"] == "¥0.01" and metrics["Balance"] == "¥1.99"


def test_generate_explains_a_short_balance_in_plain_words(open_app: OpenApp, fake: FakePlatform) -> None:
    creator, key = fake.new_account("Broke", role="consumer", balance=1_000)
    persona = fake.add_live_persona(creator["id"], "Pricey", pricePer10kChars=10_000_000)
    app = open_app("views/generate.py", api_key=key, voice=persona["id"])
    app.text_area[0].input("y" * 100).run()  # ¥0.10, with ¥0.001 available
    warning = " ".join(w.value for w in app.warning)
    assert "does not cover this call" in warning and "(<¥0.01)" in warning
    next(b for b in app.button if b.label == "Generate").click().run()
    error = " ".join(e.value for e in app.error)
    assert "Not enough balance: this call costs ¥0.10 and you have <¥0.01 available" in error
    assert "nothing was charged" in error and "Top up" in error
    assert not app.get("audio")
    assert fake.balances[creator["id"]] == 1_000


def test_generate_offers_instruction_only_for_instruction_models(
    open_app: OpenApp, fake: FakePlatform
) -> None:
    assert fake.limits is not None
    fake.limits["tts"]["instructionMaxChars"] = 120
    fake.limits["tts"]["modelLabels"]["step-tts-2"]["emotion"] = ["高兴", "惊讶"]
    creator, key = fake.new_account("Director")
    persona = fake.add_live_persona(creator["id"], "Stage Voice", model="stepaudio-2.5-tts")
    app = open_app("views/generate.py", api_key=key, voice=persona["id"])
    instruction = widget(app.text_input, "Instruction (optional)")
    assert instruction.proto.max_chars == 120
    assert not [s for s in app.selectbox if s.label == "Voice label"]

    widget(app.selectbox, "Model").select("step-tts-2").run()
    assert not [t for t in app.text_input if t.label.startswith("Instruction")]
    assert widget(app.selectbox, "Voice label").options == ["No label", "Language", "Emotion", "Style"]
    widget(app.selectbox, "Voice label").select("emotion").run()
    assert widget(app.selectbox, "Label value").options == ["高兴 · happy", "惊讶"]  # glossed where known
    widget(app.selectbox, "Label value").select("惊讶").run()
    app.text_area[0].input("Surprise!").run()
    next(b for b in app.button if b.label == "Generate").click().run()
    assert not app.error, page_text(app)
    assert app.get("audio")


def test_create_page_states_the_platforms_upload_limit(open_app: OpenApp, fake: FakePlatform) -> None:
    assert fake.limits is not None
    fake.limits["upload"].update(maxBytes=3 * 1024 * 1024, minSeconds=4.0, maxSeconds=8.5)
    _, key = fake.new_account("Uploader")
    app = open_app("views/create.py", api_key=key)
    text = page_text(app)
    assert "up to **3 MiB** per file and **4–8.5 s** of speech" in text
    assert "200" not in text
    uploader = app.file_uploader[0]
    assert uploader.proto.max_upload_size_mb == 3  # Streamlit's own limit text says 3MB, not 200MB
    assert list(uploader.proto.type) == [".wav", ".mp3"]
    assert uploader.label == "WAV or MP3 — 4–8.5 s of your speech"


def test_create_page_refuses_an_oversized_file_before_sending_it(
    open_app: OpenApp, fake: FakePlatform
) -> None:
    assert fake.limits is not None
    fake.limits["upload"]["maxBytes"] = 100_000
    _, key = fake.new_account("Big File")
    app = open_app("views/create.py", api_key=key)
    app.file_uploader[0].upload("long.wav", tone_wav(6.0), "audio/wav")  # 192 KB
    app.run()
    errors = " ".join(e.value for e in app.error)
    assert "file_too_large" in errors and "at most 98 KiB" in errors
    assert not [r for r in fake.requests if r.path == "/files"]


def test_create_form_lengths_and_choices_come_from_the_platform(
    open_app: OpenApp, fake: FakePlatform
) -> None:
    assert fake.limits is not None
    persona_limits = fake.limits["persona"]
    persona_limits.update(nameMaxChars=40, descriptionMaxChars=1234, promptMaxChars=3210)
    persona_limits.update(transcriptMaxChars=999, sampleTextMaxChars=44, maxTags=2)
    persona_limits.update(languages=["en", "zh", "ja"], visibilities=["public", "private"])
    persona_limits.update(models=["step-tts-2"])
    _, key = fake.new_account("Form Filler")
    app = open_app("views/create.py", api_key=key)
    page_text(app)
    assert widget(app.text_input, "Name *").proto.max_chars == 40
    assert widget(app.text_area, "Description").proto.max_chars == 1234
    assert widget(app.text_area, "Persona prompt").proto.max_chars == 3210
    transcript = widget(app.text_area, "Transcript of the recording (optional — improves cloning)")
    assert transcript.proto.max_chars == 999
    assert widget(app.text_input, "Preview sentence (≤ 44 characters)").proto.max_chars == 44
    assert widget(app.selectbox, "Language").options == ["English", "Chinese", "ja"]
    visibility = widget(app.selectbox, "Visibility").options
    assert [v.split(" ")[0] for v in visibility] == ["Public", "Private"]
    assert widget(app.selectbox, "Voice model").options == ["step-tts-2"]

    app.file_uploader[0].upload("me.wav", tone_wav(6.0), "audio/wav")
    app.run()
    app.text_input[0].input("Tagged")
    widget(app.text_input, "Tags").input("one, two, three")
    app.checkbox[0].check()
    app.button[0].click().run()
    assert "at most 2 tags" in " ".join(e.value for e in app.error)
    assert not [r for r in fake.requests if r.path == "/voices" and r.method == "POST"]


def test_progress_steps_come_from_the_platform(open_app: OpenApp, fake: FakePlatform) -> None:
    assert fake.limits is not None
    fake.limits["pipeline"]["states"].insert(2, "moderated")  # a step this UI has never heard of
    _, key = fake.new_account("Patient")
    app = open_app("views/create.py", api_key=key)
    app.file_uploader[0].upload("me.wav", tone_wav(6.0), "audio/wav")
    app.run()
    app.text_input[0].input("Moderated Voice")
    app.checkbox[0].check()
    app.button[0].click().run()
    steps = next(c.value for c in app.caption if "Audio checked" in c.value)
    assert "Audio checked · " in steps and " Moderated" in steps
    rerun_until(app, lambda a: any("is live" in s.value for s in a.success))


def test_pages_explain_a_platform_without_limits(open_app: OpenApp, fake: FakePlatform) -> None:
    fake.limits = None  # a platform older than GET /v1/limits
    creator, key = fake.new_account("Early Adopter")
    persona = fake.add_live_persona(creator["id"], "Old Server")
    for page, query in [("views/generate.py", {"voice": persona["id"]}), ("views/create.py", {})]:
        app = open_app(page, api_key=key, **query)
        assert not app.exception, [e.value for e in app.exception]
        errors = " ".join(e.value for e in app.error)
        assert "does not publish its limits" in errors and "/v1/limits" in errors, errors
        assert not app.text_area and not app.file_uploader  # nothing offered without the limits


# -- money: the price multiplier and clone fee on Create, the Billing page -------------------------------------


def test_create_takes_a_multiplier_within_the_platforms_bounds_and_states_the_clone_fee(
    open_app: OpenApp, fake: FakePlatform
) -> None:
    assert fake.limits is not None
    fake.limits["prices"].update(multiplierBpsMin=8000, multiplierBpsMax=20000, cloneFee=300_000)
    creator, key = fake.new_account("Pricer")
    app = open_app("views/create.py", api_key=key)
    multiplier = widget(app.select_slider, "Price multiplier")
    assert multiplier.options[0] == "0.8×" and multiplier.options[-1] == "2×"
    assert multiplier.value == 10_000
    assert "clone fee of **¥0.30**" in page_text(app)
    assert not [w for w in app.number_input if "Price" in w.label]  # no free price any more

    app.file_uploader[0].upload("me.wav", tone_wav(6.0), "audio/wav")
    app.run()
    app.text_input[0].input("Premium Voice")
    widget(app.select_slider, "Price multiplier").set_value(15_000)
    app.checkbox[0].check()
    app.button[0].click().run()
    assert not app.error, page_text(app)
    created = next(p for p in fake.personas.values() if p["name"] == "Premium Voice")
    assert created["priceMultiplierBps"] == 15_000
    assert fake.balances[creator["id"]] == 2_000_000 - 300_000


def test_create_explains_a_clone_fee_the_balance_cant_hold(open_app: OpenApp, fake: FakePlatform) -> None:
    _, key = fake.new_account("Empty Pockets", balance=0)
    app = open_app("views/create.py", api_key=key)
    app.file_uploader[0].upload("me.wav", tone_wav(6.0), "audio/wav")
    app.run()
    app.text_input[0].input("Unpaid Voice")
    app.checkbox[0].check()
    app.button[0].click().run()
    error = " ".join(e.value for e in app.error)
    assert "Not enough balance to create a persona: the clone fee is ¥0.50" in error
    assert "you have ¥0.00 available" in error and "Nothing was created" in error
    assert not [p for p in fake.personas.values() if p["name"] == "Unpaid Voice"]


def test_billing_page_shows_balance_spend_statement_and_settlements(
    open_app: OpenApp, fake: FakePlatform
) -> None:
    creator, creator_key = fake.new_account("Biller")
    _, caller_key = fake.new_account("Spender", role="consumer")
    persona = fake.add_live_persona(creator["id"], "Cash Register", pricePer10kChars=10_000_000)
    from streamlit_app.api_client import PlatformClient

    with PlatformClient(fake.base_url, caller_key) as api:
        for _ in range(2):
            api.synthesize(voice=persona["id"], text="z" * 100)  # ¥0.10 each
    consumer = open_app("views/billing.py", api_key=caller_key)
    metrics = {m.label: m.value for m in consumer.metric}
    assert metrics["Available"] == "¥1.80" and metrics["Reserved"] == "¥0.00"
    assert metrics["Spent"] == "¥0.20" and metrics["Calls"] == "2"
    assert "Unpaid earnings" not in metrics and "Earnings" not in page_text(consumer)
    invoice = next(b for b in consumer.get("download_button"))
    assert "Download invoice (CSV)" in invoice.proto.label

    with PlatformClient(fake.base_url, creator_key) as api:
        settled = api.settle()
    owner = open_app("views/billing.py", api_key=creator_key)
    metrics = {m.label: m.value for m in owner.metric}
    assert metrics["Your share"] == "¥0.14" and metrics["Callers paid"] == "¥0.20"
    text = page_text(owner)
    assert f"`{settled['settlementId']}`" in text
    assert "**¥0.14** to `0x" in text and "callers paid ¥0.20 in all" in text  # the creator's part first
