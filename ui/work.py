"""Heavy work of a page run: renders, sweeps, attacks, robustness curves.

It takes turns with every other visitor's heavy work (`tlcore.turns.WORK`), shows the
visitor's place in the queue, then a progress bar with the phase, the fraction done and
the time left, and a Cancel button. It stops at the time budget of a public demo
(`config.limits().job_seconds`) and when its visitor has gone (the browser tab closed).

Cancel works through Streamlit itself: pressing any button while a script runs asks for a
rerun, which stops the running script at its next Streamlit call (here, the next
progress update); the queue place or turn is given back on the way out.
"""
from __future__ import annotations

import contextlib
import time
from typing import Any, Iterator

import streamlit as st
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

from tlcore import config, turns
from ui import state

REDRAWS_PER_SECOND = 5  # progress bar updates; Cancel is seen at the next one
CANCEL_KEY = "cancel-"  # prefix of the Cancel buttons' keys, then what they stop
NOTHING_KEPT = "nothing from it was kept"
_KEPT: dict[str, str] = {}  # {what: what its Cancel leaves}: the same for every visitor


class Progress:
    """Progress of one piece of heavy work: pass `on_step` and `should_stop` to tlcore."""

    def __init__(self, what: str, box: Any) -> None:
        self.what = what
        self.stopped_because: str | None = None
        self._budget = config.limits().job_seconds
        self._deadline: float | None = None  # set when the turn comes: waiting is free
        self._session = getattr(get_script_run_ctx(), "session_id", None)
        self._bar = box.progress(0.0, text=f"{what}: starting...")
        self._counted = (0, 0)  # (step, total) of the last report
        self._count_began = (time.monotonic(), 0)  # (time, step) of the count's first report
        self._phase, self._drawn = "", 0.0
        box.button("Cancel", key=f"{CANCEL_KEY}{what}", icon=":material/cancel:")

    def start(self) -> None:
        """The turn has come: the time budget starts now."""
        if self._budget is not None:
            self._deadline = time.monotonic() + self._budget
        self.on_step(0, 0, {"phase": "starting"})

    def on_step(self, step: int, total: int, metrics: dict) -> None:
        """Show the phase, the fraction done and the time left (a tlcore StepCallback);
        `metrics["detail"]`, when given, is appended (e.g. the class probability)."""
        phase = str(metrics.get("phase") or self.what)
        now = time.monotonic()
        # The rate is timed from where this count began: a new total, or a count going
        # back. A count that carries on through several phases keeps its clock.
        if total != self._counted[1] or step < self._counted[0]:
            self._count_began = (now, step)
        self._counted = (step, total)
        # At most REDRAWS_PER_SECOND (a curve reports thousands of steps), but always a
        # new phase and the last step.
        if (phase == self._phase and step != total
                and now - self._drawn < 1 / REDRAWS_PER_SECOND):
            return
        self._phase, self._drawn = phase, now
        detail = f" ({metrics['detail']})" if metrics.get("detail") else ""
        if not total:
            self._bar.progress(0.0, text=f"{self.what}: {phase}...{detail}")
            return
        began, first = self._count_began  # the rate since then, not from step 0: a
        left = (f", about {(now - began) / (step - first) * (total - step):.0f} s left"
                if step > first else "")  # count may first be heard of half-way
        self._bar.progress(min(1.0, step / total), text=f"{self.what}: {phase}: "
                                                        f"{step:,}/{total:,}{left}{detail}")

    def should_stop(self) -> bool:
        """True once the time budget is spent or the visitor has gone (`stopped_because`
        says which)."""
        if self._deadline is not None and time.monotonic() > self._deadline:
            self.stopped_because = (f"it reached this demo's time budget of "
                                    f"{self._budget:.0f} s per job")
        elif not _visitor_present(self._session):
            self.stopped_because = "its visitor has gone"
        return self.stopped_because is not None


@contextlib.contextmanager
def heavy(what: str, queue: turns.Turns = turns.WORK, kept: str = NOTHING_KEPT
          ) -> Iterator[Progress]:
    """Wait for a turn (showing the place in the queue), then hold it for the block.

    Args:
        what: a short noun phrase for the progress text ("Rendering").
        queue: whose turn to wait for: page work's (`turns.WORK`), or the trainings'
            (`turns.TRAINING`) for work that trains, so it never holds a work slot while
            it waits behind a training.
        kept: what a Cancel leaves behind, said after it.

    Yields:
        The Progress to hand to tlcore as on_step / should_stop.
    """
    _KEPT[what] = kept
    slot = st.empty()  # the bar and Cancel go when the work ends
    progress = Progress(what, slot.container(border=True))
    try:
        with queue.turn(progress.on_step, progress.should_stop):
            progress.start()
            yield progress
    except queue.cancelled:  # the visitor left while waiting: nobody to tell
        st.stop()
    finally:
        slot.empty()


def say_if_stopped() -> None:
    """In the run that a Cancel button started, say what it stopped, so a cancelled job
    does not just vanish. (That run starts at once; the stopped one ends at its next
    progress update, so the button's own value is what tells.)"""
    for what in state.pressed_buttons(CANCEL_KEY):
        st.toast(f"{what}: stopped before it finished; {_KEPT.get(what, NOTHING_KEPT)}.",
                 icon=":material/cancel:")


def _visitor_present(session_id: str | None) -> bool:
    """False once the visitor's browser has disconnected (the tab was closed)."""
    if session_id is None or not Runtime.exists():
        return True  # not served by a Streamlit server (tests, scripts)
    return Runtime.instance().is_active_session(session_id)
