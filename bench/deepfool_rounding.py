"""DeepFool on 8-bit images: how often its saved (rounded) image flips the label, and how big
the change is, against the rule before issue 16 (the float step lengthened by at most 2x).

A softmax classifier with [-1, 1] preprocessing, the kind whose float DeepFool step is often
far below one pixel: by default a small MobileNetV2 (alpha 0.35, 64 px, random start) trained
here on the demo set (about 30 s on 2 cores), or a saved one (`--model`, with `--images`:
an .npz of uint8 `x` (N, S, S, 3) and `y`). Attacked: the first `--count` images it
classifies right. PGD at 1/255 (10 steps) is shown beside them as the budgeted reference.

Run alone: `python -m bench.deepfool_rounding [--model M.keras --images I.npz --count 48]`;
prints a table and writes bench/results/<device>-deepfool_rounding-<model>.json (and .md).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.suite import Row, device, row, write_results

SIZE, EPOCHS, ALPHA = 64, 10, 0.35
OLD_FACTORS = (1.0, 1.02, 1.05, 1.1, 1.2, 1.35, 1.5, 1.75, 2.0)  # the rule before issue 16


def demo_model_and_images() -> tuple[object, np.ndarray, np.ndarray]:
    """A small softmax MobileNetV2 ([-1, 1] input) trained on 85 % of the demo set, wrapped
    to take pixels; the held-out 15 % as (pixels, labels)."""
    import keras
    from PIL import Image

    from tlcore import demo, models

    folder = demo.ensure_demo_images(Path(tempfile.gettempdir()) / "tlcore-bench-demo")
    pixels, labels = [], []
    for label, name in enumerate(demo.CLASS_NAMES):
        for path in sorted((folder / name).glob("*.png")):
            image = Image.open(path).convert("RGB").resize((SIZE, SIZE))
            pixels.append(np.asarray(image, dtype=np.float32))
            labels.append(label)
    order = np.random.default_rng(0).permutation(len(pixels))
    pixels, labels = np.stack(pixels)[order], np.array(labels)[order]
    split = int(0.85 * len(pixels))
    keras.utils.set_random_seed(0)
    body = keras.applications.MobileNetV2(include_top=False, weights=None, alpha=ALPHA,
                                          input_shape=(SIZE, SIZE, 3))
    inputs = keras.Input((SIZE, SIZE, 3))
    scores = keras.layers.Dense(len(demo.CLASS_NAMES), activation="softmax")(
        keras.layers.GlobalAveragePooling2D()(body(inputs)))
    model = keras.Model(inputs, scores)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    model.fit(pixels[:split] / 127.5 - 1, labels[:split], epochs=EPOCHS, batch_size=32,
              verbose=0)
    # A short training from scratch leaves BatchNorm's moving statistics far from the
    # batches' (the model then answers one class); re-estimate them on training batches.
    normalisations = [layer for layer in body.layers
                      if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in normalisations:
        layer.momentum = 0.5
    generator = np.random.default_rng(1)
    for _ in range(30):
        model(pixels[generator.choice(split, 64, replace=False)] / 127.5 - 1, training=True)
    return (models.wrap_external_model(model, "mobilenet_v2"), pixels[split:],
            labels[split:])


def saved_model_and_images(model_path: str, images_path: str) -> tuple[object, np.ndarray,
                                                                        np.ndarray]:
    """A saved softmax model with [-1, 1] preprocessing, wrapped; the .npz's images."""
    from tlcore import models

    data = np.load(images_path)
    model = models.wrap_external_model(models.load_model(model_path), "mobilenet_v2")
    return model, data["x"].astype(np.float32), data["y"]


def old_rule() -> object:
    """DeepFool with the rounding rule before issue 16: the float step lengthened by the
    fixed factors up to 2x until the rounded image flips."""
    from tlcore import attack, models

    class TwiceAtMost(attack.DeepFool):
        def _smallest_rounded_flip(self, chunk, step):
            images = chunk.images
            chosen = np.clip(images + step, 0, 255)
            pending = np.ones(len(images), dtype=bool)
            for factor in OLD_FACTORS:
                candidate = np.clip(images + factor * step, 0, 255)
                flipped = (models.predict_logits(chunk.model, np.rint(candidate)).argmax(-1)
                           != chunk.labels)
                chosen[pending & flipped] = candidate[pending & flipped]
                pending &= ~flipped
            return chosen.astype(np.float32)

    return TwiceAtMost()


def measure(method: object, model: object, images: np.ndarray, labels: np.ndarray) -> dict:
    """Success rate, median L2 and L-inf of the flipped images (pixels), seconds."""
    method(model, images[:1], labels[:1])  # trace the graphs outside the timing
    started = time.perf_counter()
    result = method(model, images, labels)
    seconds = time.perf_counter() - started
    flipped = result.success
    return {"success": float(flipped.mean()), "seconds": seconds,
            "median_l2": float(np.median(result.l2[flipped])) if flipped.any() else float("nan"),
            "median_linf": float(np.median(result.linf[flipped])) if flipped.any()
            else float("nan")}


def run(model_path: str | None = None, images_path: str | None = None,
        count: int = 48) -> list[Row]:
    """Measure DeepFool now, the rule before, and PGD at 1/255; return the rows."""
    from tlcore import attack, models

    model, images, labels = (saved_model_and_images(model_path, images_path) if model_path
                             else demo_model_and_images())
    right = models.predict_logits(model, images).argmax(-1) == labels
    images, labels = images[right][:count], labels[right][:count]
    new = measure(attack.DeepFool(), model, images, labels)
    old = measure(old_rule(), model, images, labels)
    pgd = measure(attack.PGD(epsilon=1, steps=10), model, images, labels)
    case = f"{len(images)} images, {Path(model_path).name if model_path else 'demo MobileNetV2'}"
    note = (f"PGD at 1/255: success {pgd['success']:.3f}, median L2 {pgd['median_l2']:.1f}, "
            f"{pgd['seconds']:.1f} s")
    return [row("deepfool_rounding", f"success rate, {case}", new["success"], old["success"],
                "fraction", note=note),
            row("deepfool_rounding", "median L2 of flipped", new["median_l2"],
                old["median_l2"], "pixels", higher_is_better=False),
            row("deepfool_rounding", "median L-inf of flipped", new["median_linf"],
                old["median_linf"], "pixels", higher_is_better=False),
            row("deepfool_rounding", "wall time", new["seconds"], old["seconds"], "s",
                higher_is_better=False, note="baseline: the float step, at most 2x")]


def main() -> None:
    """Parse the arguments, run, print the table and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a saved softmax .keras model, [-1, 1] input")
    parser.add_argument("--images", help="an .npz of uint8 x (N, S, S, 3) and labels y")
    parser.add_argument("--count", type=int, default=48)
    arguments = parser.parse_args()
    if bool(arguments.model) != bool(arguments.images):
        parser.error("--model and --images go together")
    rows = run(arguments.model, arguments.images, arguments.count)
    written = write_results(f"{device()}-deepfool_rounding-" + (Path(arguments.model).stem
                                                 if arguments.model else "demo"), rows)
    print(written["table"])
    print(f"written: {written['written']}", file=sys.stderr)


if __name__ == "__main__":
    main()
