"""Browser test of the backbone bake-off on the Train page's bake-off tab: two bodies on the
demo set at 32 px (VGG16's offline edge-detection body and MobileNetV3Small with random
weights), a progress bar over the whole set with its Cancel button while it runs, then the
table, the Pareto chart and the published results; both bodies are saved runs.

A real `streamlit run app.py` (not a public demo) on an empty TLCORE_HOME; headless
Chromium. Skipped without Chromium, like tests/test_browser.py, whose helpers these reuse.
"""
from __future__ import annotations

import re

import pytest

from bench import load
from test_browser import (PAGE_TIMEOUT_MS, ROOT, TRAIN_TIMEOUT_MS,  # noqa: F401
                          assert_no_exception, browser, expect, page, plot_titled, screenshot,
                          set_number, settle, shots, wait_title)
from ui import bakeoff as section

pytestmark = pytest.mark.slow  # starts a server, a browser or other processes

WANTED = ("VGG16, HED edges", "MobileNetV3Small, random weights")


@pytest.fixture(scope="module")
def served(browser, tmp_path_factory):
    """The app (not a public demo) on an empty home: (base URL, home)."""
    folder = tmp_path_factory.mktemp("bakeoff-page")
    with load.serving(ROOT, folder / "home", folder / "streamlit.log",
                      public_demo=False) as url:
        yield url, folder / "home"


def keep_only(page, wanted: tuple[str, ...]) -> None:
    """Leave only the `wanted` bodies chosen: click every other chosen pill off (which are
    offered depends on the weights this machine has)."""
    group = page.locator("[data-testid='stButtonGroup']").filter(has_text=wanted[0]).first
    chosen = group.locator("button[aria-pressed='true']")
    for label in chosen.all_inner_texts():
        if label.strip() not in wanted:
            group.get_by_role("button", name=label.strip(), exact=True).click()
            settle(page)
    assert sorted(text.strip() for text in chosen.all_inner_texts()) == sorted(wanted)


def test_a_bakeoff_on_the_demo_set_shows_progress_then_its_trade_offs(served, page, shots):
    from tlcore import runs

    url, home = served
    page.goto(f"{url}/train")
    page.wait_for_selector("[data-testid='stApp']")
    wait_title(page, "Train")
    page.get_by_role("tab", name="Which backbone? Bake-off").click()
    page.get_by_role("heading", name="Backbone bake-off").wait_for()
    settle(page)
    assert page.get_by_role("checkbox", name=section.RANDOM_LABEL).is_checked()
    keep_only(page, WANTED)
    set_number(page, "Epochs of each head", "3")
    set_number(page, section.SIZE_LABEL, "32")
    settle(page)
    expect(page.get_by_text(re.compile(r"Expected: about .+ for 2 backbones at 32 px"))
           ).to_be_visible()
    screenshot(page, shots / "bakeoff_form.png")
    # A look at the other tab (which draws only itself) keeps the form as it was.
    page.get_by_role("tab", name="Train a model").click()
    page.get_by_role("button", name="Train", exact=True).wait_for()
    page.get_by_role("tab", name="Which backbone? Bake-off").click()
    page.get_by_role("heading", name="Backbone bake-off").wait_for()
    settle(page)
    assert page.get_by_label("Epochs of each head", exact=True).input_value() == "3"
    assert page.get_by_label(section.SIZE_LABEL, exact=True).input_value() == "32"
    expect(page.get_by_text(re.compile(r"Expected: about .+ for 2 backbones at 32 px"))
           ).to_be_visible()

    page.get_by_role("button", name=re.compile(r"Run the bake-off \(2 trainings\)")).click()
    bar = page.locator("[data-testid='stProgress']").filter(
        has_text=re.compile(r"[12] of 2: .+: \d+% done")).first
    bar.wait_for(timeout=PAGE_TIMEOUT_MS)
    expect(page.get_by_role("button", name="Cancel")).to_be_visible()
    page.get_by_text("Bake-off now: 2 backbones, 3 epochs each at 32 px").wait_for()
    screenshot(page, shots / "bakeoff_running.png")

    page.get_by_text("Last bake-off").first.wait_for(timeout=TRAIN_TIMEOUT_MS)
    settle(page)
    chart = plot_titled(page, "Backbone bake-off: the best trade-offs")
    assert_no_exception(page, "Train, after the bake-off")
    assert chart.get_by_text("best trade-offs (Pareto front)").count() == 1
    expect(page.locator("[data-testid='stDataFrame']").first).to_be_visible()
    page.get_by_text("Published results, for scale").click()
    page.get_by_text("What these networks score on ImageNet").wait_for()
    screenshot(page, shots / "bakeoff_done.png")

    saved = runs.list_runs(home / "runs")
    assert sorted(run.name.split(": ", 1)[1] for run in saved) == sorted(WANTED)
    assert {run.info["config"]["mode"] for run in saved} == {"fast"}
