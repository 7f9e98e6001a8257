"""Built data sets: immutable versions sharing files as hard links, names and files checked
on the way in, limits and quotas, and a run's version kept through later edits."""
from __future__ import annotations

import dataclasses
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tlcore import builder, config, data, runs, visitors
from ui import state

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def own_home(monkeypatch, tmp_path):
    """Each test its own TLCORE_HOME: its runs and data sets are nobody else's."""
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path / "home"))


def picture(value: int, size: tuple[int, int] = (24, 20), kind: str = "PNG") -> bytes:
    """An image file of one colour with some noise (so each `value` is another file)."""
    pixels = np.random.default_rng(value).integers(0, 40, (size[1], size[0], 3)) + value
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, format=kind)
    return buffer.getvalue()


def two_classes(name: str = "fruit", per_class: int = 3, owner: str | None = None
                ) -> builder.BuiltDataset:
    built = builder.create(name, owner)
    for offset, class_name in ((0, "apples"), (100, "pears")):
        built.add_class(class_name)
        added, refused = built.add_images(class_name, [(f"{i}.png", picture(offset + i))
                                                       for i in range(per_class)])
        assert (added, refused) == (per_class, [])
    return built


def test_each_save_is_a_new_version_and_unchanged_files_are_shared():
    built = two_classes()
    first = built.save()
    assert not built.has_changes() and first.name == "v0001"
    built.add_images("apples", [("broken.png", b"not an image")])
    assert not built.has_changes()  # nothing came in: nothing to save
    apples = [f"apples/{path.name}" for path in built.classes()["apples"]]
    built.remove_images(apples[:1])
    built.move_images(apples[1:2], "pears")
    second = built.save()

    assert [version.name for version in built.versions()] == ["v0001", "v0002"]
    old, new = data.load_dataset(str(first)), data.load_dataset(str(second))
    assert old.class_counts() == {"apples": 3, "pears": 3}  # the first version is untouched
    assert new.class_counts() == {"apples": 1, "pears": 4}
    assert new.name == "fruit (version 2)" and new.source == str(second.resolve())
    kept = first / apples[2]
    assert (second / apples[2]).stat().st_ino == kept.stat().st_ino  # a hard link
    assert (second / "pears" / kept.name).exists() is False
    moved = second / "pears" / apples[1].split("/")[1]
    assert moved.stat().st_ino == (first / apples[1]).stat().st_ino
    # Hard-linked files count once in a visitor's disk use.
    unique = {path.stat().st_ino: path.stat().st_size
              for path in built.folder.rglob("*") if path.is_file()}
    assert visitors.folder_bytes(built.folder) == sum(unique.values())


@pytest.mark.parametrize("name", ["", "   ", "a/b", "a\\b", ".hidden", "..", "tab\there",
                                  "__MACOSX", "x" * 61, "zero\u200bwidth", "\u200b",
                                  "\u202eevil"])
def test_bad_class_names_are_refused(name):
    built = builder.create("names")
    with pytest.raises(ValueError, match="class name"):
        built.add_class(name)
    assert built.classes() == {}


def test_names_are_unique_whatever_the_letter_case_and_the_accents_form(make_image_folder,
                                                                         tmp_path):
    built = two_classes()
    with pytest.raises(ValueError, match="already"):
        built.add_class("Apples")
    assert built.add_class("cafe\u0301") == "caf\u00e9"  # one form: "é" as one character
    with pytest.raises(ValueError, match="already"):
        built.add_class("caf\u00e9")
    twins = make_image_folder(tmp_path / "twins", per_class=2,
                              colours={"Cat": (200, 0, 0), "cat": (0, 0, 200)})
    with pytest.raises(ValueError, match="'Cat' and 'cat': names must differ by more than"):
        builder.create("twins").start_from(data.from_folder(twins))
    with pytest.raises(ValueError, match="already"):
        builder.create("FRUIT")
    with pytest.raises(ValueError, match="no class"):
        built.move_images([f"apples/{built.classes()['apples'][0].name}"], "plums")


def test_bad_files_are_left_out_one_by_one_and_stored_under_made_up_names(monkeypatch):
    monkeypatch.setattr(config, "OWN_LIMITS", dataclasses.replace(
        config.OWN_LIMITS, image_megapixels=0.5))
    built = builder.create("checked")
    built.add_class("things")
    truncated = picture(7, (64, 64), "JPEG")[:300]
    added, refused = built.add_images("things", [
        ("../../escape.png", picture(1)), ("photo.jpg", picture(2, (1200, 300), "JPEG")),
        ("notes.txt", b"just some words"), ("cut.jpg", truncated),
        ("huge.png", picture(3, (1000, 600))), ("again.png", picture(1))])

    assert added == 2  # "again.png" is the first file once more
    assert [item.path for item in refused] == ["notes.txt", "cut.jpg", "huge.png"]
    assert "not a readable image" in refused[0].reason
    assert "damaged or cut short" in refused[1].reason
    assert refused[2].reason == "1000x600 pixels is more than the 500,000 allowed here"
    stored = built.classes()["things"]
    assert sorted(path.suffix for path in stored) == [".jpg", ".png"]
    assert all(len(path.stem) == 16 for path in stored)  # a hash, never the uploaded name
    assert not list(built.folder.parent.parent.rglob("escape*"))
    with Image.open(next(path for path in stored if path.suffix == ".jpg")) as photo:
        assert max(photo.size) == builder.STORED_SIDE  # bounded, proportions kept
        assert photo.size == (512, 128)


def test_a_demo_visitor_stays_within_the_image_limit_and_the_disk_quota(monkeypatch):
    monkeypatch.setenv("TLCORE_PUBLIC_DEMO", "1")
    owner = visitors.owner_id(visitors.new_token())
    monkeypatch.setattr(config, "DEMO_LIMITS", dataclasses.replace(
        config.DEMO_LIMITS, dataset_images=4))
    built = two_classes("mine", per_class=2, owner=owner)
    assert built.folder.is_relative_to(visitors.folder(owner))
    assert visitors.owns_source(owner, str(built.save()))
    with pytest.raises(config.LimitError, match="images per built data set"):
        built.add_images("apples", [("one more.png", picture(50))])

    monkeypatch.setattr(config, "DEMO_LIMITS", dataclasses.replace(
        config.DEMO_LIMITS, visitor_disk_mb=0))
    second = builder.create("second", owner)
    second.add_class("x")
    with pytest.raises(config.LimitError, match="MB per visitor. Delete a run"):
        second.add_images("x", [("a.png", picture(60, (300, 300)))])
    assert second.image_count() == 0
    assert built.image_count() == 4


def test_copies_are_skipped_undecoded_and_a_stop_keeps_what_was_added(monkeypatch):
    decoded = []
    encode = builder.encode
    monkeypatch.setattr(builder, "encode", lambda content: decoded.append(1) or encode(content))
    built = builder.create("copies")
    built.add_class("things")
    assert built.add_images("things", [("a.png", picture(1))]) == (1, [])
    files = [("a again.png", picture(1))] * 50 + [(f"{i}.png", picture(10 + i)) for i in range(4)]
    asked = []
    added, refused = built.add_images("things", files,
                                      should_stop=lambda: asked.append(1) or len(asked) > 2)
    assert (added, refused, len(decoded)) == (2, [], 3)  # a.png once; stopped after two
    assert built.add_images("things", files) == (2, [])  # the rest, with nothing decoded twice
    assert len(decoded) == 5 and built.image_count() == 5

    monkeypatch.setattr(config, "OWN_LIMITS", dataclasses.replace(
        config.OWN_LIMITS, added_images=3))
    with pytest.raises(config.LimitError, match="images added at once: 4 is over"):
        built.add_images("things", [(f"{i}.png", picture(50 + i)) for i in range(4)])
    assert built.image_count() == 5


def by_label(elements, label: str):
    return next(element for element in elements if element.label == label)


def test_classes_whose_names_nest_each_others_keys_draw_without_a_clash():
    """Class `a`'s "Remove the class" once had the key of class-a's "Remove the picked";
    a strip of 512x3 pixels once stopped the page (shrunk to 96 px wide, 0 px high)."""
    built = builder.create("nested")
    for offset, class_name in ((0, "a"), (100, "class-a"), (200, "x"), (300, "on-x")):
        built.add_class(class_name)
        built.add_images(class_name, [(f"{i}.png", picture(offset + i)) for i in range(2)])
    built.add_images("a", [("strip.png", picture(7, (1000, 5))),
                           ("column.png", picture(8, (5, 1000)))])  # 512x3, 3x512 stored
    built.save()
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    app.session_state[state.DATA_SOURCE] = str(built.latest())
    app.run()
    app.switch_page("app_pages/data.py").run()
    assert not app.exception, [error.value for error in app.exception]
    labels = [button.label.replace("\\", "") for button in app.button]  # markdown escapes
    assert {"Remove the class a", "Remove the class class-a"} <= set(labels)
    assert sum(label.startswith("Remove the picked") for label in labels) == 4


def fake_run(version, seed: int = 0) -> dict:
    """A run folder that says it was trained on `version` (as train.py records it)."""
    dataset = data.load_dataset(str(version), seed=seed)
    record = {"source": dataset.source, "seed": seed, "fingerprint": dataset.fingerprint()}
    folder = config.runs_dir() / "20260101-000000-small_cnn-fast-0123456789abcdef"
    folder.mkdir(parents=True)
    (folder / runs.MODEL_FILE).write_bytes(b"")
    runs.write_info(folder, {"classes": list(dataset.class_names), "image_size": 32,
                             "config": {}, "data": {**record, "name": dataset.name}})
    return record


def test_the_version_a_run_used_survives_edits_and_pruning():
    built = two_classes()
    record = fake_run(built.save())
    apples = [f"apples/{path.name}" for path in built.classes()["apples"]]
    built.revise(remove=apples[:1])
    third = built.revise(move={apples[1]: "pears"})

    assert [version.name for version in built.prune(keep_seconds=60)] == []  # too recent
    assert [version.name for version in built.prune(keep_seconds=0)] == ["v0002"]
    assert [version.name for version in built.versions()] == ["v0001", "v0003"]
    reopened = data.reopen(record, "the test")  # same files, same fingerprint
    assert reopened.class_counts() == {"apples": 3, "pears": 3}
    assert data.load_dataset(str(third)).class_counts() == {"apples": 1, "pears": 4}
    with pytest.raises(ValueError, match="not in the newest version"):
        built.revise(remove=apples[:1])


def test_a_revision_reaches_unsaved_changes_too():
    built = two_classes()
    built.save()
    built.add_class("plums")
    built.add_images("plums", [("p.png", picture(200))])
    apple = f"apples/{built.classes()['apples'][0].name}"
    built.revise(remove=[apple])
    assert built.has_changes() and apple.split("/")[1] not in [
        path.name for path in built.classes()["apples"]]
    assert data.load_dataset(str(built.save())).class_counts() == {
        "apples": 2, "pears": 3, "plums": 1}


def test_a_copy_of_a_folder_finds_a_runs_image_and_edits_it(tmp_path, make_image_folder):
    folder = make_image_folder(tmp_path / "colours", per_class=3, size=16)
    original = data.load_dataset(str(folder))
    built = builder.create("colours (copy)")
    steps = []
    built.start_from(original, on_step=lambda done, total, metrics: steps.append((done, total)))
    version = built.save()

    assert steps[-1] == (9, 9)
    assert builder.copy_of(original.fingerprint()) == built
    assert json.loads((built.folder / builder.ORIGIN_FILE).read_text())["source"] == str(
        folder.resolve())
    label = original.class_names[int(original.labels[0])]
    image_id = built.find(original.paths[0], label)
    assert image_id is not None and image_id.startswith(f"{label}/")
    built.revise(remove=[image_id])
    assert built.find(original.paths[0], label) is None
    # A copy of a version links its files rather than storing them again.
    again = builder.create("again")
    again.start_from(data.load_dataset(str(version)))
    first = again.classes()[label][0]
    assert first.stat().st_ino == (version / label / first.name).stat().st_ino
    assert builder.of_source(str(version)) == built and builder.of_source(str(folder)) is None


def mislabelled_run(tiny_run, folder) -> runs.Run:
    """tiny_run's model (it tells colours apart) as a run trained on `folder`, whose class
    folders hold the wrong colours: its test split is full of confident mistakes."""
    dataset = data.load_dataset(str(folder))
    run_dir = config.runs_dir() / f"{tiny_run.run_id}-mislabelled"
    shutil.copytree(tiny_run.run_dir, run_dir)
    info = {**tiny_run.info, "data": {"source": dataset.source, "name": dataset.name,
                                      "seed": 0, "fingerprint": dataset.fingerprint()}}
    runs.write_info(run_dir, info)
    return runs.load_run(run_dir)


def test_the_evaluate_page_fixes_confident_mistakes_in_a_new_version(tiny_run, tmp_path,
                                                                     make_image_folder):
    swapped = {"blue": (220, 40, 40), "green": (40, 200, 60), "red": (40, 60, 220)}
    run = mislabelled_run(tiny_run, make_image_folder(tmp_path / "swapped", per_class=6,
                                                      colours=swapped))
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    app.session_state[state.RUN_ID] = run.run_id
    app.run()
    app.switch_page("app_pages/evaluate.py").run()
    app.session_state["evaluate-view"] = "Mistakes"
    app.run()
    by_label(app.button, "Make an editable copy of this data set").click().run()
    assert not app.exception, [error.value for error in app.exception]

    (built,) = builder.list_built()
    first = built.latest()
    before = data.load_dataset(str(first)).class_counts()
    by_label(app.button, "Remove from the data set").click().run()
    assert not app.exception, [error.value for error in app.exception]
    moves = [button for button in app.button if button.label.startswith("Move to class")]
    moves[0].click().run()
    assert not app.exception, [error.value for error in app.exception]

    assert [version.name for version in built.versions()] == ["v0001", "v0002", "v0003"]
    after = data.load_dataset(str(built.latest())).class_counts()
    assert sum(after.values()) == sum(before.values()) - 1 and after != before
    assert app.session_state[state.DATA_SOURCE] == str(built.latest())
    assert any("This run keeps the version it was trained on" in item.value
               for item in app.success)
    assert runs.load_run(run.run_dir).info["data"] == run.info["data"]
    assert data.load_dataset(str(first)).class_counts() == before
