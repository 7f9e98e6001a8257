"""What an ideal image maximises: composable objectives over logits and layer activations.

An objective maps (logits (N, K), {layer name: activations (N, H, W, C)}) to one score per
image. They compose like numbers, as in Lucid: `class_logit(3) - 0.1 * channel("block4_conv",
7)` is an objective too; the layers any part needs are collected so that rendering asks the
model for exactly those activations.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import tensorflow as tf

ScoreFunction = Callable[[tf.Tensor, dict[str, tf.Tensor]], tf.Tensor]


@dataclasses.dataclass(frozen=True)
class Objective:
    """A score per image to maximise.

    Attributes:
        function: (logits, activations by layer name) -> (N,) scores.
        description: for people, e.g. "logit[cat] - 0.1 * channel[block4_conv:7]".
        layers: the layer activations `function` reads.
        target: the class it is about, when it is one class's score (for reports).
    """

    function: ScoreFunction
    description: str
    layers: tuple[str, ...] = ()
    target: int | None = None

    def __call__(self, logits: tf.Tensor, activations: dict[str, tf.Tensor]) -> tf.Tensor:
        """Score a batch."""
        return self.function(logits, activations)

    def __add__(self, other: "Objective") -> "Objective":
        return _combine(self, other, 1.0, "+")

    def __sub__(self, other: "Objective") -> "Objective":
        return _combine(self, other, -1.0, "-")

    def __mul__(self, factor: float) -> "Objective":
        factor = float(factor)
        return Objective(lambda logits, acts: factor * self.function(logits, acts),
                         f"{factor:g} * {self.description}", self.layers, self.target)

    __rmul__ = __mul__

    def __neg__(self) -> "Objective":
        return self * -1.0


def _combine(first: Objective, second: Objective, sign: float, symbol: str) -> Objective:
    return Objective(lambda logits, acts: first.function(logits, acts)
                     + sign * second.function(logits, acts),
                     f"{first.description} {symbol} {second.description}",
                     tuple(dict.fromkeys(first.layers + second.layers)),
                     first.target if first.target is not None else second.target)


def class_logit(index: int) -> Objective:
    """The class's pre-softmax logit: the best default (raising a probability can be done by
    lowering the other classes, which makes worse images)."""
    return Objective(lambda logits, acts: logits[:, index], f"logit[{index}]", (), index)


def class_probability(index: int) -> Objective:
    """The class's log-probability, i.e. minus its cross-entropy (the lesson's objective)."""
    return Objective(lambda logits, acts: tf.nn.log_softmax(logits, axis=-1)[:, index],
                     f"log p[{index}]", (), index)


def each_class(indices: Sequence[int], probability: bool = False) -> Objective:
    """Image i's own class: the logit (or log-probability) of `indices[i]`, so one batch of
    len(indices) images renders one ideal image per class."""
    chosen = tf.constant([[int(index)] for index in indices], tf.int32)

    def score(logits: tf.Tensor, acts: dict[str, tf.Tensor]) -> tf.Tensor:
        values = tf.nn.log_softmax(logits, axis=-1) if probability else logits
        return tf.gather(values, chosen, batch_dims=1)[:, 0]
    return Objective(score, f"{'log p' if probability else 'logit'}[each image's class]")


def channel(layer: str, index: int) -> Objective:
    """The mean activation of one channel of a spatial layer, over all positions."""
    return Objective(lambda logits, acts: tf.reduce_mean(acts[layer][..., index], axis=[1, 2]),
                     f"channel[{layer}:{index}]", (layer,))


def neuron(layer: str, index: int) -> Objective:
    """One channel's activation at the centre position of a spatial layer."""
    def score(logits: tf.Tensor, acts: dict[str, tf.Tensor]) -> tf.Tensor:
        activations = acts[layer]
        return activations[:, activations.shape[1] // 2, activations.shape[2] // 2, index]
    return Objective(score, f"neuron[{layer}:{index}]", (layer,))
