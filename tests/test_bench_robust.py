"""The robust-against-standard benchmark's bookkeeping (its numbers are never asserted here:
`python -m bench.robust --quick` is the smoke run, about a minute)."""
from __future__ import annotations

import itertools
from types import SimpleNamespace

from bench import robust


def test_the_epoch_clock_times_the_last_phase_after_its_first_epoch():
    ticks = itertools.count()
    clock = robust.EpochClock(lambda: float(next(ticks)) ** 2)
    for phase, epochs in (("training the head", 2), ("fine-tuning", 3)):
        for epoch in range(1, epochs + 1):
            clock(0, 1, {"phase": phase, "epoch": epoch, "epoch_begin": True})
            clock(0, 1, {"phase": phase, "epoch": epoch, "batch": 0})
            clock(0, 1, {"phase": phase, "epoch": epoch, "epoch_end": True})
    # the fine-tuning epochs ran from tick 4 to 5, 6 to 7 and 8 to 9 (squared: 9, 13, 17 s)
    assert clock.seconds == [9.0, 13.0, 17.0]
    assert clock.median() == 15.0


def test_rows_set_the_robust_run_against_the_standard_one():
    plan = robust.plans(quick=True)[0]
    runs = [SimpleNamespace(info={"metrics": {"test_accuracy": accuracy, "seconds": 10.0}})
            for accuracy in (0.9, 0.8)]
    trained = [{"run": run, "epoch": epoch} for run, epoch in zip(runs, (1.0, 1.5))]
    curve = [[{"accuracy": value} for value in values]
             for values in ((0.9, 0.5, 0.3, 0.1), (0.8, 0.7, 0.5, 0.2))]
    verdict = {"share": 0.5, "mean_probability": 0.4, "predicted": [0, 1]}
    rows = robust.pair_rows(plan, trained, curve, 18, {"cpu": (1.0, 1.8), "wall": (2.0, 3.0)},
                            {"custom": {"standard": verdict, "robust": verdict}}, "a judge")
    assert [item["ours"] for item in rows[:4]] == [0.8, 0.7, 0.5, 0.2]
    assert [item["baseline"] for item in rows[:4]] == [0.9, 0.5, 0.3, 0.1]
    assert "robust 0.800, standard 0.900" in rows[0]["note"]
    timed = rows[4]
    assert timed["ratio"] == 0.56 and timed["met"] is True  # robust under 2x the standard
    assert "wall time robust 3.00 s, standard 2.00 s" in timed["note"]
    assert len(rows) == 8 and "2 images per model; judge: a judge" in rows[6]["note"]
