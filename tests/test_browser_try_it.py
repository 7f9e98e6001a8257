"""Browser tests of the Runs page's Try it panel: uploaded images and a camera photo get
the run's top classes and Grad-CAM (of any class), bad files a message of their own, and
a public demo tries at most `Limits.try_images` images at once.

A real `streamlit run app.py` as a public demo (bench/load.py's server) with its own
TLCORE_HOME, holding the host's run of the small CNN trained beforehand on the demo set
at 32 px; headless Chromium with a fake camera. Skipped without Chromium, like
tests/test_browser.py, whose helpers these reuse.
"""
from __future__ import annotations

import os
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench import load
from bench.load import CHROMIUM, CHROMIUM_ARGS
from tlcore import config, demo
from test_browser import (PAGE_TIMEOUT_MS, ROOT, assert_no_exception, expect,  # noqa: F401
                          image_loaded, page, screenshot, settle, shots, wait_title)

pytestmark = pytest.mark.slow  # starts a server, a browser or other processes

# A camera that needs no permission prompt and films a test pattern.
FAKE_CAMERA_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
PERCENT = re.compile(r"^(.+): (\d+\.\d)%$")


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium with a fake camera (test_browser's, plus two flags)."""
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
                                              args=CHROMIUM_ARGS + FAKE_CAMERA_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def home(browser, tmp_path_factory, train_small_run) -> Path:
    """A TLCORE_HOME holding one run: the small CNN, 2 epochs on the demo set at 32 px,
    trained from the command line by the host (outside the demo)."""
    folder = tmp_path_factory.mktemp("try-it") / "home"
    train_small_run(folder)
    return folder


@pytest.fixture(scope="module")
def demo_url(home) -> str:
    """The app served as a public demo on that home."""
    with load.serving(ROOT, home, home.parent / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A good image (a demo circle), a text file named .jpg, and a PNG whose header
    declares 30 megapixels (over the demo's 24)."""
    folder = tmp_path_factory.mktemp("try-files")
    paths = {name: folder / name for name in ("circle.png", "notes.jpg", "huge.png")}
    Image.fromarray(demo.draw_example("circle", np.random.default_rng(3))).save(
        paths["circle.png"])
    paths["notes.jpg"].write_bytes(b"Shopping list: milk, eggs. Not an image.\n")
    header = struct.pack(">IIBBBBB", 6000, 5000, 8, 2, 0, 0, 0)  # 8-bit RGB
    paths["huge.png"].write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
                                  + png_chunk(b"IDAT", zlib.compress(bytes(100)))
                                  + png_chunk(b"IEND", b""))
    return paths


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def expected_top(home: Path, image_file: Path) -> list[tuple[str, float]]:
    """The run's top-3 (class, probability) for an image file, computed here."""
    from tlcore import images, models, runs

    [run] = runs.list_runs(home / "runs")
    pixels = images.load_image(image_file.read_bytes(), run.image_size).astype(np.float32)
    logits = models.predict_logits(run.load_model(), pixels[None])
    probabilities = models.softmax(logits)[0]
    return [(run.classes[i], float(probabilities[i])) for i in np.argsort(-probabilities)[:3]]


def open_try_it(page, base: str) -> None:
    page.goto(f"{base}/runs")
    page.wait_for_selector("[data-testid='stApp']")
    wait_title(page, "Runs")
    page.get_by_role("heading", name="Try it").wait_for()


def card(page, title: str):
    """The bordered card of one tried file: the innermost block holding its title (the
    last in document order)."""
    title_text = page.locator("[data-testid='stMarkdownContainer']").get_by_text(title,
                                                                                 exact=True)
    return page.locator("[data-testid='stVerticalBlock']").filter(has=title_text).last


def bars(card_locator) -> list[tuple[str, float]]:
    """The (class, percent) of a card's probability bars, top first."""
    texts = card_locator.locator("[data-testid='stProgress']").all_inner_texts()
    found = [PERCENT.match(text.strip()) for text in texts]
    assert all(found), texts
    return [(match.group(1), float(match.group(2))) for match in found]


def pick(page, box, option: str) -> None:
    """Choose `option` in the selectbox `box`. A click right after a rerun sometimes
    leaves the list closed (measured: about one in three here), so it is tried again."""
    for _ in range(3):
        box.click()
        choice = page.get_by_role("option", name=option, exact=True)
        try:
            choice.wait_for(timeout=2_000)
        except Exception:  # Playwright's TimeoutError: the list did not open
            page.keyboard.press("Escape")
            continue
        choice.click()
        expect(box).to_have_value(option)
        settle(page)
        return
    pytest.fail(f"the list holding {option!r} did not open")


def upload(page, paths: list[Path]) -> None:
    page.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(
        [str(path) for path in paths])
    settle(page)


def test_good_and_bad_files(demo_url, home, files, page, shots):
    """A good image gets the run's own top 3 and Grad-CAM; a text file renamed .jpg and a
    30-megapixel image each get their own message; the panel goes on working."""
    open_try_it(page, demo_url)
    upload(page, [files["circle.png"], files["notes.jpg"], files["huge.png"]])
    good = card(page, "circle.png")
    image_loaded(page, "where ")  # the Grad-CAM overlay of the top class
    shown = bars(good)
    expected = expected_top(home, files["circle.png"])
    assert [name for name, _ in shown] == [name for name, _ in expected]
    for (_, percent), (_, probability) in zip(shown, expected):
        assert abs(percent - 100 * probability) < 0.2
    explained = good.get_by_role("combobox", name="Grad-CAM for")
    expect(explained).to_have_value(shown[0][0])
    pick(page, explained, shown[1][0])  # the second class: its own Grad-CAM
    image_loaded(page, f"where {shown[1][0]} is seen")
    expect(card(page, "notes.jpg").locator("[data-testid='stAlert']")).to_contain_text(
        "not a readable image")
    expect(card(page, "huge.png").locator("[data-testid='stAlert']")).to_contain_text(
        "6000x5000 pixels is more than")
    assert bars(card(page, "notes.jpg")) == [] and bars(card(page, "huge.png")) == []
    # Beside answered images, a bad file is a warning, not an error.
    assert card(page, "notes.jpg").locator("[data-testid='stAlertContentWarning']").count()
    assert not page.locator("[data-testid='stAlertContentError']").count()
    assert_no_exception(page, "Try it with bad files")
    screenshot(page, shots / "runs_try_it.png")


def test_over_the_limit(demo_url, files, page, tmp_path):
    """More images than the demo's limit: the first ones are tried, the others named."""
    limit = config.DEMO_LIMITS.try_images
    copies = []
    for index in range(limit + 2):
        copies.append(tmp_path / f"copy{index:02d}.png")
        copies[-1].write_bytes(files["circle.png"].read_bytes())
    open_try_it(page, demo_url)
    upload(page, copies)
    warning = page.locator("[data-testid='stAlert']").filter(has_text="images tried at once")
    expect(warning).to_contain_text(f"{limit + 2} is over this public demo's limit of {limit}")
    expect(warning).to_contain_text(f"left out: copy{limit:02d}.png, copy{limit + 1:02d}.png")
    titles = page.locator("[data-testid='stMarkdownContainer'] strong").filter(
        has_text=re.compile(r"^copy\d+\.png$"))
    expect(titles).to_have_count(limit)
    assert titles.all_inner_texts() == [path.name for path in copies[:limit]]
    expect(page.locator("[data-testid='stProgress']")).to_have_count(3 * limit)
    assert_no_exception(page, "Try it over the limit")


def test_camera_photo(demo_url, page, shots):
    """The camera appears only once its toggle is on; a photo gets a prediction."""
    open_try_it(page, demo_url)
    assert page.locator("[data-testid='stCameraInput']").count() == 0
    page.get_by_text("Use the camera", exact=True).click()
    camera = page.locator("[data-testid='stCameraInput']")
    camera.wait_for()
    take = camera.get_by_role("button", name=re.compile("Take photo", re.IGNORECASE))
    # The fake camera's video must be playing, or the photo is taken of nothing.
    page.wait_for_function("e => e.readyState >= 2 && e.videoWidth > 0",
                           arg=camera.locator("video").element_handle())
    take.click()
    settle(page)
    photo = card(page, "Photo from the camera")
    assert len(bars(photo)) == 3
    image_loaded(page, "where ")
    assert_no_exception(page, "Try it with the camera")
    screenshot(page, shots / "runs_try_it_camera.png")
