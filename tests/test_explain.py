"""Grad-CAM and saliency point at the region the label depends on, and nowhere else."""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from tlcore import config, data, explain, images, models, train

SIZE, PATCH = 64, 16


def patch_task(root: Path, per_class: int = 60, seed: int = 0) -> dict[str, tuple]:
    """'patch' images hold an orange square somewhere, 'plain' ones do not; every image
    also holds a blue square (a distractor that says nothing about the label).

    Returns:
        {path of a 'patch' image: ((top, left) of the orange square, (top, left) of the blue)}.
    """
    generator = np.random.default_rng(seed)
    boxes = {}
    for name in ("patch", "plain"):
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            pixels = generator.normal(110, 25, (SIZE, SIZE, 3))
            blue = tuple(generator.integers(0, SIZE - PATCH, 2))
            pixels[blue[0]:blue[0] + PATCH, blue[1]:blue[1] + PATCH] = (40, 70, 230)
            path = root / name / f"{index:03d}.png"
            if name == "patch":
                while True:
                    orange = tuple(generator.integers(0, SIZE - PATCH, 2))
                    if max(abs(orange[0] - blue[0]), abs(orange[1] - blue[1])) >= PATCH:
                        break
                pixels[orange[0]:orange[0] + PATCH, orange[1]:orange[1] + PATCH] = (245, 140, 20)
                boxes[str(path)] = (orange, blue)
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)
    return boxes


def mass_inside(heatmap: np.ndarray, corner: tuple[int, int], margin: int) -> float:
    """Share of a map's total inside a PATCH square at `corner`, widened by `margin`."""
    mask = np.zeros(heatmap.shape, dtype=bool)
    top, left = max(0, corner[0] - margin), max(0, corner[1] - margin)
    mask[top:corner[0] + PATCH + margin, left:corner[1] + PATCH + margin] = True
    return float(heatmap[mask].sum() / max(heatmap.sum(), 1e-12))


@pytest.fixture(scope="module")
def patch_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    boxes = patch_task(root / "task")
    run = train.train_classifier(
        config.TrainConfig(backbone="scratch_cnn", weights=None, mode="end-to-end", epochs=12,
                           image_size=SIZE, patience=0),
        data.from_folder(root / "task"), runs_dir=root / "runs")
    assert run.info["metrics"]["val_accuracy"] > 0.9, run.info["metrics"]
    paths = sorted(boxes)
    return run, run.load_model(), data.load_images(paths, SIZE), [boxes[p] for p in paths]


def test_grad_cam_mass_falls_on_the_region_the_label_depends_on(patch_run):
    run, model, pixels, boxes = patch_run
    patch_class = run.classes.index("patch")
    maps, logits = explain.grad_cam(explain.gradcam_model(model, "scratch_cnn"), pixels,
                                    [patch_class] * len(pixels))
    assert maps.shape == pixels.shape[:3] and maps.min() >= 0 and maps.max() <= 1
    # The square is 6% of the image; a margin of a quarter square allows for the coarse 8x8
    # map's bilinear upsampling.
    on_target = np.mean([mass_inside(m, orange, 4) for m, (orange, _) in zip(maps, boxes)])
    on_distractor = np.mean([mass_inside(m, blue, 4) for m, (_, blue) in zip(maps, boxes)])
    assert on_target > 0.7 and on_distractor < 0.1, (on_target, on_distractor)


def test_common_scale_keeps_a_class_without_evidence_dim(patch_run):
    """Scaled per map, the class an image is not gets a map as hot as the predicted one's;
    on the common scale (the default) its map stays dim beside the predicted class's."""
    run, model, pixels, _ = patch_run
    split = explain.gradcam_model(model, "scratch_cnn")
    plain = [run.classes.index("plain")] * len(pixels)  # the patch images are not plain
    patch = [run.classes.index("patch")] * len(pixels)
    own, logits = explain.grad_cam(split, pixels, plain, scale="own")
    common, _ = explain.grad_cam(split, pixels, plain)
    common_patch, _ = explain.grad_cam(split, pixels, patch, scale="common")
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    unlikely = probabilities[:, run.classes.index("plain")] < 0.01
    peaks = lambda maps: maps.reshape(len(maps), -1).max(axis=1)  # noqa: E731
    has_evidence = unlikely & (peaks(own) > 0)
    assert has_evidence.sum() >= 5, (unlikely.sum(), peaks(own))
    np.testing.assert_allclose(peaks(own)[has_evidence], 1.0, atol=1e-5)
    # Here the predicted class holds the most evidence: it peaks at 1, the other below.
    np.testing.assert_allclose(peaks(common_patch)[has_evidence], 1.0, atol=1e-5)
    assert (peaks(common)[has_evidence] < 0.95).all(), peaks(common)[has_evidence]
    # Dividing a common-scale map by its own peak gives the per-map one.
    np.testing.assert_allclose(explain.own_scale(common), own, atol=1e-4)
    with pytest.raises(ValueError, match="scale='loud'"):
        explain.grad_cam(split, pixels[:1], scale="loud")


def test_smoothgrad_saliency_prefers_the_region_too(patch_run):
    run, model, pixels, boxes = patch_run
    maps = explain.saliency(model, pixels, samples=4)
    on_target = np.mean([mass_inside(m, orange, 4) for m, (orange, _) in zip(maps, boxes)])
    on_distractor = np.mean([mass_inside(m, blue, 4) for m, (_, blue) in zip(maps, boxes)])
    assert on_target > 3 * on_distractor, (on_target, on_distractor)


def test_the_split_model_gives_the_classifier_s_own_logits(patch_run):
    _, model, pixels, _ = patch_run
    _, logits = explain.grad_cam(explain.gradcam_model(model, "scratch_cnn"), pixels[:4])
    direct = keras.ops.convert_to_numpy(model(pixels[:4].astype(np.float32), training=False))
    np.testing.assert_allclose(logits, direct, rtol=1e-5, atol=1e-5)


def test_bad_requests_are_refused_with_the_reason(patch_run):
    _, model, pixels, _ = patch_run
    with pytest.raises(ValueError, match="no layer named \\['nope'\\]"):
        explain.gradcam_model(model, "scratch_cnn", layer_name="nope")
    with pytest.raises(ValueError, match="outside 0..1"):
        explain.grad_cam(explain.gradcam_model(model, "scratch_cnn"), pixels[:1], [7])
    with pytest.raises(ValueError, match="needs a spatial"):
        explain.gradcam_model(model, "scratch_cnn", layer_name=models.POOL_NAME)


def test_overlay_keeps_cold_regions_and_colours_hot_ones():
    image = np.full((4, 4, 3), 100, dtype=np.uint8)
    heat = np.zeros((4, 4))
    heat[0, 0] = 1.0
    blended = images.overlay(image, heat)
    assert (blended[1:, :] == 100).all() and (blended[0, 1:] == 100).all()
    assert not (blended[0, 0] == 100).all()
    assert images.colorize(np.array([[0.0, 1.0]])).tolist() == [[[0, 0, 4], [252, 255, 164]]]
    with pytest.raises(ValueError, match="does not match"):
        images.overlay(image, np.zeros((2, 2)))
