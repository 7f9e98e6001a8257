"""A training killed with SIGKILL (no cleanup at all) resumes from its last checkpoint."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tlcore import checkpoints, runs, train

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 40


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
