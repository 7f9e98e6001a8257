"""DeepFool (Moosavi-Dezfooli et al., 2016): the smallest L2 step across the nearest boundary.

Where FGSM and PGD spend a fixed budget, DeepFool asks how little change flips the label.
At each iteration it linearises the classifier around the current image: for every
candidate class k, the boundary with the current class is where (logit_k - logit_true)
reaches 0, at distance |f_k| / ||grad f_k||; it steps to the nearest one, slightly beyond
(the overshoot), until the prediction changes. A step that only just crosses can be undone
by rounding to whole pixels, so the step is then lengthened along its own direction (by at
most 2x) until the rounded image is still flipped: the result is the smallest perturbation
found that survives being saved.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tlcore import evaluate
from tlcore.attack.base import Attack

REFINE_FACTORS = (1.0, 1.02, 1.05, 1.1, 1.2, 1.35, 1.5, 1.75, 2.0)


class DeepFool(Attack):
    """Untargeted minimum-L2 attack: the smallest change in total size (L2), not per pixel;
    a few pixels may change a lot (its L-infinity is often larger than PGD's budget).

    Args:
        steps: iterations at most (it usually needs 2-5).
        candidates: how many of the most likely classes are considered as the nearest.
        overshoot: how far past the linearised boundary to step (0.02 = 2 %).
    """

    name = "deepfool"
    title = "DeepFool"
    step_kind = "deepfool"  # paced per chunk (see `paced_steps`)
    progress_unit = "images done"  # it stops early, so steps make a poor fraction

    def __init__(self, *, steps: int = 50, candidates: int = 10, overshoot: float = 0.02) -> None:
        super().__init__(epsilon=None)
        if steps < 1 or candidates < 2:
            raise ValueError(f"steps={steps} must be >= 1 and candidates={candidates} >= 2")
        self.steps, self.candidates, self.overshoot = int(steps), int(candidates), float(overshoot)

    def progress_total(self, count: int) -> int:
        """DeepFool counts images: each is done once its label flips (or at `steps`)."""
        return int(count)

    def progress_done(self, chunk: int, finished: int) -> int:
        """Images of earlier chunks, and those of this chunk already flipped."""
        return self._offset + finished

    def paced_steps(self, steps_taken: int) -> float:
        """A chunk counts as one unit of `pace`: how many steps it takes varies with the
        images, so the last attack's time per chunk is the best guess for the next."""
        return 1.0

    def step_limit_words(self) -> str:
        """DeepFool stops as soon as every label has flipped, usually within 2-5 steps."""
        return f"at most {self.steps}"

    def run(self, model: keras.Model, images: np.ndarray, labels: np.ndarray,
            target: int | None) -> np.ndarray:
        """Step each image toward its nearest boundary until its prediction changes."""
        if target is not None:
            raise ValueError("DeepFool is untargeted; use PGD or the lesson's descent for a "
                             "target")
        clean_logits = keras.ops.convert_to_numpy(model(images, training=False))
        count = min(self.candidates, clean_logits.shape[-1])
        # The true class first, then the most likely others (fixed for the whole attack).
        others = np.argsort(-clean_logits, axis=-1)
        ranked = np.array([[label] + [c for c in row if c != label][:count - 1]
                           for label, row in zip(labels, others)])
        total = np.zeros_like(images)
        active = np.ones(len(images), dtype=bool)
        for _ in range(self.steps):
            self.begin_step(finished=int((~active).sum()))
            candidate = np.clip(images + (1 + self.overshoot) * total, 0, 255)
            logits, gradients = _candidate_gradients(model, candidate, ranked)
            active &= logits.argmax(-1) == labels
            if not active.any():
                break
            values = np.take_along_axis(logits, ranked, axis=1)
            differences = values[:, 1:] - values[:, :1]  # f_k (negative while still right)
            directions = gradients[:, 1:] - gradients[:, :1]  # grad f_k
            norms = np.sqrt((directions.reshape(len(images), count - 1, -1) ** 2).sum(-1)) + 1e-8
            nearest = np.argmin(np.abs(differences) / norms, axis=1)
            picked = np.arange(len(images))
            step = ((np.abs(differences[picked, nearest]) + 1e-4) / norms[picked, nearest] ** 2)
            update = step[:, None, None, None] * directions[picked, nearest]
            total = total + np.where(active[:, None, None, None], update, 0.0)
        return self._survive_rounding(model, images, labels, total)

    def _survive_rounding(self, model: keras.Model, images: np.ndarray, labels: np.ndarray,
                          total: np.ndarray) -> np.ndarray:
        """Lengthen each image's step along its direction until the flip survives rounding
        to whole pixels (a step that just crosses the boundary is often undone by it)."""
        chosen = np.clip(images + (1 + self.overshoot) * total, 0, 255)
        pending = np.ones(len(images), dtype=bool)
        for factor in REFINE_FACTORS:
            candidate = np.clip(images + factor * (1 + self.overshoot) * total, 0, 255)
            flipped = evaluate.predict_logits(model, np.rint(candidate)).argmax(-1) != labels
            take = pending & flipped
            chosen[take] = candidate[take]
            pending &= ~flipped
            if not pending.any():
                break
        return chosen.astype(np.float32)


def _candidate_gradients(model: keras.Model, images: np.ndarray, ranked: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Logits (N, K) and the gradients of each image's ranked candidate logits
    (N, C, S, S, 3): one backward pass per candidate position."""
    pixels = tf.convert_to_tensor(images, dtype=tf.float32)
    rows = tf.range(len(images))
    gradients = []
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(pixels)
        logits = model(pixels, training=False)
        scores = [tf.reduce_sum(tf.gather_nd(logits, tf.stack([rows, ranked[:, j]], axis=1)))
                  for j in range(ranked.shape[1])]
    for score in scores:
        gradients.append(tape.gradient(score, pixels).numpy())
    del tape
    return logits.numpy(), np.stack(gradients, axis=1)
