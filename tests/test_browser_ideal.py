"""Browser tests of the Ideal image page's TV sweep: honest progress while it runs, and a
slider that scrubs the finished sweep in the browser, without a script run.

A real `streamlit run app.py` (a public demo) serves a TLCORE_HOME holding one run: the
small from-scratch CNN trained for two epochs on the demo set at 96 px. Skipped without
Chromium and Playwright, unless TLCORE_REQUIRE_BROWSER=1 (see tests/test_browser.py).
"""
from __future__ import annotations

import re

import pytest

from bench import load, scrub
from tests import test_browser
from tests.test_browser import (PAGE_TIMEOUT_MS, assert_no_exception, expect, screenshot,
                                settle, wait_title)

pytestmark = pytest.mark.slow  # starts a server, a browser or other processes

# The browser, a fresh tab per test and the screenshot folder, from the main browser tests.
browser, page, shots = test_browser.browser, test_browser.page, test_browser.shots

# The demo's most; at 96 px that is several seconds on two cores (about 2 s at 32 px, too
# quick to catch a Cancel button on an idle machine).
LONG_STEPS = "300"
SHORT_STEPS = "20"
# Counts the script runs that start from now on (Streamlit marks the app "running").
COUNT_RUNS = """() => {
    const app = document.querySelector("[data-testid='stApp']");
    window.__runs = 0;
    new MutationObserver(() => {
        if (app.getAttribute("data-test-script-state") === "running") window.__runs += 1;
    }).observe(app, {attributes: true, attributeFilter: ["data-test-script-state"]});
}"""


@pytest.fixture(scope="module")
def ideal_url(browser, tmp_path_factory):
    """A public-demo server whose TLCORE_HOME holds one small CNN run; its base URL."""
    from tlcore import config, data, train

    folder = tmp_path_factory.mktemp("browser-ideal")
    settings = config.TrainConfig(backbone="scratch_cnn", weights=None, mode="end-to-end",
                                  epochs=2, image_size=96, batch_size=16, patience=0)
    train.train_classifier(settings, data.demo_dataset(), runs_dir=folder / "home" / "runs")
    with load.serving(load.ROOT, folder / "home", folder / "server.log") as url:
        yield url


def open_sweep_tab(page, url: str) -> None:
    page.goto(f"{url}/ideal_image")
    wait_title(page, "Ideal image")
    page.get_by_role("tab", name="TV sweep").click()
    settle(page)


def start_sweep(page, steps: str) -> None:
    panel = scrub.visible_panel(page)
    field = panel.get_by_label("Steps", exact=True)
    field.fill(steps)
    field.press("Tab")
    panel.get_by_role("button", name="Render the sweep").click()


def test_a_sweep_shows_its_progress_and_cancels(ideal_url, page, shots):
    open_sweep_tab(page, ideal_url)
    # Before any render of this model the page says how much work a sweep is.
    expect(scrub.visible_panel(page).get_by_text(
        re.compile(r"\d+ steps of 7 images, each a forward and backward pass"))).to_be_visible()
    start_sweep(page, LONG_STEPS)
    bar = page.locator("[data-testid='stProgress']").first
    # A phase, the steps done of all of them, and the time left.
    expect(bar).to_contain_text(re.compile(
        r"Rendering 7 images together: climbing the class score: [\d,]+/300, about \d+ s left"),
        timeout=PAGE_TIMEOUT_MS)
    cancel = page.get_by_role("button", name=re.compile(r"Cancel$"))
    expect(cancel).to_be_visible()
    expect(page.get_by_text(re.compile(r"The images after \d+ of 300 steps"))).to_be_visible()
    screenshot(page, shots / "ideal_sweep_running.png")
    cancel.click()
    settle(page)
    expect(page.locator("[data-testid='stProgress']")).to_have_count(0)
    expect(scrub.scrubber(page)).to_have_count(0)  # a cancelled sweep leaves no results
    assert_no_exception(page, "the cancelled sweep")


def test_a_finished_sweep_scrubs_without_a_script_run(ideal_url, page, shots):
    open_sweep_tab(page, ideal_url)
    start_sweep(page, SHORT_STEPS)
    scrub.scrubber(page).wait_for(timeout=PAGE_TIMEOUT_MS)
    settle(page)
    assert_no_exception(page, "the finished sweep")
    figure = scrub.visible_panel(page).locator(".js-plotly-plot").first
    expect(figure).to_contain_text("TV weight 0.3")  # it starts at the recipe's weight
    page.evaluate(COUNT_RUNS)
    direction, latencies = 1, []
    for _ in range(3):  # 0.3 -> 0.9 -> 3 -> 0.9
        milliseconds, direction = scrub.scrub_once(page, direction)
        latencies.append(milliseconds)
    page.wait_for_timeout(500)  # a run asked for by the scrub would have begun by now
    assert page.evaluate("() => window.__runs") == 0, "scrubbing ran the script"
    # Loose: the browser redraws; a script run per step took seconds.
    assert sorted(latencies)[len(latencies) // 2] < 1000, latencies
    expect(figure).to_contain_text("TV weight 0.9")
    # The next view of the form expects the time from the pace this sweep measured.
    page.get_by_role("tab", name="Render").click()
    page.get_by_role("tab", name="TV sweep").click()
    page.keyboard.press("r")
    settle(page)
    expect(scrub.visible_panel(page).get_by_text(
        re.compile(r"Expected time for 20 steps of 7 images: about \d+ s"))).to_be_visible()
    screenshot(page, shots / "ideal_sweep_done.png")
