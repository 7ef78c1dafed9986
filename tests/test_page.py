"""The web page in a real browser: headless Chromium (Debian's `chromium`) driven by Playwright, against a real
uvicorn server. Nothing is downloaded: Playwright runs the system's Chromium."""

import math
import re
from pathlib import Path

import pytest

from conftest import live_server, write_tone
from genrekit.predict import load
from genrekit.server import create_app

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.is_file():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; scripts/system_deps.sh)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is missing "
                               "(pip install -e '.[test]')")

DROP_BROKEN_FILE = """() => {
  const data = new DataTransfer();
  data.items.add(new File(["not audio at all"], "broken.mp3", {type: "audio/mpeg"}));
  document.querySelector("#drop").dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true}));
}"""


def test_page_shows_genre_bars_a_timeline_and_a_one_line_error(members, tmp_path):
    classifier = load(members[0][0])
    clip = write_tone(tmp_path / "long song.wav", freq=1700, seconds=120.0)  # 120 windows of 1 s
    m4a = write_tone(tmp_path / "short.m4a", freq=220, seconds=4.0, sr=44100, channels=2)  # decoded by FFmpeg
    expected, expected_m4a = classifier.predict(clip), classifier.predict(m4a)
    problems = []
    with live_server(create_app(classifier)) as (host, port), sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_page(viewport={"width": 900, "height": 1000})
            page.set_default_timeout(60_000)
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on("console", lambda message: message.type == "error" and "Failed to load resource" not in
                    message.text and problems.append(message.text))  # the 422 itself is expected
            page.goto(f"http://{host}:{port}/")
            assert problems == [], problems  # the script loaded and ran
            page.wait_for_function("document.querySelector('#model').textContent.startsWith('Model ')")
            page.set_input_files("#file", [str(clip), str(m4a)])  # chosen in the file dialog
            page.evaluate(DROP_BROKEN_FILE)  # dropped on the page
            good = page.locator(".card", has_text="long song.wav")
            good.locator(".timeline svg").wait_for()
            m4a_card = page.locator(".card", has_text="short.m4a")
            m4a_card.locator(".bars").wait_for()
            failed = page.locator(".card.failed")
            failed.locator(".status", has_text="broken.mp3").wait_for()

            model_line = page.locator("#model").inner_text()
            percentages = good.locator(".bars .pct").all_inner_texts()
            headline, m4a_headline = good.locator(".status").inner_text(), m4a_card.locator(".status").inner_text()
            bands = good.locator(".timeline svg g").count()
            caption = good.locator(".timeline .muted").inner_text()
            error = failed.locator(".status").inner_text()
            page.screenshot(path=tmp_path / "page.png", full_page=True)
        finally:
            browser.close()

    assert problems == []
    assert Path(members[0][0]).name in model_line and ", ".join(classifier.labels) in model_line
    assert headline.startswith(f"{expected.genre} {round(100 * expected.probabilities.max())}%")
    assert m4a_headline.startswith(f"{expected_m4a.genre} {round(100 * expected_m4a.probabilities.max())}%")
    assert len(percentages) == len(classifier.labels) and all(re.fullmatch(r"\d+%", p) for p in percentages)
    assert abs(sum(int(p[:-1]) for p in percentages) - 100) <= len(percentages) / 2
    size = math.ceil(len(expected.times) / 30)  # a long song in at most 30 bands, each the mean of `size` windows
    assert bands == math.ceil(len(expected.times) / size) == 30 and f"the mean of {size} windows of 1 s" in caption
    assert "\n" not in error.strip() and error.startswith("broken.mp3: ") and "Traceback" not in error
    assert (tmp_path / "page.png").read_bytes()[:4] == b"\x89PNG"


def test_page_at_420_px_keeps_its_text_legible_says_its_limits_and_offers_the_json(members, tmp_path):
    import json

    classifier = load(members[0][0])
    clip = write_tone(tmp_path / "phone song.wav", freq=1700, seconds=90.0)
    with live_server(create_app(classifier, max_upload_mb=100, max_minutes=20)) as (host, port), \
            sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_page(viewport={"width": 420, "height": 900}, accept_downloads=True)
            page.set_default_timeout(60_000)
            page.goto(f"http://{host}:{port}/")
            page.wait_for_function("document.querySelector('#model').textContent.startsWith('Model ')")
            limits, model_line = page.locator("#limits").inner_text(), page.locator("#model").inner_text()
            page.set_input_files("#file", [str(clip)])
            card = page.locator(".card", has_text="phone song.wav")
            card.locator(".timeline svg").wait_for()
            smallest_text = page.evaluate("Math.min(...[...document.querySelectorAll('.timeline svg text')]"
                                          ".map((t) => t.getBoundingClientRect().height))")
            overflow = page.evaluate("document.documentElement.scrollWidth")
            headline = card.locator(".status").inner_text()
            with page.expect_download() as download:
                card.locator("a.download").click()
            answer = json.loads(Path(download.value.path()).read_text())
            saved_as = download.value.suggested_filename
            page.screenshot(path=tmp_path / "page-420.png", full_page=True)
        finally:
            browser.close()
    version = classifier.version
    assert "up to 100 MB and 20 minutes" in limits and "any length" not in limits
    assert f"(version {version})" in model_line and f"model {Path(members[0][0]).name} {version}" in headline
    assert smallest_text >= 10, smallest_text  # px: the 700-unit drawing scaled to 420 px gave about 6
    assert overflow <= 420
    assert answer["file"] == "phone song.wav" and answer["model_version"] == version and answer["genre"]
    assert saved_as == "phone song.wav.genre.json"
