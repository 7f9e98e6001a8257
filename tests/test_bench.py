"""The benchmark suite's bookkeeping (its timings are never asserted here)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.mark.slow
def test_head_scaling_probe_reports_time_and_memory():
    probe = subprocess.run([sys.executable, "-m", "bench.head_scaling", "200"], cwd=ROOT,
                           capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    assert result["microseconds_per_example"] > 0 and result["peak_mb"] > 0
    assert result["embeddings_mb"] == 200 * 1280 * 4 / 2**20
    assert result["val_accuracy"] > 0.3  # learnable: chance is 1/37


def test_load_percentiles_interpolate_like_numpy():
    from bench import load

    values = [0.5, 1.0, 3.0, 2.0]
    assert load.percentile(values, 50) == 1.5
    assert abs(load.percentile(values, 95) - 2.85) < 1e-9
    assert load.percentile([4.0], 95) == 4.0
    assert load.percentile([], 50) != load.percentile([], 50)  # nan


def test_load_page_problems_find_exceptions_tracebacks_and_server_paths():
    from bench import load

    assert load.page_problems("Data\nClasses 2", [], [], ["/srv/home", "/repo"]) == []
    found = load.page_problems("oops /srv/home/runs/x failed", [], ["bad zip"], ["/srv/home"])
    assert [p.split(":")[0] for p in found] == [
        "error box", "server path '/srv/home' in the page text"]
    boxed = load.page_problems("ValueError Traceback", ["ValueError Traceback"],
                               ["ValueError Traceback"], [])
    assert len(boxed) == 1 and boxed[0].startswith("exception box")


def test_load_summary_and_rows(tmp_path):
    import zipfile

    from bench import load

    records = [{"visitor": 0, "open_seconds": 1.0, "run_id": "r0",
                "pages": [{"page": "Data", "ok": True, "seconds": 1.0},
                          {"page": "Train", "ok": True, "seconds": 3.0}],
                "actions": [{"name": "train", "ok": True, "seconds": 10.0,
                             "queued_seconds": 2.0, "refused": 1}],
                "errors": []},
               {"visitor": 1, "open_seconds": 2.0, "run_id": None,
                "pages": [{"page": "Data", "ok": True, "seconds": 0.5},
                          {"page": "Train", "ok": False}],
                "actions": [{"name": "train", "ok": False, "refused": 0}],
                "errors": [{"step": "open Train", "kind": "timeout", "detail": "late"},
                           {"step": "open Train", "kind": "page", "detail": "exception box"}]}]
    summary = load.summarize(records)
    assert summary["light"]["count"] == 3 and summary["light"]["p50"] == 1.0
    assert summary["actions"]["train"]["count"] == 1
    assert summary["actions"]["train"]["queued"] == 1
    assert summary["actions"]["train"]["refused"] == 1
    assert summary["failed_steps"] == ["visitor 1: open Train"]
    rows = {row["case"]: row for row in load.load_rows(summary, {"peak_mb": 900.0})}
    p95 = rows["light pages p95, 2 visitors"]
    assert p95["target"] == 2.0 and p95["met"] is False  # 2.8 s
    errors = rows["errors (failed steps), 2 visitors"]
    assert errors["ours"] == 1.0 and errors["met"] is False
    assert rows["peak server memory, 2 visitors"]["ours"] == 900.0
    assert all(set(row) == set(suite.row("b", "c", 1.0, None, "s")) for row in rows.values())

    archive = load.make_zip(tmp_path / "v.zip", seed=1)
    with zipfile.ZipFile(archive) as opened:
        names = opened.namelist()
    assert len(names) == 24 and {name.split("/")[0] for name in names} == {"class0", "class1"}
