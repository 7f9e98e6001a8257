"""ui.work.Progress: what the progress bar of heavy page work says."""
from __future__ import annotations

from ui import work


class _Bar:
    def __init__(self, texts: list[str]) -> None:
        self.texts = texts

    def progress(self, fraction: float, text: str) -> "_Bar":
        self.texts.append(text)
        return self


class _Box:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def progress(self, fraction: float, text: str) -> _Bar:
        return _Bar(self.texts)

    def button(self, *args, **kwargs) -> bool:
        return False


def test_a_count_through_several_phases_keeps_its_clock_and_redraws_are_few(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(work.time, "monotonic", lambda: clock[0])
    box = _Box()
    progress = work.Progress("Curves", box)
    progress.on_step(0, 100, {"phase": "FGSM"})
    clock[0] += 10
    progress.on_step(50, 100, {"phase": "PGD"})  # the same count, another phase
    assert box.texts[-1].endswith("50/100, about 10 s left")
    drawn = len(box.texts)
    for step in range(51, 60):  # within 1/5 s: not redrawn
        clock[0] += 0.01
        progress.on_step(step, 100, {"phase": "PGD"})
    assert len(box.texts) == drawn
    clock[0] += 1
    progress.on_step(100, 100, {"phase": "PGD"})  # the last step always shows
    assert box.texts[-1].startswith("Curves: PGD: 100/100")
    progress.on_step(0, 10, {"phase": "scoring"})  # a new count: a new clock
    clock[0] += 2
    progress.on_step(5, 10, {"phase": "scoring"})
    assert box.texts[-1].endswith("5/10, about 2 s left")


def test_a_count_first_heard_of_half_way_gives_no_time_left_until_it_moves(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(work.time, "monotonic", lambda: clock[0])
    box = _Box()
    progress = work.Progress("Rendering", box)
    progress.on_step(150, 300, {"phase": "climbing"})
    assert "left" not in box.texts[-1]
    clock[0] += 3
    progress.on_step(200, 300, {"phase": "climbing"})
    assert box.texts[-1].endswith("200/300, about 6 s left")


def test_a_training_job_times_its_count_not_its_phase(monkeypatch):
    """After an epoch's validation pass (another count), the training's count goes on at
    its step: the time left comes from the batches since, not from all steps so far."""
    from ui import jobs

    clock = [1000.0]
    monkeypatch.setattr(jobs.time, "time", lambda: clock[0])
    job = jobs.BackgroundJob("someone")
    job._on_step(0, 100, {"phase": "training"})
    clock[0] += 10
    job._on_step(50, 100, {"phase": "training"})
    assert job.snapshot().eta_seconds == 10
    job._on_step(0, 5, {"phase": "checking epoch 1 on the validation images"})
    clock[0] += 5
    job._on_step(5, 5, {"phase": "checking epoch 1 on the validation images"})
    job._on_step(50, 100, {"phase": "training"})
    assert job.snapshot().eta_seconds is None  # nothing measured since it went on
    clock[0] += 2
    job._on_step(60, 100, {"phase": "training"})
    assert job.snapshot().eta_seconds == 8
