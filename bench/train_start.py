"""Train start: how long a newcomer stares at a training that shows no progress.

A real `streamlit run app.py` as a public demo (`bench.load.start_server`: its own fresh
TLCORE_HOME, no GPU) and headless Chromium.
The visitor opens the Train page, keeps the defaults (VGG16, the offline edge-detection
body, feature-extractor mode on the built-in demo set) and presses Train. Measured, from
the click:
- **first progress**: the first progress bar whose text shows a real fraction (`n/m`), i.e.
  the page has something honest to say;
- **result**: "Saved as run" on the page.
Twice: on a *fresh* server (nothing loaded yet, no embedding cache) and again on the same,
now *warm* server (the second training of the same settings hits the embedding cache).

Baseline, in the same run: the same training from the command line in a fresh child process,
also under the demo's limits (`python -m tlcore train`, its wall time), i.e. what the work itself costs without the
page. Results go to bench/results/<device>-train-start.json. Run it through the suite
(`python -m tlcore bench --only train_start`) or alone (`python -m bench.train_start`);
TLCORE_LOAD_APP_ROOT serves another checkout (for a before/after comparison).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import load

ROOT = Path(__file__).resolve().parents[1]
FRACTION = re.compile(r"\d+/\d+")
TIMEOUT_S = 600


def _first_fraction_and_result(page, clicked: float) -> tuple[float | None, float | None, list[str]]:
    """Poll the page after the Train click; return (seconds to the first progress bar with a
    fraction, seconds to "Saved as run", the distinct progress texts seen in order)."""
    first, seen = None, []
    deadline = clicked + TIMEOUT_S
    while time.perf_counter() < deadline:
        texts = page.locator("[data-testid='stProgress']").all_inner_texts()
        for text in texts:
            text = " ".join(text.split())
            if text and text not in seen:
                seen.append(text)
            if first is None and FRACTION.search(text):
                first = time.perf_counter() - clicked
        if page.get_by_text("Saved as run").count():
            return first, time.perf_counter() - clicked, seen
        if page.locator("[data-testid='stAlertContentError']").count():
            raise RuntimeError("training failed: " + " ".join(
                page.locator("[data-testid='stAlertContentError']").all_inner_texts())[:500])
        page.wait_for_timeout(100)
    raise TimeoutError(f"no result after {TIMEOUT_S} s; progress seen: {seen[-5:]}")


def _train_once(browser, url: str) -> dict:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_S * 1000)
    try:
        page.goto(f"{url}/train")
        page.locator("[data-testid='stHeading'] h1").filter(has_text="Train").first.wait_for()
        page.wait_for_function(load.IDLE, polling=100)
        button = page.get_by_role("button").filter(has_text=re.compile(r"Train\s*$")).first
        clicked = time.perf_counter()
        button.click()
        first, result, seen = _first_fraction_and_result(page, clicked)
        return {"first_progress_s": first, "result_s": result, "progress_texts": seen[:40]}
    finally:
        context.close()


def _library_seconds(home: Path) -> float:
    """The same training from the command line in a fresh process: its wall time."""
    environment = {**os.environ, "TLCORE_HOME": str(home), "CUDA_VISIBLE_DEVICES": "",
                   "TLCORE_PUBLIC_DEMO": "1"}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tlcore", "train", "--data", "demo", "--backbone",
                    "vgg16", "--weights", "edges", "--mode", "fast", "--json"], cwd=ROOT,
                   env=environment, check=True, capture_output=True, timeout=TIMEOUT_S)
    return time.perf_counter() - started


def measure(app_root: Path = ROOT) -> dict:
    """Fresh-server and warm-server Train click timings, and the library baseline."""
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix=load.TEMP_PREFIX))
    try:
        baseline_home = folder / "cli-home"
        library_fresh = _library_seconds(baseline_home)  # no embedding cache yet
        library_warm = _library_seconds(baseline_home)  # a cache hit
        with load.serving(app_root, folder / "home", folder / "streamlit.log") as url, \
                sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(load.CHROMIUM),
                                                 args=load.CHROMIUM_ARGS)
            fresh = _train_once(browser, url)
            warm = _train_once(browser, url)
            browser.close()
        return {"fresh": fresh, "warm": warm, "library_fresh_s": library_fresh,
                "library_warm_s": library_warm}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# The same measure before issue 15 (a clone of that commit served by this file), 2 cores.
BEFORE_FILE = load.RESULTS / "cpu-2-x86_64-train-start-before-cc1091f.json"


def rows(result: dict) -> list[dict]:
    """Suite rows: each page timing beside the library's own time for the same work, and
    the first-progress time beside the one before issue 15 when that file is here."""
    from bench.suite import row

    before = json.loads(BEFORE_FILE.read_text()) if BEFORE_FILE.is_file() else None
    out = []
    for case, library in (("fresh", result["library_fresh_s"]),
                          ("warm", result["library_warm_s"])):
        timing = result[case]
        first = before[case]["first_progress_s"] if before else None
        # A training over before the page's one-second poll drew a bar: its result counts.
        shown = timing["first_progress_s"] or timing["result_s"]
        out.append(row("train_start", f"{case} server: click to first progress with a fraction",
                       shown, first, "s", higher_is_better=False,
                       note=(f"baseline: before issue 15 (commit {before['app_commit']})"
                             if before else "") + ("" if timing["first_progress_s"] else
                                                   "; done before a bar was drawn")))
        out.append(row("train_start", f"{case} server: click to saved run", timing["result_s"],
                       library, "s", higher_is_better=False,
                       note="baseline: the same training from the command line, fresh process"))
    return out


def run(quick: bool = False) -> list[dict]:
    """Measure and write bench/results/<device>-train-start.json; return suite rows."""
    from bench.suite import device

    app_root = Path(os.environ.get("TLCORE_LOAD_APP_ROOT") or ROOT)
    result = measure(app_root)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=app_root,
                            capture_output=True, text=True).stdout.strip()
    result.update(app_commit=commit, created=time.strftime("%Y-%m-%dT%H:%M:%S"))
    load.RESULTS.mkdir(parents=True, exist_ok=True)
    (load.RESULTS / f"{device()}-train-start.json").write_text(json.dumps(result, indent=1))
    return rows(result)


if __name__ == "__main__":
    outcome = measure(Path(os.environ.get("TLCORE_LOAD_APP_ROOT") or ROOT))
    print(json.dumps(outcome, indent=1))
