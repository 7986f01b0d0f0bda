"""The Streamlit pages, run with AppTest against the fake platform over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable

from streamlit.testing.v1 import AppTest

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


def test_sign_up_shows_the_api_key_exactly_once(open_app: OpenApp) -> None:
    app = open_app("views/account.py")
    form = app.tabs[0]
    form.text_input[0].input("Grace")
    form.text_input[1].input("grace@example.com")
    form.button[0].click().run()

    assert not app.exception
    key_blocks = [c.value for c in app.code if c.value.startswith("vpk_")]
    assert len(key_blocks) == 1, page_text(app)
    key = key_blocks[0]
    assert "shown only this once" in page_text(app)
    assert "Grace" in page_text(app)

    app.run()  # any further interaction
    assert key not in page_text(app)
    assert "Grace" in page_text(app)  # still signed in with it
    assert app.session_state["vp_api_key"] == key


def test_pasted_key_signs_in_without_showing_it(open_app: OpenApp, fake: FakePlatform) -> None:
    _, key = fake.new_account("Linus", role="consumer")
    app = open_app("views/account.py")
    app.tabs[1].text_input[0].input(key)
    app.tabs[1].button[0].click().run()
    assert "Linus" in page_text(app)
    assert key not in page_text(app)


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
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Characters billed"] == "12"
    assert metrics["Cost"] == "¥0.0024"


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
