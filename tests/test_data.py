"""Data sets from folders, zips and the demo generator; stratified seeded splits; the table
of named sources."""
from __future__ import annotations

import ast
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tlcore import data, demo, folders


def test_folder_with_bad_files_skips_and_lists_them(tmp_path, make_image_folder):
    root = make_image_folder(tmp_path / "set", per_class=4)
    (root / "red" / "empty.jpg").write_bytes(b"")
    (root / "red" / "text.jpg").write_text("not an image")
    (root / "blue" / "Thumbs.db").write_bytes(b"\0\1")
    (root / "green" / "truncated.png").write_bytes((root / "green" / "green_000.png").read_bytes()[:60])
    (root / "empty_class").mkdir()
    dataset = data.from_folder(root)
    assert dataset.class_names == ("blue", "green", "red")
    assert dataset.class_counts() == {"blue": 4, "green": 4, "red": 4}
    reasons = {item.path.rsplit("/", 1)[-1]: item.reason for item in dataset.skipped}
    assert reasons["empty.jpg"] == "empty file"
    assert "not a readable image" in reasons["text.jpg"]
    assert "not a readable image" in reasons["truncated.png"]
    assert "not an image file type" in reasons["Thumbs.db"]
    assert reasons["empty_class"] == "class folder has no readable image"


def test_hostile_files_in_a_folder_are_converted_or_skipped_and_reported(tmp_path,
                                                                         make_image_folder):
    from PIL import Image
    root = make_image_folder(tmp_path / "set", per_class=4)
    Image.new("RGB", (1, 1), (9, 9, 9)).save(root / "red" / "one_pixel.png")
    Image.new("RGB", (8, 8), (0, 0, 255)).save(root / "blue" / "really_a_png.jpg", "PNG")
    bomb = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(bomb, "PNG")  # 400 megapixels in a small file
    (root / "green" / "bomb.png").write_bytes(bomb.getvalue())
    nested = io.BytesIO()
    with zipfile.ZipFile(nested, "w") as archive:
        archive.writestr("more/red/x.png", (root / "red" / "red_000.png").read_bytes())
    (root / "green" / "nested.zip").write_bytes(nested.getvalue())
    (root / "stray.png").write_bytes((root / "red" / "red_000.png").read_bytes())
    (root / "README.txt").write_text("a note beside the classes is normal")
    (root / "lonely").mkdir()
    (root / "lonely" / "only.png").write_bytes((root / "red" / "red_000.png").read_bytes())
    dataset = data.from_folder(root)
    reasons = {item.path.rsplit("/", 1)[-1]: item.reason for item in dataset.skipped}
    assert dataset.class_counts() == {"blue": 5, "green": 4, "lonely": 1, "red": 5}
    assert "more pixels than the 50,000,000 allowed" in reasons["bomb.png"]
    assert reasons["nested.zip"] == "not an image file type (.zip)"
    assert reasons["stray.png"] == "not inside a class folder" and "README.txt" not in reasons
    lonely = dataset.class_names.index("lonely")  # its one image trains; none to test
    assert [dataset.labels[i] for i in dataset.splits["train"]].count(lonely) == 1
    images, _ = dataset.split_arrays("train", 16)
    assert images.shape[1:] == (16, 16, 3)  # the 1x1 and the PNG named .jpg decode


def test_a_folder_without_class_folders_says_how_to_arrange_it(tmp_path, make_image_folder):
    make_image_folder(tmp_path / "set", per_class=2)
    flat = tmp_path / "flat"
    flat.mkdir()
    for path in (tmp_path / "set").rglob("*.png"):
        (flat / path.name).write_bytes(path.read_bytes())
    with pytest.raises(ValueError, match="0 class folder.*put each class's images in its own"):
        data.from_folder(flat)


def test_one_class_is_refused_with_the_fix(tmp_path, make_image_folder):
    root = make_image_folder(tmp_path / "set", per_class=3, colours={"only": (1, 2, 3)})
    with pytest.raises(ValueError) as refusal:
        data.from_folder(root)
    assert str(refusal.value).startswith(  # its name, not the server's path to it
        "set has 1 class folder(s) with readable images (found: only); a classifier needs at "
        "least two")


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        data.from_folder(tmp_path / "nope")


def test_splits_are_stratified_disjoint_complete_and_seeded():
    labels = np.repeat(np.arange(3), [20, 10, 1])
    splits = data.stratified_splits(labels, seed=1)
    joined = np.concatenate(list(splits.values()))
    assert sorted(joined.tolist()) == list(range(len(labels)))
    assert np.bincount(labels[splits["test"]], minlength=3).tolist() == [3, 2, 0]
    assert labels[splits["train"]].tolist().count(2) == 1  # a lone image trains
    again = data.stratified_splits(labels, seed=1)
    other = data.stratified_splits(labels, seed=2)
    assert all(np.array_equal(splits[k], again[k]) for k in splits)
    assert not all(np.array_equal(splits[k], other[k]) for k in splits)


def test_zip_with_a_top_level_folder(tmp_path, make_image_folder):
    root = make_image_folder(tmp_path / "pets", per_class=3)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in root.rglob("*.png"):
            archive.write(path, f"pets/{path.relative_to(root)}")
    dataset = data.from_zip(buffer.getvalue(), name="pets")
    assert dataset.class_names == ("blue", "green", "red")
    assert data.load_dataset(dataset.source).class_names == dataset.class_names


def _root_level_zip(root: Path) -> bytes:
    """A zip of `root` whose class folders sit at its root (no top folder)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in root.rglob("*.png"):
            archive.write(path, str(path.relative_to(root)))
    return buffer.getvalue()


def test_a_zip_uploaded_again_takes_its_new_file_name(tmp_path, make_image_folder):
    content = _root_level_zip(make_image_folder(tmp_path / "flowers", per_class=3))
    uploads = tmp_path / "up"
    first = data.from_zip(content, name="flowers.zip", into=uploads)
    (Path(first.source) / folders.NAME_FILE).unlink()  # extracted by a version that kept none
    assert data.load_dataset(first.source).name == Path(first.source).name  # its hash
    again = data.from_zip(content, name="flowers.zip", into=uploads)
    assert again.source == first.source
    assert data.load_dataset(first.source).name == "flowers.zip"
    data.from_zip(content, name="petals.zip", into=uploads)
    assert data.load_dataset(first.source).name == "petals.zip"
    assert data.extracted_zips(uploads) == {first.source: "petals.zip"}


def test_split_arrays_are_pixels_and_labels(tiny_folder):
    dataset = data.from_folder(tiny_folder)
    images, labels = dataset.split_arrays("train", 24)
    assert images.shape == (len(labels), 24, 24, 3) and images.dtype == np.uint8
    assert set(labels.tolist()) == {0, 1, 2}


def test_demo_images_are_seeded_and_distinct(tmp_path):
    first = demo.ensure_demo_images(tmp_path / "a", seed=3, images_per_class=2)
    second = demo.ensure_demo_images(tmp_path / "b", seed=3, images_per_class=2)
    files = sorted(p.relative_to(first) for p in first.rglob("*.png"))
    assert len(files) == 2 * len(demo.CLASS_NAMES)
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)
    assert len({(first / f).read_bytes() for f in files}) == len(files)


def test_demo_dataset_is_labelled_synthetic():
    dataset = data.demo_dataset()
    assert dataset.synthetic and dataset.source == "demo" and dataset.native_size == 96
    assert dataset.num_classes >= 4 and len(dataset.paths) >= 300
    assert data.load_dataset("demo").fingerprint() == dataset.fingerprint()


def test_unknown_source_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not 'demo'"):
        data.load_dataset(str(tmp_path / "missing.tar"))


def test_truncated_jpeg_that_passes_a_header_check_is_skipped(tmp_path, make_image_folder):
    import numpy as np
    from PIL import Image
    root = make_image_folder(tmp_path / "set", per_class=3)
    noisy = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    whole = tmp_path / "whole.jpg"
    Image.fromarray(noisy).save(whole, quality=95)
    (root / "red" / "cut.jpg").write_bytes(whole.read_bytes()[:-2000])
    dataset = data.from_folder(root)
    assert [s.path.rsplit("/", 1)[-1] for s in dataset.skipped] == ["cut.jpg"]
    assert dataset.split_arrays("train", 16)[0].shape[1:] == (16, 16, 3)


def test_source_stamp_changes_when_a_file_is_added(tmp_path, make_image_folder):
    root = make_image_folder(tmp_path / "set", per_class=2)
    before = data.source_stamp(str(root))
    import os, time
    time.sleep(0.01)
    (root / "red" / "extra.png").write_bytes((root / "red" / "red_000.png").read_bytes())
    os.utime(root / "red")
    assert data.source_stamp(str(root)) != before
    assert data.source_stamp(str(tmp_path / "gone")) == "missing"


def test_a_second_scan_decodes_only_new_or_changed_files(tmp_path, monkeypatch, make_image_folder):
    root = make_image_folder(tmp_path / "set", per_class=3)
    (root / "red" / "broken.png").write_bytes(b"not a png")
    first = data.from_folder(root)
    decoded = []
    original = folders._unreadable_reason
    monkeypatch.setattr(folders, "_unreadable_reason", lambda path: decoded.append(path) or original(path))
    second = data.from_folder(root)
    assert decoded == [] and second.paths == first.paths and second.skipped == first.skipped
    (root / "red" / "red_000.png").write_bytes(b"now broken")
    third = data.from_folder(root)
    assert [p.name for p in decoded] == ["red_000.png"]
    assert {s.path.rsplit("/", 1)[-1] for s in third.skipped} == {"broken.png", "red_000.png"}


def test_a_new_source_is_one_table_entry(tiny_folder, monkeypatch):
    here = []  # empty: not downloaded yet
    source = data.DataSource(label="Tiny colours", download_bytes=1000,
                             open=lambda seed, on_step, should_stop: here.append(1) or
                             data.from_folder(tiny_folder, seed=seed),
                             is_ready=lambda: bool(here))
    monkeypatch.setitem(data.SOURCES, "tiny", source)
    assert data.needs_download("tiny") and data.source_stamp("tiny") == "tiny:True"
    assert "tiny" in data.sources_in_words()
    monkeypatch.setenv("TLCORE_PUBLIC_DEMO", "1")
    with pytest.raises(ValueError, match="not available in this demo"):
        data.load_dataset("tiny")
    monkeypatch.delenv("TLCORE_PUBLIC_DEMO")
    assert data.load_dataset("tiny", seed=1).class_names == ("blue", "green", "red")
    assert not data.needs_download("tiny") and data.source_stamp("tiny") == "tiny:False"
    with pytest.raises(ValueError, match="'petimages', 'tiny', a folder"):
        data.load_dataset("nowhere")


def tlcore_imports(module) -> set[str]:
    """The tlcore modules a module imports anywhere in it (lazy imports too)."""
    found = set()
    for node in ast.walk(ast.parse(Path(module.__file__).read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "tlcore":
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tlcore."):
            found.add(node.module.split(".")[1])
    return found


def test_the_sources_build_on_folders_so_data_imports_them_without_a_cycle():
    from tlcore import pets, petimages

    assert {"pets", "petimages", "folders"} <= tlcore_imports(data)
    for module in (folders, demo, pets, petimages):
        assert "data" not in tlcore_imports(module), module.__name__
