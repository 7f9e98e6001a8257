"""Browser check of the Grad-CAM scale toggle on the Evaluate page: on the common scale
(the default) a class the model rules out looks dimmer than the same map scaled to its own
peak. Skipped without Chromium and Playwright unless TLCORE_REQUIRE_BROWSER=1."""
from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

from bench import load
from tests import test_browser
from tests.test_browser import ROOT, exceptions, settle
from tlcore import config

pytestmark = pytest.mark.slow  # starts a server, a browser or other processes

# The browser and a fresh tab per test, from the main browser tests.
browser, page = test_browser.browser, test_browser.page


@pytest.fixture(scope="module")
def url_with_a_run(browser, tiny_run, tmp_path_factory) -> str:
    """`streamlit run app.py` over the tests' TLCORE_HOME, which holds `tiny_run`."""
    log_path = tmp_path_factory.mktemp("browser-charts") / "streamlit.log"
    with load.serving(ROOT, config.tlcore_home(), log_path, public_demo=False) as url:
        yield url


def grad_cam_brightness(page) -> float:
    """Mean brightness (0-255) of the Grad-CAM picture shown in the explanation panel."""
    picture = page.locator("[data-testid='stImage']").filter(has_text="Grad-CAM").locator("img")
    answer = page.request.get(picture.first.get_attribute("src"))
    return float(np.asarray(Image.open(io.BytesIO(answer.body())).convert("L")).mean())


def evidence_caption(page, class_name: str) -> str:
    caption = page.get_by_text(f"Evidence for {class_name} (p =")
    caption.first.wait_for()
    return caption.first.inner_text()


def test_grad_cam_of_an_unlikely_class_is_dim_on_the_common_scale(page, url_with_a_run, tiny_run):
    page.goto(f"{url_with_a_run}/evaluate")
    # Earlier tests in the session may have saved newer runs: explain this one.
    page.get_by_label("Run", exact=True).first.click()
    page.get_by_role("option", name=re.compile(re.escape(tiny_run.run_id))).click()
    settle(page)
    page.get_by_role("tab", name="Explain an image").click()
    # The confusion matrix's tab has the same toggle, hidden: take the open tab's.
    toggle = page.get_by_role("tabpanel", name="Explain an image").get_by_text(
        "Same Grad-CAM scale for every class")
    toggle.wait_for()
    settle(page)
    predicted = re.search(r"Evidence for (\S+) \(p = ([0-9.]+)\)",
                          page.get_by_text("Evidence for").first.inner_text())
    # The least likely of the other classes (the tiny model is not always confident).
    captions = {}
    for other in [name for name in tiny_run.classes if name != predicted.group(1)]:
        page.get_by_label("Explain the class").click()
        page.get_by_role("option", name=other, exact=True).click()
        captions[other] = evidence_caption(page, other)
        settle(page)
    # A class with nothing speaking for it has an empty map (no scale to compare).
    probabilities = {name: float(re.search(r"\(p = ([0-9.]+)\)", caption).group(1))
                     for name, caption in captions.items() if "Its strongest spot" in caption}
    assert probabilities, captions
    other = min(probabilities, key=probabilities.get)
    if other != list(captions)[-1]:
        page.get_by_label("Explain the class").click()
        page.get_by_role("option", name=other, exact=True).click()
        evidence_caption(page, other)
        settle(page)
    caption, probability = captions[other], probabilities[other]
    spot = float(re.search(r"Its strongest spot is ([0-9.]+) of", caption).group(1))
    common = grad_cam_brightness(page)
    toggle.click()
    page.get_by_text("This map is scaled to its own peak").first.wait_for()
    settle(page)
    own = grad_cam_brightness(page)
    assert probability < float(predicted.group(2)) and spot < 0.9, caption
    assert common < own - 10, (common, own)
    assert exceptions(page) == []
