"""Browser-test plumbing: the real Streamlit app as a subprocess, Debian's chromium, and the user journey."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, expect, sync_playwright

from bentos.devkit.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def streamlit_app(api_url: str, log: Path, timeout: float = 60.0) -> Iterator[str]:
    """`streamlit run streamlit_app/app.py` on a free port, pointed at `api_url`; yields the app's URL."""
    port = free_port()
    env = {**os.environ, "VOXPERSONA_API_URL": api_url}
    env.pop("VOXPERSONA_API_KEY", None)
    command = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app" / "app.py"),
        "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if httpx.get(f"{url}/_stcore/health", timeout=1).text == "ok":
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def go_to(page: Page, title: str) -> None:
    """Navigate inside the app (a reload would start a new session and drop the key)."""
    page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
    expect(page.get_by_role("heading", level=1).first).to_be_visible()


PASSWORD = "browser test password"


def sign_up(page: Page, app_url: str, name: str, email: str, *, consumer: bool = False) -> None:
    """Sign up on the Account page (with PASSWORD); ends signed in, the API key shown once."""
    page.goto(f"{app_url}/account")
    page.get_by_text("Create an account", exact=True).click()
    expect(page.get_by_role("button", name="Sign up")).to_be_visible(
        timeout=30_000
    )  # the form, not sign-in's
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    if consumer:
        page.get_by_text("use voices (consumer)").click()
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_text("shown only this once")).to_be_visible(timeout=30_000)


def sign_in_with_key(page: Page, app_url: str, key: str) -> None:
    """Sign in on the Account page with an API key (the app opens a session with it)."""
    page.goto(f"{app_url}/account")
    page.get_by_role("textbox", name="API key").fill(key)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible(timeout=30_000)


def full_journey(
    page: Page, app_url: str, voice_file: Path, screenshots: Path, live_timeout_s: float
) -> None:
    """Sign up → upload a voice → create a persona → wait until live → generate speech → see usage."""
    ms = 1000
    sign_up(page, app_url, "Browser Creator", "browser.creator@example.com")
    page.screenshot(path=screenshots / "1-signed-up.png", full_page=True)

    go_to(page, "Create")
    page.locator("input[type=file]").set_input_files(voice_file)
    expect(page.get_by_text("Audio accepted")).to_be_visible(timeout=60 * ms)
    page.get_by_label("Name *").fill("Browser Voice")
    page.get_by_text("I attest to the statement above").click()
    page.get_by_role("button", name="Create persona").click()
    expect(page.get_by_text("is live.")).to_be_visible(timeout=live_timeout_s * ms)
    page.screenshot(path=screenshots / "2-live.png", full_page=True)

    page.get_by_role("button", name="Generate speech").click()
    page.get_by_label("Text").fill("Hello from the browser test.")
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.get_by_text("Characters billed")).to_be_visible(timeout=60 * ms)
    expect(page.locator("audio")).to_have_count(1)
    page.screenshot(path=screenshots / "3-speech.png", full_page=True)

    go_to(page, "Account & billing")
    expect(page.get_by_text("Earnings", exact=True)).to_be_visible(timeout=30 * ms)
    expect(page.get_by_test_id("stMetric").filter(has_text="Calls")).to_contain_text("1")
    for table in page.get_by_test_id("stDataFrame").all():  # the grids paint on a canvas, a moment later
        expect(table.locator("canvas").first).to_be_visible(timeout=10 * ms)
    page.screenshot(path=screenshots / "4-usage.png", full_page=True)
