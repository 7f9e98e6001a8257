"""Memory of a server with one MobileNetV2 run: the first visitor loads it, N more follow.

Run by the suite as `python -m bench.visitors N` with TLCORE_HOME pointing to a scratch
folder; prints one JSON line. The run is trained in a child process first, so the
training's own memory is not counted; visitors are Streamlit sessions in this process
(`AppTest`), sharing its caches as a real server's sessions do.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.memory import memory_mb

ROOT = Path(__file__).resolve().parents[1]

TRAIN = """
import numpy as np
from pathlib import Path
from PIL import Image
from tlcore import config, data, train, config as c
root = c.tlcore_home() / "visitor-images"
for name, colour in {"red": (220, 40, 40), "blue": (40, 60, 220)}.items():
    (root / name).mkdir(parents=True, exist_ok=True)
    for i in range(12):
        pixels = np.random.default_rng(i).normal(128, 30, (64, 64, 3))
        pixels[16:40, 16:40] = colour
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(root / name / f"{i}.png")
train.train_classifier(config.TrainConfig(backbone="mobilenet_v2", weights=None,
                                          mode="end-to-end", epochs=1, image_size=224),
                       data.from_folder(root))
"""


def main(visitors: int) -> dict:
    """Measure; return {"loaded_mb", "peak_mb", "per_visitor_mb", "visitors"}."""
    subprocess.run([sys.executable, "-c", TRAIN], check=True, capture_output=True)
    from streamlit.testing.v1 import AppTest

    from tlcore import runs

    run_id = runs.list_runs()[0].run_id

    def visit() -> None:
        app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
        app.session_state["selected_run_id"] = run_id
        app.run()
        app.switch_page("app_pages/evaluate.py").run()
        if app.exception:
            raise RuntimeError(app.exception[0].value)
        sessions.append(app)  # keep every session alive, as open browser tabs do

    sessions: list = []
    visit()
    loaded = memory_mb()
    for _ in range(visitors):
        visit()
    after = memory_mb()
    return {"loaded_mb": loaded["rss_mb"], "peak_mb": after["peak_mb"],
            "per_visitor_mb": (after["rss_mb"] - loaded["rss_mb"]) / visitors,
            "visitors": visitors}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]))))
