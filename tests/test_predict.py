"""Predicting many images: the app's own answer for each good file, a reason for each bad
one without losing the rest, zips extracted safely, limits, stopping, CSV and JSON."""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from tlcore import config, images, models, predict

pytestmark = pytest.mark.slow  # trains the session's tiny run when no other test has


def png(colour: tuple[int, int, int], size: int = 40) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


GOOD = {"red.png": png((220, 40, 40)), "blue.png": png((40, 60, 220), 64)}
TRUNCATED = png((40, 200, 60))[:60]


@pytest.fixture(scope="module")
def model(tiny_run):
    """The tiny run's classifier, loaded once (each load traces its graph again)."""
    return tiny_run.load_model()


def expected(model, classes: list[str], content: bytes, k: int
             ) -> tuple[list[str], np.ndarray]:
    """The top k classes and probabilities as the Try it panel computes them."""
    pixels = images.load_image(content, models.input_size(model)).astype(np.float32)[None]
    probabilities = models.softmax(models.predict_logits(model, pixels))[0]
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [classes[index] for index in order], probabilities[order]


def zipped(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_good_files_get_the_apps_answer_and_bad_ones_their_reason(tiny_run, model):
    sources = [("red.png", GOOD["red.png"]), ("cut.png", TRUNCATED),
               ("notes.jpg", b"a shopping list, not an image"), ("blue.png", GOOD["blue.png"])]
    steps = []
    rows = predict.predict_files(model, tiny_run.classes, sources, k=2,
                                 thumbnail_side=16,
                                 on_step=lambda step, total, _: steps.append((step, total)))
    assert [row["file"] for row in rows] == [name for name, _ in sources]
    for row in (rows[0], rows[3]):
        classes, probabilities = expected(model, tiny_run.classes, GOOD[row["file"]], k=2)
        assert row["error"] is None and row["classes"] == classes
        assert row["probabilities"] == pytest.approx(probabilities.tolist(), abs=1e-5)
        assert row["thumbnail"].startswith("data:image/jpeg;base64,")
    assert "damaged or cut short" in rows[1]["error"] and rows[1]["classes"] == []
    assert rows[2]["error"].startswith("not a readable image") and "thumbnail" not in rows[2]
    assert steps[0] == (0, 4) and steps[-1] == (4, 4)  # no zip: no unpacking step


def test_a_zip_stands_for_its_images_and_a_hostile_one_is_refused_alone(tiny_run, model, tmp_path):
    photos = zipped({"shots/red.png": GOOD["red.png"], "shots/readme.txt": b"hello",
                     "__MACOSX/shots/._red.png": b"resource fork", "shots/.hidden.png": b"x",
                     "blue.png": GOOD["blue.png"]})
    hostile = zipped({"../escape.png": GOOD["red.png"]})
    (tmp_path / "folder" / "deep").mkdir(parents=True)
    (tmp_path / "folder" / "deep" / "red.png").write_bytes(GOOD["red.png"])
    rows = predict.predict_files(
        model, tiny_run.classes,
        [("photos.zip", photos), ("evil.zip", hostile), ("folder", tmp_path / "folder"),
         ("bad.zip", b"not a zip at all")])
    by_file = {row["file"]: row for row in rows}
    assert list(by_file) == ["photos.zip/blue.png", "photos.zip/shots/readme.txt",
                             "photos.zip/shots/red.png", "evil.zip", "folder/deep/red.png",
                             "bad.zip"]
    assert by_file["photos.zip/shots/red.png"]["classes"] == expected(
        model, tiny_run.classes, GOOD["red.png"], predict.TOP_K)[0]
    assert by_file["folder/deep/red.png"]["classes"] == by_file[
        "photos.zip/shots/red.png"]["classes"]
    assert by_file["photos.zip/shots/readme.txt"]["error"] == "not an image file type (.txt)"
    assert "points outside the extraction folder" in by_file["evil.zip"]["error"]
    assert "not a zip archive" in by_file["bad.zip"]["error"]
    assert not (tmp_path / "escape.png").exists()
    assert not list(config.cache_dir().glob(".tmp-predict-*"))  # the extraction is gone


def test_the_limits_bound_files_and_zips(tiny_run, model, monkeypatch):
    monkeypatch.setenv("TLCORE_PUBLIC_DEMO", "1")
    monkeypatch.setattr(config, "DEMO_LIMITS", dataclasses.replace(
        config.DEMO_LIMITS, archive_files=3, image_megapixels=0.001))
    with pytest.raises(config.LimitError, match="images to predict: 4 is over"):
        predict.predict_files(model, tiny_run.classes, [(f"{n}.png", GOOD["red.png"])
                                                       for n in range(4)])
    many = zipped({f"{n}.png": GOOD["red.png"] for n in range(3)})
    rows = predict.predict_files(model, tiny_run.classes,
                                 [("one.png", GOOD["red.png"]), ("many.zip", many),
                                  ("big.png", GOOD["blue.png"])])
    assert [row["file"] for row in rows] == ["one.png", "many.zip", "big.png"]
    assert "at most 2 are allowed" in rows[1]["error"]  # what one file left of the 3
    assert "64x64 pixels is more than the 1,000 allowed" in rows[2]["error"]
    assert "uploaded image" not in rows[2]["error"]


def test_stopping_keeps_the_batches_done(tiny_run, model, monkeypatch):
    monkeypatch.setattr(predict, "BATCH_IMAGES", 2)
    asked = []
    rows = predict.predict_files(model, tiny_run.classes,
                                 [(f"{n}.png", GOOD["red.png"]) for n in range(5)],
                                 should_stop=lambda: asked.append(1) or len(asked) > 1)
    assert [row["file"] for row in rows] == ["0.png", "1.png"]


def test_the_csv_and_the_command_lines_result(tiny_run, tmp_path):
    for name, content in [*GOOD.items(), ("cut.png", TRUNCATED)]:
        (tmp_path / name).write_bytes(content)
    paths = [tmp_path / name for name in ("red.png", "cut.png", "blue.png")]
    result = json.loads(json.dumps(predict.predict_run(tiny_run, paths, k=2)))
    assert (result["run"], result["top_k"]) == (tiny_run.run_id, 2)
    assert (result["images"], result["unreadable"]) == (2, 1)
    assert [row["file"] for row in result["predictions"]] == [str(path) for path in paths]
    table = list(csv.reader(io.StringIO(predict.rows_csv(result["predictions"]))))
    assert table[0] == ["file", "class_1", "probability_1", "class_2", "probability_2",
                        "error"]
    first = result["predictions"][0]
    assert table[1][:3] == [str(paths[0]), first["classes"][0],
                            f"{first['probabilities'][0]:.6f}"]
    assert table[2][1:5] == ["", "", "", ""] and "cut short" in table[2][5]


def test_names_a_spreadsheet_would_run_open_as_text():
    rows = [{"file": "=HYPERLINK(\"http://x\").png", "classes": ["+cmd", "cat"],
             "probabilities": [0.75, 0.25], "error": None},
            {"file": "@sum.png", "classes": [], "probabilities": [], "error": "-bad"}]
    table = list(csv.reader(io.StringIO(predict.rows_csv(rows))))
    assert table[1] == ["'=HYPERLINK(\"http://x\").png", "'+cmd", "0.750000", "cat",
                        "0.250000", ""]
    assert table[2] == ["'@sum.png", "", "", "", "", "'-bad"]
    assert '"a;=1+1.png"' in predict.rows_csv([{**rows[1], "file": "a;=1+1.png"}])


def test_top_classes_most_probable_first():
    top = predict.top_classes(np.array([0.1, 0.6, 0.05, 0.25]), ["a", "b", "c", "d"], k=3)
    assert [name for _, name, _ in top] == ["b", "d", "a"]
    with pytest.raises(ValueError, match="3 probabilities for 4 classes"):
        predict.top_classes(np.array([0.2, 0.3, 0.5]), ["a", "b", "c", "d"])


def test_the_runs_page_predicts_many_uploads_as_a_table(tiny_run, model):
    from test_app import by_label, open_page

    app = open_page("app_pages/runs.py", run_id=tiny_run.run_id)
    uploads = [("red.png", GOOD["red.png"], "image/png"), ("cut.png", TRUNCATED, "image/png"),
               ("more.zip", zipped({"blue.png": GOOD["blue.png"]}), "application/zip")]
    by_label(app.get("file_uploader"), "Images, or zips of images").set_value(uploads).run()
    by_label(app.button, "Predict 3 files").click().run()
    assert not app.exception, [error.value for error in app.exception]
    table = next(frame.value for frame in app.dataframe if "confidence" in frame.value)
    assert list(table["file"]) == ["red.png", "cut.png", "more.zip/blue.png"]
    classes, probabilities = expected(model, tiny_run.classes, GOOD["red.png"], 3)
    assert table["class"][0] == classes[0]
    assert table["confidence"][0] == pytest.approx(probabilities[0], abs=1e-5)
    assert table["image"][0].startswith("data:image/jpeg;base64,")
    assert "cut short" in table["problem"][1] and table["class"].isna()[1]
    assert any(caption.value.startswith("2 images predicted; 1 file could not be read")
               for caption in app.caption)
    assert by_label(app.get("download_button"), "Download the table (CSV)")


def test_at_least_one_class_is_asked_for():
    with pytest.raises(ValueError, match="top k=0: ask for at least one class"):
        predict.predict_files(None, ["a", "b"], [("a.png", GOOD["red.png"])], k=0)


def test_the_shared_models_lock_is_held_only_while_the_model_runs(tiny_run, model, monkeypatch):
    monkeypatch.setattr(predict, "BATCH_IMAGES", 2)
    held = []

    class Recording:
        def __enter__(self):
            held.append("enter")

        def __exit__(self, *problem):
            held.append("exit")

    sources = [(f"{n}.png", GOOD["red.png"]) for n in range(5)] + [("cut.png", TRUNCATED)]
    rows = predict.predict_files(model, tiny_run.classes, sources, lock=Recording())
    assert held == ["enter", "exit"] * 3  # a batch at a time: others' predictions go between
    assert [row["error"] is None for row in rows] == [True] * 5 + [False]
