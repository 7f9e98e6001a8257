"""Browser tests of the Attack page: "Many images" and the robustness curve draw their images
from every class (and say how many of each), and a running curve shows a progress bar
with a real fraction and a Cancel button.

A real `streamlit run app.py` (not a public demo) with its own TLCORE_HOME, holding a run
of the small CNN trained beforehand on the demo set at 32 px from the command line;
headless Chromium. Skipped without Chromium, like tests/test_browser.py, whose helpers
these reuse.
"""
from __future__ import annotations

import re

import pytest

from bench import load
from test_browser import (PAGE_TIMEOUT_MS, ROOT,  # noqa: F401
                          assert_no_exception, browser, expect, metric, page, plot_titled,
                          screenshot, set_number, settle, shots, wait_title)

pytestmark = pytest.mark.slow  # starts a server, a browser or other processes

# The demo set's test and validation splits hold 22 images of each of its 6 classes.
DEMO_CLASSES = 6
PROGRESS = re.compile(r"image steps: [\d,]+/[\d,]+")


@pytest.fixture(scope="module")
def app_url(browser, tmp_path_factory, train_small_run) -> str:
    """The app (not a public demo) on a home with one run: the small CNN, 2 epochs on the
    demo set at 32 px, trained from the command line before the server starts."""
    folder = tmp_path_factory.mktemp("attack-page")
    train_small_run(folder / "home")
    with load.serving(ROOT, folder / "home", folder / "streamlit.log",
                      public_demo=False) as url:
        yield url


def open_attack_page(page, app_url: str) -> None:
    page.goto(f"{app_url}/attack")
    page.wait_for_selector("[data-testid='stApp']")
    wait_title(page, "Attack")
    page.get_by_text("True class:").first.wait_for()


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()
    settle(page)


def test_many_images_covers_every_class(app_url, page, shots):
    """The default 32 test images come from all 6 classes (the first 32 of the class-sorted
    split covered 2), the page says how many per class, and the results show L-inf and L2
    side by side."""
    open_attack_page(page, app_url)
    page.get_by_role("button").filter(has_text=re.compile(r"Attack$")).click()
    metric(page, "L-inf (px)")
    settle(page)
    assert page.get_by_text("still within epsilon").count() == 1  # PGD has a budget
    screenshot(page, shots / "attack_one_image.png")

    open_tab(page, "Many images")
    coverage = page.get_by_text(re.compile(r"32 of the \d+ test images, from")).first
    coverage.wait_for()
    assert f"from {DEMO_CLASSES} of {DEMO_CLASSES} classes: 5 to 6 per class" in (
        coverage.inner_text())
    expect(page.get_by_text(re.compile(r"Work: 32 images x 10 steps\. Expected: "))).to_be_visible()
    page.get_by_role("button", name=re.compile(r"^Attack 32 images with PGD")).click()
    metric(page, "Mean L-inf (px)")
    metric(page, "Mean L2 (px)")
    settle(page)
    assert_no_exception(page, "Attack, many images")
    screenshot(page, shots / "attack_many_images.png")


def test_running_curve_shows_progress_and_cancel(app_url, page, shots):
    """A long curve (every validation image, 50 PGD steps) shows a bar with the fraction of
    image steps done and a Cancel button that stops it; a short one (3 PGD steps) then
    finishes with the L-inf and L2 of every point in a table."""
    open_attack_page(page, app_url)
    open_tab(page, "Robustness curve")
    slider = page.get_by_role("slider", name="Validation images")
    slider.focus()
    slider.press("End")  # every validation image
    settle(page)
    set_number(page, "PGD steps", "50")
    settle(page)
    assert page.get_by_text(re.compile(rf"from {DEMO_CLASSES} of {DEMO_CLASSES} classes")).count()
    page.get_by_role("button", name="Compute the curves").click()
    bar = page.locator("[data-testid='stProgress']").filter(has_text=PROGRESS).first
    bar.wait_for()
    expect(page.get_by_role("button", name=re.compile("Cancel"))).to_be_visible()
    page.wait_for_function(  # an ETA appears once the first steps have been timed
        "() => [...document.querySelectorAll(\"[data-testid='stProgress']\")]"
        ".some(e => / s left/.test(e.innerText))", timeout=PAGE_TIMEOUT_MS)
    text = page.locator("[data-testid='stProgress']").first.inner_text()
    assert re.search(r"epsilon \d of 5", text), text
    screenshot(page, shots / "attack_curve_running.png")
    page.get_by_role("button", name=re.compile("Cancel")).click()
    # The run after Cancel says the curves stopped (they do not just vanish).
    page.get_by_text(re.compile("stopped before it finished")).first.wait_for()
    settle(page)
    assert page.locator("[data-testid='stProgress']").count() == 0
    assert_no_exception(page, "Attack, cancelled curve")

    set_number(page, "PGD steps", "3")
    settle(page)
    # The cancelled curve timed this model's steps: the expected time is shown.
    expect(page.get_by_text(re.compile(r"Work: 5 budgets .* Expected: (under|about) "))
           ).to_be_visible()
    page.get_by_role("button", name="Compute the curves").click()
    plot_titled(page, "Robustness")
    page.locator("[data-testid='stDataFrame']").first.wait_for()
    settle(page)
    assert_no_exception(page, "Attack, curve done")
    screenshot(page, shots / "attack_curve_done.png")
