"""The web page `textrnn serve` shows at /, driven in Debian's Chromium (headless) through Playwright.

Nothing is downloaded: Playwright's own driver comes in its wheel and the browser is /usr/bin/chromium, which
.ci/run installs with apt-get. Where it is missing the test is skipped, except under CI, where it fails.
Screenshots are written to artifacts/ (or $TEXTRNN_ARTIFACTS).
"""

import os
import re
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
playwright_api = pytest.importorskip("playwright.sync_api")

from textrnn import TextClassifier  # noqa: E402
from textrnn.serve import create_app, load_served_model  # noqa: E402

CHROMIUM = Path(os.environ.get("TEXTRNN_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("TEXTRNN_ARTIFACTS", Path(__file__).resolve().parents[1] / "artifacts"))
# Chromium's own calls home fail on a closed network; these flags keep it from making them
FLAGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        message = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        yield browser
        browser.close()


def rgb(style: str) -> tuple[int, int, int]:
    return tuple(int(x) for x in re.findall(r"\d+", style)[:3])


def test_the_page_classifies_and_colours_the_words(browser, served_model_dir, live_server, ag_news_mini):
    clf = TextClassifier.from_pretrained(served_model_dir)
    examples = [t for t in ag_news_mini.test.texts()[:40] if len(t) < 200][:3]
    url = live_server(create_app([load_served_model(served_model_dir, "agnews", examples=examples)]))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")
    assert "agnews" in page.locator("#model-line").inner_text()
    assert page.locator("button.example").count() == len(examples)

    # an empty text is refused on the page, without a request
    page.get_by_role("button", name="Classify").click()
    assert page.get_by_role("alert").inner_text().startswith("Type a text")

    text = "Shares of the oil giant fell sharply on Wall Street after profits missed forecasts"
    page.get_by_label("Text to classify").fill(text)
    page.get_by_role("button", name="Classify").click()
    page.wait_for_selector("#result:not([hidden])")
    page.wait_for_function("document.getElementById('submit').textContent === 'Classify'")
    label = clf.predict([text])[0]
    probabilities = dict(zip(clf.classes_, clf.predict_proba([text])[0].tolist()))
    assert page.locator("#label").inner_text() == label

    bars = page.locator(".bar")
    assert bars.count() == len(clf.classes_)
    assert bars.first.locator(".name").inner_text() == label  # sorted, most probable first
    for i in range(bars.count()):
        name = bars.nth(i).locator(".name").inner_text()
        shown = float(bars.nth(i).get_by_role("progressbar").get_attribute("aria-valuenow"))
        assert abs(shown - 100 * probabilities[name]) <= 0.051

    tokens = page.locator("#words .tok")
    explanation = clf.explain([text])[0]
    assert tokens.count() == len(explanation.tokens)
    assert page.locator("#words").inner_text() == text  # the text is shown whole, punctuation and all
    strongest = max(range(len(explanation.tokens)), key=lambda i: explanation.tokens[i].score)
    r, g, b = rgb(tokens.nth(strongest).get_attribute("style"))
    assert g > r and g > b, "the word that pushed hardest towards the label is not green"
    assert abs(float(tokens.nth(strongest).get_attribute("data-score")) - explanation.tokens[strongest].score) < 1e-3
    weakest = min(range(len(explanation.tokens)), key=lambda i: explanation.tokens[i].score)
    if explanation.tokens[weakest].score < 0:
        r, g, b = rgb(tokens.nth(weakest).get_attribute("style"))
        assert r > g, "a word that pushed away from the label is not red"
    assert label in page.locator("#words-summary").inner_text()
    page.screenshot(path=str(ARTIFACTS / "serve-page.png"), full_page=True)

    # an example, clicked, is classified at once
    page.locator("button.example").nth(1).click()
    page.wait_for_function("document.getElementById('text').value.length > 0 && "
                           "document.getElementById('submit').textContent === 'Classify'")
    page.wait_for_function(f"document.getElementById('label').textContent === {clf.predict([examples[1]])[0]!r}")
    page.close()


def test_the_page_fits_a_phone_screen(browser, served_model_dir, live_server):
    url = live_server(create_app([load_served_model(served_model_dir, "agnews")]))
    page = browser.new_page(viewport={"width": 375, "height": 740}, device_scale_factor=2, is_mobile=True)
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")
    page.get_by_label("Text to classify").fill("The striker scored twice as the champions won the derby at home "
                                               "in front of a record crowd")
    page.get_by_role("button", name="Classify").click()
    page.wait_for_selector("#result:not([hidden])")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # nothing wider than the screen
    box = page.get_by_role("button", name="Classify").bounding_box()
    assert box["height"] >= 44  # a finger-sized target
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "serve-page-phone.png"), full_page=True)
    page.close()
