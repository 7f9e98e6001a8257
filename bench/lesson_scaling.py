"""The lesson's ideal-image recipe on a model that rescales its pixels: its class term
scaled by the model's input scale (issue 16) against the plain recipe (steps of 1 pixel,
made for VGG16's caffe input), on the same model, classes and seed.

The model is the softmax MobileNetV2 with [-1, 1] input of `bench.deepfool_rounding`
(trained here on the demo set, about 30 s on 2 cores), or a saved one (`--model`, with
`--preprocess`). Reported per recipe: the median over `--classes` of the target's final
probability and of the 8-bit image's pixel standard deviation (0.5 is flat grey).

Run alone: `python -m bench.lesson_scaling [--model M.keras --preprocess tf] [--steps 1000]`;
prints a table and writes bench/results/<device>-lesson_scaling-<model>.json (and .md).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from bench.deepfool_rounding import demo_model_and_images
from bench.suite import Row, device, row, write_results


def render_all(model: object, classes: list[int], steps: int, input_scale: float) -> dict:
    """The lesson recipe for each class: medians of p and pixel spread, and seconds."""
    from tlcore import images, models, visualize

    probabilities, spreads = [], []
    started = time.perf_counter()
    for target in classes:
        settings = visualize.preset("lesson", models.input_size(model), steps=steps,
                                    input_scale=input_scale)
        result = visualize.render(model, target, settings)
        probabilities.append(result.probability)
        spreads.append(float(images.to_uint8(result.image).std()))
    return {"p": float(np.median(probabilities)), "spread": float(np.median(spreads)),
            "seconds": time.perf_counter() - started, "all_p": probabilities,
            "all_spread": spreads}


def run(model_path: str | None = None, preprocess: str = "tf", steps: int = 1000,
        classes: int = 3) -> list[Row]:
    """Measure the scaled recipe and the plain one; return the rows."""
    from tlcore import models

    model = (models.wrap_external_model(models.load_model(model_path), preprocess)
             if model_path else demo_model_and_images()[0])
    chosen = list(range(min(classes, int(model.output_shape[-1]))))
    scale = models.input_scale(model)
    scaled = render_all(model, chosen, steps, scale)
    plain = render_all(model, chosen, steps, 1.0)
    name = Path(model_path).name if model_path else "demo MobileNetV2"
    note = (f"input scale 1/{1 / scale:.4g}; p per class {np.round(scaled['all_p'], 3).tolist()}"
            f" vs {np.round(plain['all_p'], 3).tolist()}")
    return [row("lesson_scaling", f"median p, {len(chosen)} classes, {steps} steps, {name}",
                scaled["p"], plain["p"], "probability", note=note),
            row("lesson_scaling", "median pixel std of the 8-bit image", scaled["spread"],
                plain["spread"], "pixels", note="0.5 is flat grey; baseline: steps of 1 pixel"),
            row("lesson_scaling", "wall time", scaled["seconds"], plain["seconds"], "s",
                higher_is_better=False)]


def main() -> None:
    """Parse the arguments, run, print the table and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a saved .keras classifier")
    parser.add_argument("--preprocess", default="tf", help="its input convention")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--classes", type=int, default=3)
    arguments = parser.parse_args()
    rows = run(arguments.model, arguments.preprocess, arguments.steps, arguments.classes)
    written = write_results(f"{device()}-lesson_scaling-" + (Path(arguments.model).stem
                                                 if arguments.model else "demo"), rows)
    print(written["table"])
    print(f"written: {written['written']}", file=sys.stderr)


if __name__ == "__main__":
    main()
