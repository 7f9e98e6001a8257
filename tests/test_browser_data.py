"""Browser tests of the Data page's Source choice: every click takes the first time, a
source with nothing chosen yet shows nothing but its own widgets, an uploaded zip keeps its
file's name, and the Train page uses exactly the data set the Data page shows.

A real `streamlit run app.py` through headless Chromium (skipped without it, like
tests/test_browser.py, whose fixtures and helpers these reuse), on its own server and in
a public demo (`TLCORE_PUBLIC_DEMO=1`).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import test_browser
from bench import load
from test_browser import (ROOT, assert_no_exception, expect, go_to, screenshot, settle,
                          wait_title)
from tlcore import demo

pytestmark = pytest.mark.slow  # starts a server, a browser or other processes

# The fixtures shared with tests/test_browser.py (this module gets its own server).
browser, app_url, page, shots = (test_browser.browser, test_browser.app_url, test_browser.page,
                                 test_browser.shots)

DEMO_SET = "Built-in demo set (synthetic, offline)"
ZIP = "Upload a zip of class folders"
UPLOADER = "Zip of class folders"
UPLOADS = "Your uploads"
FOLDER = "A folder on this server"


@pytest.fixture(scope="module")
def zips(tmp_path_factory) -> dict[str, Path]:
    """Two small zips whose class folders sit at the zip's root (no top folder)."""
    folder = tmp_path_factory.mktemp("zips")
    return {name: load.make_zip(folder / f"{name}.zip", seed=seed, per_class=6, size=32)
            for seed, name in enumerate(("flowers", "leaves"))}


@pytest.fixture(scope="module")
def demo_url(browser, tmp_path_factory) -> str:
    """The app served as a public demo (bench/load.py's server), with its own home."""
    folder = tmp_path_factory.mktemp("browser-demo")
    with load.serving(ROOT, folder / "home", folder / "streamlit.log") as url:
        yield url


def open_data_page(page, base: str) -> None:
    page.goto(f"{base}/data")
    page.wait_for_selector("[data-testid='stApp']")
    wait_title(page, "Data")


def source_option(page, label: str):
    """The Source radio's option `label` (its input element)."""
    return page.locator("[data-testid='stRadio']").filter(has_text="Source").first \
        .get_by_role("radio", name=label, exact=True)


def click_source(page, label: str) -> None:
    """Click a Source option once, and wait for the page's run to end."""
    page.locator("[data-testid='stRadio']").filter(has_text="Source").first \
        .get_by_text(label, exact=True).click()
    settle(page)


def data_set_name(page) -> list[str]:
    """The page's subheadings (the data set's name is the first one, when one is shown)."""
    return page.locator("[data-testid='stHeading'] h3").all_inner_texts()


def upload(page, path: Path) -> None:
    """Choose "Upload a zip", upload `path`, and wait for its data set to be shown."""
    click_source(page, ZIP)
    page.locator("[data-testid='stFileUploader']").filter(has_text=UPLOADER).first \
        .locator("input[type='file']").set_input_files(str(path))
    page.locator("[data-testid='stHeading'] h3").filter(has_text=path.name).first.wait_for()
    settle(page)


def shows_demo_set(page) -> None:
    """The demo set is chosen in the radio and shown below it."""
    expect(source_option(page, DEMO_SET)).to_be_checked()
    page.locator("[data-testid='stHeading'] h3").filter(has_text=demo.DEMO_NAME).first.wait_for()
    assert data_set_name(page)[0] == demo.DEMO_NAME, data_set_name(page)


def train_page_data(page) -> str:
    """What the Train page says it will train on (its "Data: ..." line, or its message)."""
    go_to(page, "Train")
    said = page.locator("[data-testid='stCaptionContainer']").filter(
        has_text=re.compile(r"^Data: ")).or_(page.locator("[data-testid='stAlert']")).first
    said.wait_for()
    return said.inner_text().strip()


def test_one_click_on_the_demo_set_after_an_upload_takes(app_url, page, zips, shots):
    open_data_page(page, app_url)
    upload(page, zips["flowers"])
    expect(source_option(page, ZIP)).to_be_checked()
    assert data_set_name(page)[0] == "flowers.zip"  # a zip without a top folder: its name
    screenshot(page, shots / "data_zip_uploaded.png")
    click_source(page, DEMO_SET)
    shows_demo_set(page)
    assert page.get_by_label("Folder of class folders").count() == 0
    assert_no_exception(page, "Data after one click on the demo set")
    screenshot(page, shots / "data_demo_after_upload.png")
    assert train_page_data(page).startswith(f"Data: {demo.DEMO_NAME}")
    # A server folder starts empty (never the upload's folder), and nothing shows below it.
    go_to(page, "Data")
    click_source(page, FOLDER)
    expect(source_option(page, FOLDER)).to_be_checked()
    assert page.get_by_label("Folder of class folders").input_value() == ""
    assert data_set_name(page) == []
    assert "No folder is chosen yet" in train_page_data(page)


def test_upload_a_zip_shows_only_the_uploader_until_a_zip_is_chosen(app_url, page, zips,
                                                                    shots):
    open_data_page(page, app_url)
    shows_demo_set(page)
    click_source(page, ZIP)
    expect(source_option(page, ZIP)).to_be_checked()
    page.locator("[data-testid='stFileUploader']").filter(has_text=UPLOADER).first.wait_for()
    assert data_set_name(page) == [] and page.get_by_text(demo.DEMO_NAME).count() == 0
    assert page.locator("[data-testid='stMetric']").count() == 0
    assert_no_exception(page, "Data with Upload a zip and no zip")
    screenshot(page, shots / "data_zip_empty.png")
    said = train_page_data(page)
    assert not said.startswith("Data:") and "zip" in said, said  # never the old source
    screenshot(page, shots / "train_no_zip.png")

    # Back on the Data page the choice is as it was left; an upload then takes.
    go_to(page, "Data")
    expect(source_option(page, ZIP)).to_be_checked()
    assert data_set_name(page) == []
    page.locator("[data-testid='stFileUploader']").filter(has_text=UPLOADER).first \
        .locator("input[type='file']").set_input_files(str(zips["leaves"]))
    page.locator("[data-testid='stHeading'] h3").filter(has_text="leaves.zip").first.wait_for()
    settle(page)
    assert train_page_data(page).startswith("Data: leaves.zip")
    # ...and survives the page change: the Data page still shows it, picked in the list.
    go_to(page, "Data")
    expect(source_option(page, ZIP)).to_be_checked()
    assert data_set_name(page)[0] == "leaves.zip"
    expect(page.get_by_role("combobox", name=UPLOADS, exact=True)).to_have_value("leaves.zip")


def test_an_earlier_upload_is_picked_from_the_list(app_url, page, zips):
    open_data_page(page, app_url)
    upload(page, zips["flowers"])
    click_source(page, DEMO_SET)
    shows_demo_set(page)
    click_source(page, ZIP)
    assert data_set_name(page) == []  # nothing until a zip is chosen
    box = page.get_by_role("combobox", name=UPLOADS, exact=True)
    box.click()
    page.get_by_role("option", name="flowers.zip", exact=True).click()
    page.locator("[data-testid='stHeading'] h3").filter(has_text="flowers.zip").first.wait_for()
    settle(page)
    assert train_page_data(page).startswith("Data: flowers.zip")


def test_public_demo_one_click_on_the_demo_set_after_an_upload_takes(demo_url, page, zips,
                                                                     shots):
    open_data_page(page, demo_url)
    upload(page, zips["flowers"])
    click_source(page, DEMO_SET)
    shows_demo_set(page)
    assert_no_exception(page, "public demo: Data after one click on the demo set")
    screenshot(page, shots / "data_demo_public_after_upload.png")
    assert train_page_data(page).startswith(f"Data: {demo.DEMO_NAME}")
    go_to(page, "Data")
    shows_demo_set(page)
    click_source(page, ZIP)
    assert data_set_name(page) == []
    box = page.get_by_role("combobox", name=UPLOADS, exact=True)
    expect(box).to_have_value("")  # none picked: its placeholder says what to do
    expect(box).to_have_attribute("placeholder", re.compile("upload a zip"))
    screenshot(page, shots / "data_zip_public_pick.png")


def test_a_refused_zip_leaves_nothing_to_train_on(app_url, page, tmp_path):
    """A zip the server refuses shows why, nothing below, and the Train page does not fall
    back to the data set chosen before it."""
    one_class = load.make_zip(tmp_path / "one class.zip", classes=1, per_class=4, size=32)
    open_data_page(page, app_url)
    shows_demo_set(page)
    click_source(page, ZIP)
    page.locator("[data-testid='stFileUploader']").filter(has_text=UPLOADER).first \
        .locator("input[type='file']").set_input_files(str(one_class))
    page.locator("[data-testid='stAlert']").filter(has_text="at least two").first.wait_for()
    settle(page)
    assert data_set_name(page) == []
    said = train_page_data(page)
    assert not said.startswith("Data:") and "at least two" in said, said
