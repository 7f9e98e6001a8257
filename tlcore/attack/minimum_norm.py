"""DeepFool (Moosavi-Dezfooli et al., 2016): the smallest L2 step across the nearest boundary.

Where FGSM and PGD spend a fixed budget, DeepFool asks how little change flips the label.
At each iteration it linearises the classifier around the current image: for every
candidate class k, the boundary with the current class is where (logit_k - logit_true)
reaches 0, at distance |f_k| / ||grad f_k||; it steps to the nearest one, slightly beyond
(the overshoot), until the prediction changes.

That float step is often far below one pixel on a real network (figures in
docs/architecture.md), so rounding to the whole pixels a saved image holds gives the clean
image back. The result is therefore the smallest *8-bit* change found that flips the label:
the step is scaled along its own direction, doubling from the first factor at which rounding
changes a pixel up to 64x that, then bisected (to within 1 %) between the last factor that
did not flip and the first that did. An image still not flipped (or flipped with a larger L2
than a signed step could have) tries a signed step of 1, 2, ... 8 whole pixels along the
same direction. Of the rounded images that flip, the one with the smallest L2 is returned
(already whole pixels, so the base class's rounding keeps it as it is); an image none of
them flips is reported as a failure.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tlcore import config, models
from tlcore.attack.base import Attack
from tlcore.attack.call import Chunk

# The search along the float step, in multiples of its length. It starts where the largest
# component reaches half a pixel (a hair over: np.rint rounds exact halves to even), since
# below that rounding returns the clean image, or at 1x for a step already that large.
HALF_PIXEL = 0.51
SEARCH_FACTOR = 64.0  # doublings up to this multiple of the first factor (7 tries)
# Then bisection (geometric) until the factors that did not flip and did are within 1 %: a
# float step already over a pixel often needs only a few % more to survive rounding.
PRECISION, BISECTIONS = 1.01, 10
SIGN_PIXELS = range(1, 9)  # the fallback: a signed step of this many whole pixels


class DeepFool(Attack):
    """Untargeted minimum-L2 attack: the smallest change in total size (L2), not per pixel;
    a few pixels may change a lot (its L-infinity is often larger than PGD's budget). The
    change is the smallest found in whole pixels (what a saved image holds), not the float
    step, which rounding often erases (see the module's docstring).

    Args:
        steps: iterations at most (it usually needs 2-5).
        candidates: how many of the most likely classes are considered as the nearest.
        overshoot: how far past the linearised boundary to step (0.02 = 2 %).
    """

    title = "DeepFool"
    step_kind = "deepfool"  # paced per chunk (see `paced_steps`)
    progress_unit = "images done"  # it stops early, so steps make a poor fraction

    def __init__(self, *, steps: int = config.ATTACK_METHODS["deepfool"].default_steps,
                 candidates: int = 10, overshoot: float = 0.02) -> None:
        super().__init__()
        if steps < 1 or candidates < 2:
            raise ValueError(f"steps={steps} must be >= 1 and candidates={candidates} >= 2")
        self.steps, self.candidates, self.overshoot = int(steps), int(candidates), float(overshoot)

    def progress_total(self, count: int) -> int:
        """DeepFool counts images: each is done once its label flips (or at `steps`)."""
        return int(count)

    def progress_done(self, chunk: Chunk, finished: int) -> int:
        """Images of earlier chunks, and those of this chunk already flipped."""
        return chunk.offset + finished

    def paced_steps(self, steps_taken: int) -> float:
        """A chunk counts as one unit of `pace`: how many steps it takes varies with the
        images, so the last attack's time per chunk is the best guess for the next."""
        return 1.0

    def step_limit_words(self) -> str:
        """DeepFool stops as soon as every label has flipped, usually within 2-5 steps."""
        return f"at most {self.steps}"

    def run(self, chunk: Chunk) -> np.ndarray:
        """Step each image toward its nearest boundary until its prediction changes, then
        find the smallest whole-pixel change along that step that still flips it."""
        model, images, labels = chunk.model, chunk.images, chunk.labels
        if chunk.target is not None:
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
            self.begin_step(chunk, finished=int((~active).sum()))
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
        return self._smallest_rounded_flip(chunk, (1 + self.overshoot) * total)

    def _smallest_rounded_flip(self, chunk: Chunk, step: np.ndarray) -> np.ndarray:
        """The smallest-L2 whole-pixel image found that flips each label, searched along the
        float step `step` (N, S, S, 3): scaled, then as a signed step of whole pixels. An
        image none of them flips keeps its float step (the base class reports a failure)."""
        images = chunk.images
        # What survives clipping to [0, 255]: a component pushing a saturated pixel outward
        # does nothing, and must not set the scale the search starts from.
        step = np.clip(images + step, 0, 255) - images
        flips = _RoundedFlips(chunk)
        size = np.abs(step).reshape(len(images), -1).max(axis=1)
        moving = size > 0
        still = np.flatnonzero(~moving)  # already misclassified: DeepFool did not move them
        if len(still):
            flips.offer(still, images[still])
        self._search_scale(flips, step, size, moving)
        self._signed_steps(flips, step, moving)
        failed = np.clip(images + step, 0, 255)
        return np.where(flips.found[:, None, None, None], flips.best, failed).astype(np.float32)

    def _search_scale(self, flips: _RoundedFlips, step: np.ndarray, size: np.ndarray,
                      moving: np.ndarray) -> None:
        """Double each image's factor on `step` from where rounding first changes a pixel
        (up to SEARCH_FACTOR times that), then bisect between the last factor that did not flip
        and the first that did; one batched forward pass over the pending images a try."""
        safe = np.where(moving, size, 1.0)
        first = np.maximum(1.0, HALF_PIXEL / safe)
        low = np.minimum(first, 0.5 / safe)  # at most ties change below: the clean image
        high = np.full(len(step), np.inf)
        factor = first.copy()
        pending = moving.copy()
        while pending.any():
            indices = np.flatnonzero(pending)
            flipped = flips.offer_scaled(step, indices, factor[indices])
            high[indices[flipped]] = factor[indices[flipped]]
            low[indices[~flipped]] = factor[indices[~flipped]]
            pending[indices[flipped]] = False
            factor[indices] *= 2
            pending &= factor <= SEARCH_FACTOR * first
        for _ in range(BISECTIONS):
            indices = np.flatnonzero(np.isfinite(high) & (high > PRECISION * low))
            if not len(indices):
                break
            middle = np.sqrt(low[indices] * high[indices])
            flipped = flips.offer_scaled(step, indices, middle)
            high[indices[flipped]] = middle[flipped]
            low[indices[~flipped]] = middle[~flipped]

    def _signed_steps(self, flips: _RoundedFlips, step: np.ndarray, moving: np.ndarray) -> None:
        """Offer the sign of each image's step, SIGN_PIXELS whole pixels long, where nothing
        flips yet or where it may be smaller in L2 than what flipped (a step of k pixels has
        an L2 of at most k x the square root of its nonzero components)."""
        direction = np.sign(step)
        root = np.sqrt(np.count_nonzero(direction.reshape(len(step), -1), axis=1))
        for pixels in SIGN_PIXELS:
            indices = np.flatnonzero(moving & (flips.l2 > pixels * root))
            if not len(indices):
                break
            flips.offer(indices, flips.images[indices] + pixels * direction[indices])


class _RoundedFlips:
    """For each image, the smallest-L2 whole-pixel candidate offered so far that flips its
    label, judged as the base class judges: on the rounded image, by the model's argmax."""

    def __init__(self, chunk: Chunk) -> None:
        self.chunk, self.model = chunk, chunk.model
        self.images, self.labels = chunk.images, chunk.labels
        self.best = np.rint(np.clip(self.images, 0, 255))
        self.l2 = np.full(len(self.images), np.inf)  # inf: nothing flips yet

    @property
    def found(self) -> np.ndarray:
        """(N,) bool: some offered candidate flips the image's label."""
        return np.isfinite(self.l2)

    def offer_scaled(self, step: np.ndarray, indices: np.ndarray, factors: np.ndarray
                     ) -> np.ndarray:
        """Offer images[indices] + factors x step[indices]; which of them flip (N,) bool."""
        return self.offer(indices, self.images[indices]
                          + factors[:, None, None, None] * step[indices])

    def offer(self, indices: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Round candidates (len(indices), S, S, 3) to whole pixels in [0, 255], keep each
        one that flips with a smaller L2 than the best so far; which of them flip. Honours
        the call's stop first."""
        self.chunk.check_stop()
        rounded = np.rint(np.clip(candidates, 0, 255)).astype(np.float32)
        predictions = models.predict_logits(self.model, rounded).argmax(-1)
        flipped = predictions != self.labels[indices]
        l2 = np.sqrt(((rounded - self.images[indices]) ** 2).reshape(len(indices), -1).sum(1))
        better = flipped & (l2 < self.l2[indices])
        self.best[indices[better]] = rounded[better]
        self.l2[indices[better]] = l2[better]
        return flipped


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
