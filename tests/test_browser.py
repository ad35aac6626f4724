"""A real browser: Debian's Chromium, headless, driven by Playwright (no browser download).
It loads the app, uploads a photo of a handwritten 7 and reads the answer off the page."""
import shutil

import pytest

from tests.conftest import drawn_digit_png

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# no background networking: this machine's closed network refuses those connections
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def page():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (part of .[dev])")
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (`make test` installs it when run as root)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser.new_page(viewport={"width": 1280, "height": 1100})
        browser.close()


def test_upload_a_digit_and_read_the_label(page, live_server, tmp_path):
    photo = tmp_path / "seven.png"
    photo.write_bytes(drawn_digit_png(size=320))
    page.goto(live_server, wait_until="networkidle")
    page.locator("#mnist-upload input[type=file]").set_input_files(str(photo))
    info = page.locator("#mnist-info")
    info.get_by_text("provider").wait_for(timeout=30_000)
    screenshot = tmp_path / "digit-upload.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
    assert "mnist-cnn" in info.inner_text() and "CPUExecutionProvider" in info.inner_text()
    lines = [line.strip() for line in page.locator("#mnist-label").inner_text().splitlines() if line.strip()]
    assert lines[:2] == ["top 3", "7"], lines  # the Label's caption, then its headline class


def test_hostile_upload_shows_a_message_not_a_trace(page, live_server, tmp_path):
    bogus = tmp_path / "not-really.png"
    bogus.write_bytes(b"\x89PNG\r\n\x1a\n but then nothing an image would hold")
    page.goto(live_server, wait_until="networkidle")
    page.locator("#mnist-upload input[type=file]").set_input_files(str(bogus))
    page.locator("#mnist-info").get_by_text("not an image", exact=False).wait_for(timeout=30_000)
    page.screenshot(path=str(tmp_path / "hostile-upload.png"))
    assert "Traceback" not in page.content()
