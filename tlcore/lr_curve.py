"""Read a learning rate off a range test's loss curve (`tlcore.lr_find`): fastai's four
rules (valley, steep, minimum, slide), the result of a test, and its description for people.

fastai reads the smoothed curve with its first tenth and last few points left out (the start
is flat and noisy, the end lags the blow-up); each rule then picks one rate on what is left.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import numpy as np

SKIP_END = 5  # the last points lag the blow-up in the smoothed loss: no rule reads them
MIN_POINTS = 8  # fewer points left to read: no suggestion
Curve = Callable[[np.ndarray, np.ndarray], tuple[float, float]]


def _valley(rates: np.ndarray, losses: np.ndarray) -> tuple[float, float]:
    """The rate about halfway down the longest decreasing run of the curve (fastai's index:
    a third plus a sixth of the way)."""
    lengths = np.ones(len(losses), dtype=int)  # longest decreasing subsequence ending here
    for right in range(1, len(losses)):
        lower = losses[:right] > losses[right]
        if lower.any():
            lengths[right] = lengths[:right][lower].max() + 1
    end = int(np.argmax(lengths))
    begin = end - int(lengths[end])
    third = (end - begin) / 3
    index = max(0, begin + int(third) + int(third / 2))
    return float(rates[index]), float(losses[index])


def _steep(rates: np.ndarray, losses: np.ndarray) -> tuple[float, float]:
    """The rate where the loss falls fastest per unit of log rate."""
    slopes = np.diff(losses) / np.diff(np.log(rates))
    index = int(np.argmin(slopes))
    return float(rates[index]), float(losses[index])


def _minimum(rates: np.ndarray, losses: np.ndarray) -> tuple[float, float]:
    """A tenth of the rate of the lowest loss (kept inside the swept rates)."""
    rate = max(float(rates[int(np.argmin(losses))]) / 10, float(rates[0]))
    return rate, _loss_at(rate, rates, losses)


def _slide(rates: np.ndarray, losses: np.ndarray, width: int = 15,
           threshold: float = 0.005) -> tuple[float, float]:
    """Slide a window of `width` points from the highest rates down until the loss's slope
    is the same at both its ends (within `threshold`); its left end (fastai's slide)."""
    slopes = np.gradient(losses)
    right = len(losses) - 1
    left = max(0, right - width)
    rate = rates[left]
    while left >= 0 and abs(slopes[right] - slopes[left]) > threshold:
        rate = rates[left]
        right, left = right - 1, left - 1
    rate = float(rate)
    return rate, _loss_at(rate, rates, losses)


def _loss_at(rate: float, rates: np.ndarray, losses: np.ndarray) -> float:
    return float(np.interp(math.log(rate), np.log(rates), losses))


@dataclasses.dataclass(frozen=True)
class Rule:
    """One way to read a learning rate off the smoothed loss curve.

    Attributes:
        label: its name for people.
        explanation: one sentence for a newcomer: what the rule picks and why.
        pick: pick(rates, smoothed losses) -> (the rate, the smoothed loss there), on the
            part of the curve that rules read (`readable`).
    """

    label: str
    explanation: str
    pick: Curve


# The one table of rules, fastai's four; DEFAULT_RULE is the one suggested.
RULES = {
    "valley": Rule("Valley", "The loss falls over a longest stretch of rates; this rate lies "
                             "about halfway down it, where the loss still falls fast and is far "
                             "from blowing up (fastai's default).", _valley),
    "steep": Rule("Steepest", "The rate where the smoothed loss falls fastest as the rate "
                              "grows.", _steep),
    "minimum": Rule("Minimum / 10", "A tenth of the rate where the smoothed loss was lowest: "
                                    "the lowest point itself is already close to where the "
                                    "loss blows up.", _minimum),
    "slide": Rule("Slide", "Coming down from the highest rates, the first place where the "
                           "curve's slope is the same over a window of 15 steps, where the "
                           "curve has settled before the blow-up.", _slide),
}
DEFAULT_RULE = "valley"


@dataclasses.dataclass(frozen=True)
class Suggestion:
    """A rule's learning rate and the smoothed loss there (where the chart marks it)."""

    rule: str
    learning_rate: float
    loss: float

    @property
    def explanation(self) -> str:
        """The rule's one sentence."""
        return RULES[self.rule].explanation


@dataclasses.dataclass(frozen=True)
class LRFindResult:
    """A range test's curve and what the rules read off it.

    Attributes:
        learning_rates: the rate of each step taken, growing by a constant factor.
        losses: each step's batch loss (before its update), as the training reports it.
        smoothed: the losses' moving average with bias correction.
        suggestions: each rule's suggestion by name; empty when too few steps were taken.
        rule: the rule whose rate is suggested (`DEFAULT_RULE`).
        ended: "diverged" (the smoothed loss passed `diverge` x its minimum, or a loss was
            not finite), "end of range" or "stopped" (`should_stop`).
        diverged_at: the rate of the step that diverged, or None.
        start, end, steps: the sweep asked for.
        images: training images the batches were drawn from.
        seconds: how long the test took, its wait for a turn left out.
        settings: the training settings it measured (`TrainConfig.to_dict()`).
    """

    learning_rates: tuple[float, ...]
    losses: tuple[float, ...]
    smoothed: tuple[float, ...]
    suggestions: dict[str, Suggestion]
    rule: str
    ended: str
    diverged_at: float | None
    start: float
    end: float
    steps: int
    images: int
    seconds: float
    settings: dict[str, Any]

    @property
    def suggestion(self) -> Suggestion | None:
        """The suggested rate (by `rule`), or None when too few steps were taken."""
        return self.suggestions.get(self.rule)

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data, with each suggestion's rule label and sentence."""
        result = dataclasses.asdict(self)
        result["suggestions"] = {name: {**dataclasses.asdict(found), "label": RULES[name].label,
                                        "explanation": found.explanation}
                                 for name, found in self.suggestions.items()}
        result["suggested_learning_rate"] = (self.suggestion.learning_rate
                                             if self.suggestion else None)
        return result


def suggest(rates: np.ndarray, smoothed: np.ndarray, steps: int) -> dict[str, Suggestion]:
    """Every rule's suggestion from a sweep's curve, as fastai reads it: the first tenth of
    the planned steps and the last `SKIP_END` points are left out (the start is flat and
    noisy, the end lags the blow-up).

    Args:
        rates: the rates tried, ascending.
        smoothed: the smoothed loss at each.
        steps: the steps planned.

    Returns:
        {rule name: Suggestion}, empty when fewer than `MIN_POINTS` points are left.
    """
    readable = slice(steps // 10, max(0, len(rates) - SKIP_END))
    rates, smoothed = np.asarray(rates)[readable], np.asarray(smoothed)[readable]
    if len(rates) < MIN_POINTS:
        return {}
    return {name: Suggestion(name, *rule.pick(rates, smoothed)) for name, rule in RULES.items()}


def describe(result: dict[str, Any]) -> str:
    """A range test's result (`LRFindResult.to_dict()`) in lines for people: the sweep, how
    it ended, the suggestion and its rule, the other rules' rates, and every tenth point."""
    settings = result["settings"]
    tried = len(result["learning_rates"])
    ending = {"diverged": f"the loss blew up at {result['diverged_at'] or 0:.2g}",
              "end of range": "it reached the last rate",
              "stopped": "it was stopped"}[result["ended"]]
    lines = [f"{settings['backbone']} ({settings['mode']}, batch {settings['batch_size']}) on "
             f"{result['images']} training images: {tried} of {result['steps']} rates from "
             f"{result['start']:g} to {result['end']:g}; {ending}."]
    found = result["suggestions"].get(result["rule"])
    if found is None:
        lines.append("No suggestion: too few rates were tried before the end.")
    else:
        lines.append(f"Suggested learning rate: {found['learning_rate']:.2g} "
                     f"({found['label']}: {found['explanation']})")
        lines.append("Other rules: " + ", ".join(
            f"{other['label']} {other['learning_rate']:.2g}"
            for name, other in result["suggestions"].items() if name != result["rule"]))
    lines.append(f"{'rate':>10} {'loss':>8} {'smoothed':>9}")
    lines += [f"{rate:>10.2e} {loss:>8.3f} {smooth:>9.3f}" for rate, loss, smooth in list(zip(
        result["learning_rates"], result["losses"], result["smoothed"]))[::max(1, tried // 10)]]
    return "\n".join(lines)
