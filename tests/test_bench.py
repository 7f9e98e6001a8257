"""The benchmark suite's bookkeeping (its timings are never asserted here)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench import suite

ROOT = Path(__file__).resolve().parents[1]


def test_ratios_read_as_better_than_the_baseline():
    faster = suite.row("b", "rate", 30.0, 10.0, "images/s", target=1.5)
    assert faster["ratio"] == 3.0 and faster["met"] is True
    quicker = suite.row("b", "time", 2.0, 40.0, "s", target=20.0, higher_is_better=False)
    assert quicker["ratio"] == 20.0 and quicker["met"] is True
    alone = suite.row("b", "no baseline", 5.0, None, "s")
    assert alone["ratio"] is None and alone["met"] is None


def test_the_table_has_one_line_per_row():
    rows = [suite.row("b", "one", 1.0, 2.0, "s"), suite.row("b", "two", 3.0, None, "MB")]
    table = suite.markdown(rows).splitlines()
    assert len(table) == 4 and table[0].startswith("| benchmark | case |")
    assert "| b | two | 3.0 |  | MB |" in table[3]


def test_head_scaling_probe_reports_time_and_memory():
    probe = subprocess.run([sys.executable, "-m", "bench.head_scaling", "200"], cwd=ROOT,
                           capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    assert result["microseconds_per_example"] > 0 and result["peak_mb"] > 0
    assert result["embeddings_mb"] == 200 * 1280 * 4 / 2**20
    assert result["val_accuracy"] > 0.3  # learnable: chance is 1/37
