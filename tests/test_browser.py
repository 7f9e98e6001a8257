"""Browser tests: a real `streamlit run app.py` driven by headless Chromium through Playwright.

Debian's Chromium (/usr/bin/chromium) is used; Playwright's own browser download does not
work here. Without it, or without the `playwright` module, these tests are skipped, unless
TLCORE_REQUIRE_BROWSER=1 (CI sets it), which makes that a failure.

Screenshots are taken only when $TLCORE_SCREENSHOTS names a folder for them
(docs/screenshots holds a set).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from bench import load
from bench.load import CHROMIUM, CHROMIUM_ARGS, IDLE

pytestmark = pytest.mark.slow  # starts a server, a browser or other processes

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 1400, 900
MAX_SHOT_HEIGHT = 6000
MAX_SHOT_BYTES = 400_000
PAGE_TIMEOUT_MS = 90_000
TRAIN_TIMEOUT_MS = 180_000

# (screenshot name, URL path, the page's title). The URL paths are the ones Streamlit
# derives from the st.Page files in app.py; the default page (Home) lives at "/".
PAGES = [("home", "", "Transfer learning on images"), ("data", "data", "Data"),
         ("train", "train", "Train"), ("runs", "runs", "Runs"),
         ("evaluate", "evaluate", "Evaluate"), ("ideal_image", "ideal_image", "Ideal image"),
         ("attack", "attack", "Attack"),
         ("robustness_lab", "robustness_lab", "Robustness lab")]

# The training of the journey: the from-scratch CNN, end to end, small and short, so it
# finishes in well under a minute on two CPU cores.
JOURNEY_BACKBONE = "Small CNN from scratch"
JOURNEY_EPOCHS = "3"
JOURNEY_IMAGE_SIZE = "32"


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium, shared by the module; skipped (or failed with
    TLCORE_REQUIRE_BROWSER=1) when it or Playwright is missing."""
    reason = load.missing()
    if reason is not None:
        if os.environ.get("TLCORE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"TLCORE_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(f"browser tests need Chromium and Playwright: {reason}")
    from playwright.sync_api import expect as playwright_expect
    from playwright.sync_api import sync_playwright

    playwright_expect.set_options(timeout=PAGE_TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def app_url(browser, tmp_path_factory) -> str:
    """`streamlit run app.py` on a free port with its own empty TLCORE_HOME; the base URL."""
    folder = tmp_path_factory.mktemp("browser-app")
    with load.serving(ROOT, folder / "home", folder / "streamlit.log",
                      public_demo=False) as url:
        yield url


@pytest.fixture
def shots(tmp_path) -> Path:
    """Where screenshots go: $TLCORE_SCREENSHOTS (unset: `screenshot` takes none)."""
    folder = Path(os.environ.get("TLCORE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser):
    """A fresh browser context and tab (so a fresh Streamlit session) per test."""
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    tab = context.new_page()
    tab.set_default_timeout(PAGE_TIMEOUT_MS)
    yield tab
    context.close()


def settle(page) -> None:
    """Wait until Streamlit has finished running the script (a short pause first, so that a
    rerun just asked for has begun)."""
    page.wait_for_timeout(500)
    page.wait_for_function(IDLE, timeout=PAGE_TIMEOUT_MS)


def wait_title(page, title: str) -> None:
    """Wait for the page's st.title, then for the script run to end."""
    page.locator("[data-testid='stHeading'] h1").filter(has_text=title).first.wait_for()
    settle(page)


def exceptions(page) -> list[str]:
    """The texts of the Streamlit exception boxes on the page."""
    return page.locator("[data-testid='stException']").all_inner_texts()


def assert_no_exception(page, where: str) -> None:
    errors = exceptions(page)
    assert not errors, f"exception box on {where}:\n" + "\n---\n".join(e[:2000] for e in errors)


def screenshot(page, path: Path) -> None:
    """A full-page screenshot, when $TLCORE_SCREENSHOTS asks for them (nobody looks at a
    test's tmp_path: about 30 s of the suite). Streamlit scrolls inside its main element,
    not the document, so the viewport is made as tall as that content for the picture,
    then put back."""
    if not os.environ.get("TLCORE_SCREENSHOTS"):
        return
    height = page.evaluate(
        "() => { const main = document.querySelector(\"[data-testid='stMain']\");"
        " return main ? main.scrollHeight : document.body.scrollHeight; }")
    page.set_viewport_size({"width": WIDTH, "height": max(HEIGHT, min(height, MAX_SHOT_HEIGHT))})
    page.mouse.move(WIDTH - 5, 5)  # no hover effects (sidebar button, chart tooltips)
    page.wait_for_timeout(400)  # charts re-layout to the new size
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    if path.stat().st_size > MAX_SHOT_BYTES:  # photos in the page: 256 colours are plenty
        from PIL import Image

        with Image.open(path) as picture:
            reduced = picture.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE)
        reduced.save(path, optimize=True)


def go_to(page, title: str) -> None:
    """Change page with the sidebar's navigation link (keeps the Streamlit session)."""
    page.locator("[data-testid='stSidebarNav']").get_by_role("link", name=title,
                                                             exact=True).click()
    wait_title(page, title)


def expect(target):
    """Playwright's `expect`, imported late (the module may be missing: then tests skip)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def choose(page, label: str, option: str) -> None:
    """Pick `option` in the selectbox labelled `label`."""
    page.get_by_role("combobox", name=label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()
    expect(page.get_by_role("combobox", name=label, exact=True)).to_have_value(option)


def wait_run_chosen(page, run_id: str) -> None:
    """Wait until the page's run picker shows `run_id` (its label starts with the id)."""
    expect(page.get_by_role("combobox", name="Run", exact=True)).to_have_value(
        re.compile("^" + re.escape(run_id)))


def set_number(page, label: str, value: str) -> None:
    """Type into a number input and leave it (Tab commits it; Enter would submit a form)."""
    field = page.get_by_label(label, exact=True)
    field.fill(value)
    field.press("Tab")
    assert field.input_value() == value


def image_loaded(page, caption_start: str) -> None:
    """Wait for an st.image whose caption starts with `caption_start`, and check that its
    picture was decoded (a real image, not a broken one)."""
    image = page.locator("[data-testid='stImage']").filter(
        has=page.locator("[data-testid='stImageCaption']",
                         has_text=re.compile("^" + re.escape(caption_start)))).first
    image.wait_for()
    picture = image.locator("img").first
    page.wait_for_function("e => e.complete && e.naturalWidth > 0", arg=picture.element_handle())


def metric(page, label: str) -> None:
    """Wait for the st.metric labelled `label`."""
    page.locator("[data-testid='stMetric']").filter(has_text=label).first.wait_for()


def plot_titled(page, title: str):
    """The plotly chart whose title is `title` (waits for it to be drawn)."""
    chart = page.locator("[data-testid='stPlotlyChart']").filter(
        has=page.locator(".gtitle", has_text=title)).first
    chart.wait_for()
    return chart


@pytest.mark.parametrize("name,path,title", PAGES, ids=[name for name, _, _ in PAGES])
def test_every_page_loads(app_url, page, shots, name, path, title):
    """Each page, opened by its URL in a new session, draws its title and no exception."""
    page.goto(f"{app_url}/{path}")
    page.wait_for_selector("[data-testid='stApp']")
    wait_title(page, title)
    # The navigation lists every page on every page.
    assert page.locator("[data-testid='stSidebarNav'] a").count() == len(PAGES)
    assert_no_exception(page, f"/{path}")
    screenshot(page, shots / f"{name}.png")


def test_train_evaluate_ideal_attack_journey(app_url, page, shots):
    """Train a small CNN on the demo set, then evaluate it, render an ideal image of a class
    and attack one of its test images, all through the browser in one session."""
    page.goto(app_url)
    page.wait_for_selector("[data-testid='stApp']")
    wait_title(page, "Transfer learning on images")

    # Train: the built-in demo set is the default data source.
    go_to(page, "Train")
    page.get_by_text("Data: Demo").first.wait_for()
    choose(page, "Backbone", JOURNEY_BACKBONE)
    # The form below is redrawn for the new backbone: only end-to-end, 5 epochs by default.
    page.get_by_text("No pretraining: the baseline").first.wait_for()
    page.get_by_text("End-to-end (everything at once").first.wait_for()
    settle(page)
    set_number(page, "Epochs", JOURNEY_EPOCHS)
    set_number(page, "Image size (px)", JOURNEY_IMAGE_SIZE)
    page.get_by_role("button", name="Train").click()
    outcome = page.get_by_text(re.compile(r"Saved as run|Training failed")).first
    outcome.wait_for(timeout=TRAIN_TIMEOUT_MS)
    text = outcome.inner_text()
    assert "Saved as run" in text, text
    run_id = re.search(r"Saved as run\s+(\S+)", text).group(1)
    settle(page)
    assert "scratch_cnn-end-to-end" in run_id, run_id  # what the form asked for
    metric(page, "Validation accuracy")
    plot_titled(page, "Training curves")
    assert_no_exception(page, "Train after training")
    # The form still shows what was trained (its values outlive the hidden training run).
    expect(page.get_by_role("combobox", name="Backbone", exact=True)).to_have_value(
        JOURNEY_BACKBONE)
    assert page.get_by_label("Epochs", exact=True).input_value() == JOURNEY_EPOCHS
    assert page.get_by_label("Image size (px)", exact=True).input_value() == JOURNEY_IMAGE_SIZE
    screenshot(page, shots / "train_done.png")

    # Runs: the new run is listed.
    go_to(page, "Runs")
    wait_run_chosen(page, run_id)
    page.locator("[data-testid='stDataFrame']").first.wait_for()
    assert_no_exception(page, "Runs")
    screenshot(page, shots / "runs_run.png")

    # Evaluate: the confusion matrix of the new run.
    go_to(page, "Evaluate")
    wait_run_chosen(page, run_id)
    matrix = plot_titled(page, "Confusion matrix")
    assert matrix.locator(".heatmaplayer").count() == 1
    assert matrix.get_by_text("predicted class").count() >= 1
    metric(page, "Balanced accuracy")
    settle(page)
    assert_no_exception(page, "Evaluate")
    screenshot(page, shots / "evaluate_run.png")

    # Ideal image: render the default class with the default (custom, 150-step) recipe.
    go_to(page, "Ideal image")
    wait_run_chosen(page, run_id)
    page.get_by_role("button", name="Render", exact=False).filter(
        has_text=re.compile(r"Render$")).click()
    image_loaded(page, "Ideal '")
    metric(page, "Class probability")
    plot_titled(page, "Top-5 predictions")
    plot_titled(page, "Class logit per step")
    settle(page)
    assert_no_exception(page, "Ideal image")
    screenshot(page, shots / "ideal_rendered.png")

    # Attack: PGD (the default) on the first test image of the run.
    go_to(page, "Attack")
    wait_run_chosen(page, run_id)
    page.get_by_text("True class:").first.wait_for()
    page.get_by_role("button").filter(has_text=re.compile(r"Attack$")).click()
    metric(page, "L-inf (px)")
    image_loaded(page, "Original: ")
    image_loaded(page, "Adversarial: ")
    plot_titled(page, "Before")
    plot_titled(page, "After")
    settle(page)
    assert_no_exception(page, "Attack")
    screenshot(page, shots / "attack_result.png")
