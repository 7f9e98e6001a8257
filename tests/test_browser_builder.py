"""Browser test of building a data set on the Data page: two classes made by name, filled
by uploading several files at once and by a camera photo (Chromium's fake camera), saved,
and then the data set of the Train page.

A real `streamlit run app.py` served as a public demo (the data set goes into the
visitor's own folder) with an empty TLCORE_HOME; headless Chromium with a fake camera
that the page may use without asking (tests/test_browser_try_it.py's). Skipped without
Chromium, like tests/test_browser.py, whose helpers these reuse.
"""
from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

from bench import load
from test_browser import (ROOT, assert_no_exception, expect, go_to, page,  # noqa: F401
                          screenshot, settle, shots, wait_title)
from test_browser_try_it import browser  # noqa: F401  (Chromium with a fake camera)

pytestmark = pytest.mark.slow  # starts a server, a browser or other processes

CLASSES = {"red": (210, 40, 40), "blue": (40, 60, 210)}
PER_CLASS = 3


@pytest.fixture(scope="module")
def app_url(browser, tmp_path_factory) -> str:
    """The app as a public demo on an empty home; the base URL."""
    folder = tmp_path_factory.mktemp("builder-page")
    with load.serving(ROOT, folder / "home", folder / "streamlit.log", public_demo=True) as url:
        yield url


def png_files(class_name: str) -> list[dict]:
    """PER_CLASS small PNGs of the class's colour, as Playwright uploads them."""
    random = np.random.default_rng(len(class_name))
    files = []
    for index in range(PER_CLASS):
        pixels = random.normal(CLASSES[class_name], 25, (48, 48, 3))
        buffer = io.BytesIO()
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
        files.append({"name": f"{class_name} {index}.png", "mimeType": "image/png",
                      "buffer": buffer.getvalue()})
    return files


def notice(page, text: str) -> None:
    """Wait for what the last change did (the builder says it on the next run)."""
    expect(page.get_by_text(text).first).to_be_visible()
    settle(page)


def test_build_a_data_set_class_by_class_and_train_on_it(app_url, page, shots):
    page.goto(f"{app_url}/data")
    wait_title(page, "Data")
    page.get_by_text("Build your own (upload or camera)", exact=True).click()
    settle(page)
    page.get_by_label("Name of the new data set").fill("Colours")
    page.get_by_role("button", name=re.compile("Create the data set")).click()
    settle(page)

    for class_name in CLASSES:
        page.get_by_label("New class").fill(class_name)
        page.get_by_role("button", name=re.compile("Add class")).click()
        notice(page, f"Class {class_name} added.")
        uploader = page.locator("[data-testid='stFileUploader']").filter(
            has_text=f"Add images to {class_name}")
        uploader.locator("input[type='file']").set_input_files(png_files(class_name))
        notice(page, f"{PER_CLASS} images added to {class_name}.")

    # The fake camera's picture goes into "blue".
    page.get_by_text("Use the camera for blue").click()
    settle(page)
    take = page.get_by_role("button", name=re.compile("Take photo", re.IGNORECASE))
    expect(take).to_be_enabled()
    page.wait_for_timeout(1000)  # the stream's first frames
    take.click()
    notice(page, "1 image added to blue.")
    expect(page.get_by_text(f"blue: {PER_CLASS + 1} images")).to_be_visible()
    assert page.locator("[data-testid='stImage']").count() == 2 * PER_CLASS + 1
    assert_no_exception(page, "the builder")
    screenshot(page, shots / "i19-builder-classes.png")

    page.get_by_role("button").filter(has_text=re.compile(r"Save$")).click()
    notice(page, "Saved as version 1: the Train page uses it.")
    expect(page.get_by_text("Colours (version 1)").first).to_be_visible()
    assert_no_exception(page, "the saved data set")
    screenshot(page, shots / "i19-builder-saved.png")

    go_to(page, "Train")
    expect(page.get_by_text(re.compile(r"Data: Colours \(version 1\), 2 classes"))).to_be_visible()
    assert_no_exception(page, "Train")
