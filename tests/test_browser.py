"""The web page in headless Chromium (Playwright): type, translate, see the text and the
attention heatmap. The screenshot goes to $S2S_SCREENSHOT (default: the test's temp folder);
$S2S_BROWSER_MODEL serves that en->date model file instead of the tiny test model."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

from tests.service_fixtures import (  # noqa: F401 (fixtures)
    models_dir,
    running_server,
    settings_for,
    tiny_model_file,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SENTENCE = "the third of june two thousand seven"

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed "
                                  "(pip install playwright; the browser is /usr/bin/chromium)")
if not CHROMIUM.is_file() or not shutil.which(str(CHROMIUM)):
    pytest.skip("/usr/bin/chromium is missing (apt-get install chromium)",
                allow_module_level=True)


def test_page_translates_and_draws_the_attention(models_dir, tmp_path):  # noqa: F811
    screenshot = Path(os.environ.get("S2S_SCREENSHOT", tmp_path / "translator.png"))
    if os.environ.get("S2S_BROWSER_MODEL"):
        models_dir = tmp_path / "browser_models"
        models_dir.mkdir()
        shutil.copyfile(os.environ["S2S_BROWSER_MODEL"], models_dir / "en-date.pt")
    with running_server(settings_for(models_dir)) as running:
        url = running.url
        expected = httpx.post(f"{url}/v1/translate", json={
            "texts": [SENTENCE], "source": "en", "target": "date", "return_attention": True,
            "beam_size": 5}).json()["translations"][0]
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                 args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                page.goto(url + "/")
                page.wait_for_selector("#pair option[value='en-date']", state="attached")
                page.fill("#source", SENTENCE)
                page.click("#translate")
                page.wait_for_selector("table.heatmap td", timeout=15000)
                translation = page.inner_text("#translation")
                rows = page.locator("table.heatmap tbody tr").count()
                columns = page.locator("table.heatmap thead th").count() - 1
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
            finally:
                browser.close()
    sentence = expected["sentences"][0]
    assert translation == expected["translation"] != ""
    assert rows == len(sentence["tokens"]) + 1
    assert columns == len(sentence["source_tokens"])
    assert screenshot.stat().st_size > 0


def test_page_detects_the_language_and_translates_a_file(models_dir, tmp_path):  # noqa: F811
    """Auto-detection (pair "Detect language -> date") and a .txt file translated through
    /translate_file and downloaded from the link the page shows."""
    screenshot = Path(os.environ.get("S2S_SCREENSHOT_FILES", tmp_path / "files.png"))
    upload = tmp_path / "dates.txt"
    upload.write_text(f"{SENTENCE}\n\nthe first of may two thousand\n", encoding="utf-8")
    settings = settings_for(models_dir, files_dir=tmp_path / "files")
    with running_server(settings) as running, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                             args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(running.url + "/")
            page.wait_for_selector("#pair option[value='auto-date']", state="attached")
            page.select_option("#pair", "auto-date")
            page.fill("#source", SENTENCE)
            page.click("#translate")
            # A selector, not wait_for_function: the page's CSP forbids eval, which that uses.
            page.wait_for_selector("#detected:not(:empty)")
            detected = page.inner_text("#detected")
            page.wait_for_selector("#files:not([hidden])")
            page.set_input_files("#file", str(upload))
            page.click("#translate-file")
            link = page.wait_for_selector("#file-result a", timeout=15000)
            href = link.get_attribute("href")
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
        downloaded = httpx.get(urljoin(running.url + "/", href))
    assert "Detected language: en" in detected
    assert downloaded.status_code == 200
    lines = downloaded.text.split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[0] and lines[2]
