"""Browser test of the Train page's augmentation preview: for fine-tuning, the section shows a
grid of training images under the augmentation, and moving a slider redraws it (a picture
with other bytes, so another address).

A real `streamlit run app.py` (not a public demo) on an empty TLCORE_HOME (the `app_url` of
tests/test_browser.py), on the built-in demo set; headless Chromium. Skipped without
Chromium, like tests/test_browser.py, whose helpers these reuse.
"""
from __future__ import annotations

import pytest

from test_browser import (app_url, assert_no_exception, browser,  # noqa: F401 (fixtures)
                          expect, image_loaded, page, screenshot, settle, shots, wait_title)
from ui import augmentation

pytestmark = pytest.mark.slow  # starts a server, a browser or other processes


def grid(page, caption: str) -> str:
    """The address of the preview's picture (the hash of its bytes) once its caption starts
    with `caption`; it is the page's only picture."""
    image_loaded(page, caption)
    return page.locator("[data-testid='stImage'] img").first.get_attribute("src")


def test_the_preview_shows_fine_tunings_augmentation_and_follows_its_sliders(app_url, page,
                                                                            shots):
    page.goto(f"{app_url}/train")
    page.wait_for_selector("[data-testid='stApp']")
    wait_title(page, "Train")
    page.get_by_text("Data: Demo").first.wait_for()
    section = page.locator("[data-testid='stExpander']").filter(has_text=augmentation.TITLE)
    section.get_by_text(augmentation.TITLE).click()
    expect(section.get_by_text("changes its training images at random")).to_be_visible()  # fast

    page.get_by_text("Fine-tune (that head first").click()
    settle(page)
    expect(section.get_by_text("Fine-tuning sees every training image")).to_be_visible()
    first = grid(page, "Flip horizontal, rotation up to 18°")
    screenshot(page, shots / "train_augmentation.png")

    rotation = section.get_by_role("slider", name="Rotation")
    rotation.focus()
    rotation.press("End")  # half a turn either way
    settle(page)
    turned = grid(page, "Flip horizontal, rotation up to 180°")
    assert turned != first
    rotation.press("Home")  # no rotation
    settle(page)
    assert grid(page, "Flip horizontal, zoom up to 10%") not in (first, turned)
    section.get_by_role("button", name=augmentation.NEW_DRAW).click()
    settle(page)
    assert_no_exception(page, "Train, augmentation preview")
