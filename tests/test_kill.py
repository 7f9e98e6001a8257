"""A training killed with SIGKILL (no cleanup at all) resumes from its last checkpoint; a
server stopped with SIGTERM during a training exits within seconds and offers it for resuming.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import test_browser
from bench import load
from test_browser import choose, expect, go_to, set_number, settle, wait_title
from tlcore import checkpoints, runs, train

pytestmark = pytest.mark.slow  # starts a server, a browser or other processes

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 40
browser = test_browser.browser  # headless Chromium (skipped without it, like test_browser)
# A stopped server must be gone within this on a loaded 2-core box: it takes 0.3-1 s.
# Before the fix, Python finalised its whole heap while TensorFlow's compute threads kept
# both cores busy with the training's current call: 8-14 s here, over 50 s in issue 15.
STOP_BOUND_S = 5
BUSY_LOOPS = 6
# Fine-tuning VGG16 (the offline edge-detection weights, its top block) on 25 training
# images in one 64-image batch at 224 px: each step is one long call into TensorFlow
# (8-18 s on two cores, about 1.5 GB).
PER_CLASS, IMAGE_SIZE, BATCH_SIZE = 12, "224", "64"


def test_a_training_killed_with_sigkill_resumes_from_its_last_checkpoint(tiny_folder, tmp_path):
    runs_dir = tmp_path / "runs"
    command = [sys.executable, "-m", "tlcore", "train", "--data", str(tiny_folder),
               "--backbone", "scratch_cnn", "--weights", "none", "--mode", "end-to-end",
               "--epochs", str(EPOCHS), "--image-size", "32", "--batch-size", "8",
               "--patience", "0", "--runs-dir", str(runs_dir)]
    environment = {**os.environ, "TLCORE_HOME": str(tmp_path / "home")}
    process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    state_files = runs_dir / checkpoints.FOLDER
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and process.poll() is None:
            states = list(state_files.glob(f"*/{checkpoints.STATE_FILE}"))
            if states and json.loads(states[0].read_text())["epochs_done"] >= 1:
                break
            time.sleep(0.02)
        assert process.poll() is None, "the training ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()

    assert runs.list_runs(runs_dir) == []  # the half-made run is not listed
    [interrupted] = checkpoints.list_interrupted(runs_dir)
    done = interrupted.epochs_done
    assert 1 <= done < EPOCHS
    run = train.resume_training(interrupted, runs_dir=runs_dir)
    assert run.info["resumed_from_epoch"] == done
    assert len(run.info["history"]["loss"]) == EPOCHS
    assert [found.run_id for found in runs.list_runs(runs_dir)] == [run.run_id]
    assert checkpoints.list_interrupted(runs_dir) == []


def _start_server(home: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
    """The app on its own TLCORE_HOME (a host's server); (process, base URL)."""
    try:
        return load.start_server(ROOT, home, log_path, public_demo=False)
    except RuntimeError as error:
        pytest.fail(str(error))


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.kill()
    server.wait()


def test_sigterm_during_a_training_stops_the_server_in_seconds_and_it_resumes(browser, tmp_path,
                                                                              make_image_folder):
    """SIGTERM while a training is inside a long TensorFlow call: the server exits within
    STOP_BOUND_S, and the next server offers the training for resuming from its intact
    checkpoint."""
    folder = make_image_folder(tmp_path / "colours", per_class=PER_CLASS)
    home, log_path = tmp_path / "home", tmp_path / "streamlit.log"
    server, url = _start_server(home, log_path)
    context = browser.new_context(viewport={"width": test_browser.WIDTH,
                                            "height": test_browser.HEIGHT})
    try:
        page = context.new_page()
        page.set_default_timeout(test_browser.PAGE_TIMEOUT_MS)
        page.goto(f"{url}/data")
        wait_title(page, "Data")
        page.locator("[data-testid='stRadio']").get_by_text("A folder on this server",
                                                            exact=True).click()
        settle(page)
        field = page.get_by_label("Folder of class folders", exact=True)
        field.fill(str(folder))
        field.press("Enter")
        settle(page)
        go_to(page, "Train")  # the same session: the data source is kept
        page.get_by_text("Data: colours").first.wait_for()
        choose(page, "Backbone", "VGG16")
        page.locator("[data-testid='stRadio']").get_by_text("Edge-detection body").click()
        settle(page)
        page.locator("[data-testid='stRadio']").get_by_text("Fine-tune").click()
        settle(page)
        for label, value in (("Fine-tuning epochs", "100"), ("Image size (px)", IMAGE_SIZE),
                             ("Batch size", BATCH_SIZE), ("Head epochs first", "1"),
                             ("Top blocks to train (of 5)", "1")):
            set_number(page, label, value)
        page.get_by_role("button", name="Train").click()

        state_files = home / "runs" / checkpoints.FOLDER
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and server.poll() is None:
            states = list(state_files.glob(f"*/{checkpoints.STATE_FILE}"))
            if states and json.loads(states[0].read_text())["epochs_done"] >= 1:
                break
            time.sleep(0.1)
        else:
            pytest.fail("no epoch was checkpointed:\n"
                        f"{log_path.read_text(errors='replace')[-3000:]}")
        time.sleep(2)  # the next epoch's step is running
        # The box is loaded, as a shared server is (issue 15 saw over 50 s): busy loops
        # beside the training's TensorFlow threads.
        busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(BUSY_LOOPS)]
        try:
            began = time.monotonic()
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                pass
            seconds = time.monotonic() - began
        finally:
            for loop in busy:
                _stop(loop)
        print(f"server stopped {seconds:.1f} s after SIGTERM")
        assert server.poll() is not None and seconds < STOP_BOUND_S, (
            f"the server took {seconds:.1f} s to stop (bound {STOP_BOUND_S} s)")
        assert server.returncode == 0
    finally:
        context.close()
        _stop(server)

    [interrupted] = checkpoints.list_interrupted(home / "runs")
    assert interrupted.epochs_done >= 1 and interrupted.state["config"]["epochs"] == 100
    assert interrupted.optimizer_state() and interrupted.best_weights() is not None  # readable

    server, url = _start_server(home, log_path)
    context = browser.new_context(viewport={"width": test_browser.WIDTH,
                                            "height": test_browser.HEIGHT})
    try:
        page = context.new_page()
        page.set_default_timeout(test_browser.PAGE_TIMEOUT_MS)
        page.goto(f"{url}/train")
        wait_title(page, "Train")
        page.get_by_text("Interrupted trainings (1)").first.wait_for()
        expect(page.get_by_text(interrupted.run_id).first).to_be_visible()
        expect(page.get_by_role("button", name="Resume")).to_be_visible()
    finally:
        context.close()
        server.terminate()
        _stop(server)
