"""Predict many images at once: each file's top classes, or why it could not be read.

The app's "Many images" table and the CLI's `predict` command. Files are decoded and
classified a batch at a time, so memory stays bounded however many there are; a file that
is not a readable image gets its reason in its row and the others go on. A zip among the
files is extracted through `archives.extract_zip` (nothing in it trusted) into a temporary
folder under `$TLCORE_HOME` that goes when the prediction ends (`atomic.sweep` removes one
a killed process left). Bounds come from `config.limits()`: every file and zip entry
counts against `archive_files`, all zips together expand to at most `extracted_mb`, each
image declares at most `image_megapixels` (`images.load_image`).
"""
from __future__ import annotations

import base64
import contextlib
import csv
import io
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator, Sequence, Union

import keras
import numpy as np
from PIL import Image

from tlcore import archives, atomic, config, folders, images, models, runs
from tlcore.config import StepCallback

TOP_K = 3
BATCH_IMAGES = 32  # decoded at once: 32 images at 224 px are 19 MB of float pixels
ZIP_SUFFIX = ".zip"
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet runs such a cell
_UNNAMED = "uploaded image: "  # how images.load_image names a file given as bytes

Source = Union[Path, bytes]  # a file on this machine (an image, a zip, a folder) or an upload
# An expanded file: an image's path or bytes, or why it was refused before decoding.
_File = tuple[str, Union[Path, bytes, ValueError]]


def top_classes(probabilities: np.ndarray, classes: Sequence[str], k: int = TOP_K
                ) -> list[tuple[int, str, float]]:
    """The k most probable classes, most probable first.

    Args:
        probabilities: (K,) class probabilities that sum to 1.
        classes: the K class names.
        k: how many to return (fewer when the model has fewer classes).

    Returns:
        (class index, class name, probability) tuples.

    Raises:
        ValueError: the probabilities and the class names differ in length.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if len(probabilities) != len(classes):
        raise ValueError(f"{len(probabilities)} probabilities for {len(classes)} classes")
    order = np.argsort(-probabilities, kind="stable")[:max(0, k)]
    return [(int(index), classes[index], float(probabilities[index])) for index in order]


def predict_files(model: keras.Model, classes: Sequence[str],
                  sources: Sequence[tuple[str, Source]], *, k: int = TOP_K,
                  thumbnail_side: int | None = None, on_step: StepCallback | None = None,
                  should_stop: Callable[[], bool] | None = None,
                  lock: ContextManager | None = None) -> list[dict[str, Any]]:
    """Classify many image files: one row per image, in the order given.

    Args:
        model: a classifier taking (N, S, S, 3) pixels in [0, 255] and returning logits.
        classes: its class names.
        sources: (name, source) pairs: the name for the row, the source a path or the
            file's bytes. A zip (by its name's `.zip`) stands for its files, named
            "zip name/path inside"; a folder (a path) for the files under it.
        k: how many classes each row keeps.
        thumbnail_side: when given, each readable image's row also has "thumbnail": the
            image as the model sees it, at most this side, as a `data:` address (JPEG).
        on_step: progress over the images (`step, total, {"phase": ...}`).
        should_stop: polled before each batch; True ends early with the rows done so far.
        lock: held around each batch's call of the model, not while files are unpacked
            and decoded (a shared model's lock: other visitors' predictions go between).

    Returns:
        Rows of {"file", "classes" (top k, most probable first), "probabilities" (theirs),
        "error" (None, or why the file or zip could not be read; then no classes)}.

    Raises:
        ValueError: k is below 1.
        config.LimitError: more files (zip entries included) than `archive_files`.
    """
    if k < 1:
        raise ValueError(f"top k={k}: ask for at least one class per image")
    side = models.input_size(model)
    with _expanded(sources, on_step) as files:
        config.check_limit("archive_files", len(files), "images to predict")
        rows: list[dict[str, Any]] = []
        for start in range(0, len(files), BATCH_IMAGES):
            if on_step is not None:
                on_step(start, len(files), {"phase": "reading and predicting"})
            if should_stop is not None and should_stop():
                break
            rows += _predict_batch(model, classes, files[start:start + BATCH_IMAGES], side,
                                   k, thumbnail_side, lock or contextlib.nullcontext())
        else:
            if on_step is not None:
                on_step(len(files), len(files), {"phase": "reading and predicting"})
    return rows


def predict_run(run: runs.Run, paths: Sequence[Path], *, k: int = TOP_K,
                on_step: StepCallback | None = None) -> dict[str, Any]:
    """A run's top classes for image files, zips of them and folders (the CLI's `predict`).

    Args:
        run: the run whose model answers.
        paths: images, zips or folders on this machine; rows are named by these paths.
        k: how many classes each row keeps.
        on_step: progress over the images.

    Returns:
        A JSON-able {"run", "classes", "top_k", "images" (rows with classes), "unreadable"
        (rows with an error), "predictions" (the rows, see `predict_files`)}.
    """
    rows = predict_files(run.load_model(), run.classes,
                         [(str(path), Path(path)) for path in paths], k=k, on_step=on_step)
    unreadable = sum(row["error"] is not None for row in rows)
    return {"run": run.run_id, "classes": run.classes, "top_k": k,
            "images": len(rows) - unreadable, "unreadable": unreadable, "predictions": rows}


def rows_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as CSV text: file, then class and probability for each rank, then error.
    A name that a spreadsheet would run as a formula (a file called `=HYPERLINK(...).png`)
    gets a leading apostrophe, and every cell is quoted (a spreadsheet that splits at
    semicolons would otherwise start a new cell, and a formula, inside `a;=1+1.png`)."""
    ranks = max((len(row["classes"]) for row in rows), default=0)
    header = ["file"] + [f"{what}_{rank}" for rank in range(1, ranks + 1)
                         for what in ("class", "probability")] + ["error"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL)
    writer.writerow(header)
    for row in rows:
        ranked = [value for name, probability in zip(row["classes"], row["probabilities"])
                  for value in (_text_cell(name), f"{probability:.6f}")]
        writer.writerow([_text_cell(row["file"]), *ranked, *[""] * (2 * ranks - len(ranked)),
                         _text_cell(row["error"] or "")])
    return buffer.getvalue()


def _text_cell(text: str) -> str:
    """`text` for a CSV cell that a spreadsheet shows and never evaluates."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def thumbnail_uri(image: np.ndarray, side: int) -> str:
    """An (H, W, 3) image in [0, 255], shrunk to at most `side`, as a JPEG `data:` address."""
    picture = Image.fromarray(images.to_uint8(image))
    picture.thumbnail((side, side))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _predict_batch(model: keras.Model, classes: Sequence[str],
                   files: Sequence[_File], side: int, k: int,
                   thumbnail_side: int | None, lock: ContextManager) -> list[dict[str, Any]]:
    """Rows for one batch of files (the model called while holding `lock`); a file that
    cannot be read gets its reason instead."""
    rows: list[dict[str, Any]] = []
    decoded: list[tuple[dict[str, Any], np.ndarray]] = []
    for name, source in files:
        row: dict[str, Any] = {"file": name, "classes": [], "probabilities": [], "error": None}
        rows.append(row)
        try:
            decoded.append((row, _pixels(source, side)))
        except (ValueError, OSError) as problem:  # ImageError is a ValueError
            row["error"] = str(problem).removeprefix(_UNNAMED)
    if not decoded:
        return rows
    pixels = np.stack([image for _, image in decoded])
    with lock:
        logits = models.predict_logits(model, pixels)
    probabilities = models.softmax(logits)
    for (row, image), row_probabilities in zip(decoded, probabilities):
        top = top_classes(row_probabilities, classes, k)
        row["classes"] = [name for _, name, _ in top]
        row["probabilities"] = [probability for _, _, probability in top]
        if thumbnail_side is not None:
            row["thumbnail"] = thumbnail_uri(image, thumbnail_side)
    return rows


def _pixels(source: Path | bytes | ValueError, side: int) -> np.ndarray:
    """Decode one file at the model's side.

    Raises:
        ValueError: why it cannot be used (images.ImageError), or why it was refused
            before (the source itself).
        OSError: the file cannot be read.
    """
    if isinstance(source, ValueError):
        raise source
    # Given as bytes, the file is named "uploaded image" in a refusal, not by its path
    # (a temporary folder of this server): the row names it.
    content = source if isinstance(source, bytes) else source.read_bytes()
    return images.load_image(content, side).astype(np.float32)


@contextlib.contextmanager
def _expanded(sources: Sequence[tuple[str, Source]], on_step: StepCallback | None
              ) -> Iterator[list[_File]]:
    """Yield the image files the sources stand for: zips extracted (into a temporary
    folder removed after the block, each reported to `on_step` entry by entry) and folders
    listed; a refused zip or a file that is not an image by its name stands as the reason
    (a ValueError)."""
    limits = config.limits()
    budget = {"files": limits.archive_files, "bytes": limits.extracted_mb * 2**20}
    folder = Path(tempfile.mkdtemp(prefix=f"{atomic.TEMPORARY_PREFIX}predict-",
                                   dir=_temporary_root()))
    try:
        files: list[_File] = []
        for number, (name, source) in enumerate(sources):
            if name.lower().endswith(ZIP_SUFFIX):
                found = _zip_files(name, source, folder / str(number), budget,
                                   _renamed(on_step, f"unpacking {name}"))
            elif isinstance(source, Path) and source.is_dir():
                found = _listed(name, source, sorted(source.rglob("*")))
            else:
                found = [(name, source)]
            files += found
            budget["files"] -= len(found)
        yield files
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _renamed(on_step: StepCallback | None, phase: str) -> StepCallback | None:
    """`on_step` with every report's phase replaced by `phase`."""
    if on_step is None:
        return None
    return lambda step, total, metrics: on_step(step, total, {**metrics, "phase": phase})


def _zip_files(name: str, source: Source, target: Path, budget: dict[str, int],
               on_step: StepCallback | None = None) -> list[_File]:
    """A zip's files, extracted into `target` within what is left of the budget (their
    bytes are taken from it; `on_step` hears of each entry); a zip refused whole is one
    entry with the reason."""
    target.mkdir()
    try:
        if isinstance(source, bytes):
            config.check_upload(len(source), "the zip")
        extracted = archives.extract_zip(source, target, max_files=budget["files"],
                                         max_total_bytes=budget["bytes"], on_step=on_step)
    except (archives.ArchiveError, config.LimitError, OSError) as problem:
        shutil.rmtree(target, ignore_errors=True)  # a refused zip keeps nothing
        reason = str(problem).replace(str(target), name)  # no temporary folder of ours
        return [(name, archives.ArchiveError(f"this zip was refused: {reason}"))]
    budget["bytes"] -= sum(path.stat().st_size for path in extracted)
    return _listed(name, target, sorted(extracted))


def _listed(name: str, root: Path, paths: Sequence[Path]) -> list[_File]:
    """Files under `root` named "name/relative path", hidden ones (".*", "__MACOSX") and
    folders left out; a file whose type is not an image's stands as the reason."""
    files: list[_File] = []
    for path in paths:
        relative = path.relative_to(root)
        if path.is_dir() or any(folders.hidden(part) for part in relative.parts):
            continue
        suffix = path.suffix.lower()
        files.append((f"{name}/{relative.as_posix()}",
                      path if suffix in images.IMAGE_EXTENSIONS
                      else images.ImageError(f"not an image file type ({suffix or 'none'})")))
    return files


def _temporary_root() -> Path:
    root = config.cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    return root
