"""Browser test of building a data set on the Data page: two classes made by name, filled
by uploading several files at once and by a camera photo (Chromium's fake camera), saved,
and then the data set of the Train page.

A real `streamlit run app.py` served as a public demo (the data set goes into the
visitor's own folder) with an empty TLCORE_HOME; headless Chromium with a fake camera
that the page may use without asking. Skipped without Chromium, like tests/test_browser.py,
whose helpers these reuse.
"""
from __future__ import annotations

import io
import os
import re

import numpy as np
import pytest
from PIL import Image

from bench import load
from bench.load import CHROMIUM, CHROMIUM_ARGS
from test_browser import (HEIGHT, PAGE_TIMEOUT_MS, ROOT, WIDTH, assert_no_exception,  # noqa: F401
                          expect, go_to, screenshot, settle, shots, wait_title)

pytestmark = pytest.mark.slow  # starts a server, a browser or other processes

# A camera that needs no device and no permission prompt (a moving test pattern).
FAKE_CAMERA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
CLASSES = {"red": (210, 40, 40), "blue": (40, 60, 210)}
PER_CLASS = 3


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium with the fake camera (skipped as tests/test_browser.py's is)."""
    reason = load.missing()
    if reason is not None:
        if os.environ.get("TLCORE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"TLCORE_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(f"browser tests need Chromium and Playwright: {reason}")
    from playwright.sync_api import expect as playwright_expect
    from playwright.sync_api import sync_playwright

    playwright_expect.set_options(timeout=PAGE_TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                              args=[*CHROMIUM_ARGS, *FAKE_CAMERA])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def app_url(browser, tmp_path_factory) -> str:
    """The app as a public demo on an empty home; the base URL."""
    folder = tmp_path_factory.mktemp("builder-page")
    with load.serving(ROOT, folder / "home", folder / "streamlit.log", public_demo=True) as url:
        yield url


@pytest.fixture
def page(browser):
    """A fresh session whose page may use the camera."""
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT},
                                  permissions=["camera"])
    tab = context.new_page()
    tab.set_default_timeout(PAGE_TIMEOUT_MS)
    yield tab
    context.close()


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
