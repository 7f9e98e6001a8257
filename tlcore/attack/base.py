"""What every attack shares: pixel bounds, the epsilon ball, 8-bit rounding and success.

Attacks write only `run`, which proposes adversarial images for one `Chunk`; the base class
projects them onto the L-infinity ball of radius epsilon inside [0, 255] (only into
[0, 255] for the unbounded attacks, which have no epsilon), rounds them to the 8-bit
pixels a saved PNG holds (staying inside the ball), and judges success on those rounded
images, so a result describes exactly the image a user downloads.

As in foolbox, an attack object holds only its settings: the images, the budget(s) and
the progress of a call live in that call (`attack/call.py`), so one object can
serve several threads at once, and one call can take several budgets (`Attack.sweep`).
"""
from __future__ import annotations

import dataclasses
import threading
import time
import weakref
from typing import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from tlcore import config, models, pace
from tlcore.attack import pixels
from tlcore.attack.call import CallProgress, Chunk
from tlcore.config import StepCallback

# Images attacked together: a batch is attacked in chunks of this many, so memory does not
# grow with the batch (measured: docs/architecture.md, "Attacks run 8 images at a time").
CHUNK_IMAGES = 8
PREPARING = "preparing the model's gradients, once per model"


@dataclasses.dataclass(frozen=True)
class AttackResult:
    """Outcome of an attack on a batch.

    Attributes:
        clean: (N, S, S, 3) original pixels.
        adversarial: (N, S, S, 3) adversarial pixels, whole numbers in [0, 255].
        clean_logits, adversarial_logits: (N, K).
        labels: (N,) the classes the attack moves away from.
        target: the class a targeted attack moves toward, or None.
        success: (N,) bool, judged on the rounded adversarial images.
        linf, l2: (N,) distances in pixels.
    """

    clean: np.ndarray
    adversarial: np.ndarray
    clean_logits: np.ndarray
    adversarial_logits: np.ndarray
    labels: np.ndarray
    target: int | None
    success: np.ndarray
    linf: np.ndarray
    l2: np.ndarray

    @property
    def perturbation(self) -> np.ndarray:
        """adversarial - clean, in pixels."""
        return self.adversarial - self.clean

    @classmethod
    def concatenate(cls, parts: list[AttackResult]) -> AttackResult:
        """Join the results of consecutive chunks of one batch (same target)."""
        joined = {field.name: np.concatenate([getattr(part, field.name) for part in parts])
                  for field in dataclasses.fields(cls) if field.name != "target"}
        return cls(**joined, target=parts[0].target)


class Attack:
    """Base class of attacks in pixel space.

    Args:
        epsilon: a bounded attack's L-infinity budget in pixels of [0, 255] (8 means
            8/255), used by a call that names none; None: every call names its own.
            Unbounded attacks have none (the image only stays inside [0, 255]).
    """

    title = "Attack"  # for people
    bounded = False  # it has an L-infinity budget (as `config.AttackMethod.bounded`)
    step_kind = "gradient"  # what one step costs (see `pace`)
    progress_unit = "image steps"  # what `on_step` counts (see `progress_total`)

    def __init__(self, *, epsilon: float | None = None) -> None:
        self.epsilon = None
        if epsilon is not None:
            self.epsilon = self._budget(epsilon)

    def __repr__(self) -> str:
        settings = ", ".join(f"{key}={value!r}" for key, value in vars(self).items()
                             if not key.startswith("_"))
        return f"{type(self).__name__}({settings})"

    @property
    def max_steps(self) -> int:
        """Steps each image gets at most (FGSM: 1; DeepFool usually stops far earlier)."""
        return int(getattr(self, "steps", 1))

    def image_steps(self, count: int) -> int:
        """The work of attacking `count` images, in image steps (images x steps, at most):
        the unit of `pace`'s estimates and, for most attacks, of `on_step`'s progress."""
        return int(count) * self.max_steps

    def progress_total(self, count: int) -> int:
        """What `on_step` counts to over `count` images at one budget, in
        `progress_unit`s."""
        return self.image_steps(count)

    def progress_done(self, chunk: Chunk, finished: int) -> int:
        """Progress at one budget at the start of the chunk's current step, of whose
        images `finished` need no more steps (DeepFool's flipped ones)."""
        return (self.image_steps(chunk.offset)
                + min(chunk.steps_taken, self.max_steps) * len(chunk.images))

    def __call__(self, model: keras.Model, images: np.ndarray, labels: np.ndarray | None = None,
                 *, epsilon: float | None = None, target: int | None = None,
                 should_stop: Callable[[], bool] | None = None,
                 on_step: StepCallback | None = None) -> AttackResult:
        """Attack a batch of images, CHUNK_IMAGES at a time.

        Args:
            model: pixels in [0, 255] -> logits.
            images: (N, S, S, 3) pixels in [0, 255].
            labels: (N,) true classes; None uses the model's own clean predictions.
            epsilon: the budget in pixels (bounded attacks); None: the attack's own.
            target: a class to reach (targeted attack), or None to just flip the label.
            should_stop: polled at every gradient step; True raises AttackStopped.
            on_step: progress at every step, as on_step(done, `progress_total(N)`,
                {"phase": `progress_unit`, "detail": which step of which images}): image
                steps, or for DeepFool (which stops early) images done.

        Returns:
            An AttackResult describing the 8-bit adversarial images.

        Raises:
            config.LimitError: more images or steps than `config.limits()` allows.
            AttackStopped: `should_stop()` turned True.
        """
        progress = CallProgress(self.title, self.progress_unit, [self._budget(epsilon)],
                                on_step=on_step, should_stop=should_stop)
        return self._attack(model, images, labels, target, progress)[0]

    def sweep(self, model: keras.Model, images: np.ndarray, labels: np.ndarray | None = None,
              *, epsilons: Sequence[float], target: int | None = None,
              should_stop: Callable[[], bool] | None = None,
              on_step: StepCallback | None = None) -> list[AttackResult]:
        """Attack the same batch at each budget in turn: a call per budget, as one count.

        Args:
            epsilons: budgets in pixels (k for k/255), each in (0, 255].
            on_step: progress over every budget, as on_step(done, len(epsilons) x
                `progress_total(N)`, {"phase", "epsilon", "detail": the attack, the budget
                (which of how many) and the position}).
            The others: as `__call__`.

        Returns:
            An AttackResult per budget, in the order of `epsilons`.
        """
        if not self.bounded:
            raise ValueError(f"{self.title} has no budget to sweep: a sweep needs a bounded "
                             f"attack ({', '.join(config.BOUNDED_ATTACKS)})")
        budgets = [config.check_epsilon(epsilon) for epsilon in epsilons]
        if not budgets:
            return []
        progress = CallProgress(self.title, self.progress_unit, budgets, sweeping=True,
                                on_step=on_step, should_stop=should_stop)
        return self._attack(model, images, labels, target, progress)

    def _budget(self, epsilon: float | None) -> float | None:
        """A call's budget: the one it names, else the attack's own (bounded attacks)."""
        if not self.bounded:
            if epsilon is not None:
                raise ValueError(f"{self.title} has no budget: epsilon={epsilon} means "
                                 "nothing to it")
            return None
        if epsilon is None and self.epsilon is None:
            raise ValueError(f"{self.title} needs a budget: give epsilon to the call or "
                             "when building the attack")
        return self.epsilon if epsilon is None else config.check_epsilon(epsilon)

    def _checked(self, model: keras.Model, images: np.ndarray, target: int | None
                 ) -> np.ndarray:
        """The batch as float32 pixels, once its shape, size, range and target are checked."""
        clean = np.asarray(images, dtype=np.float32)
        if clean.ndim != 4 or clean.shape[-1] != 3:
            raise ValueError(f"images must be (N, S, S, 3); got shape {clean.shape}")
        config.check_limit("attack_images", len(clean))
        config.check_limit("attack_steps", getattr(self, "steps", 1))
        if clean.min() < 0 or clean.max() > 255:
            raise ValueError("images must be pixels in [0, 255]; got values from "
                             f"{clean.min():.2f} to {clean.max():.2f}")
        num_classes = int(model.output_shape[-1])
        if target is not None and not 0 <= target < num_classes:
            raise ValueError(f"target={target} is not a class index in [0, {num_classes})")
        return clean

    def _attack(self, model: keras.Model, images: np.ndarray, labels: np.ndarray | None,
                target: int | None, progress: CallProgress) -> list[AttackResult]:
        """Each of the call's budgets in turn over the batch, chunk by chunk; the pace is
        recorded at the end (or the stop)."""
        clean = self._checked(model, images, target)
        progress.count, progress.per_budget = len(clean), self.progress_total(len(clean))
        timings: dict[int, list[float]] = {}
        self._build_graphs(model, clean[:1], progress)
        results = []
        try:
            for budget in range(len(progress.budgets)):
                progress.budget = budget
                results.append(self._attack_budget(model, clean, labels, target, progress,
                                                   timings))
        finally:
            for size, seconds in timings.items():
                pace.record_step(model, self.step_kind, size, float(np.mean(seconds)))
        return results

    def _attack_budget(self, model: keras.Model, clean: np.ndarray, labels: np.ndarray | None,
                       target: int | None, progress: CallProgress,
                       timings: dict[int, list[float]]) -> AttackResult:
        """The batch at `progress.epsilon`, chunk by chunk, timing each chunk for `pace`."""
        parts = []
        for start in range(0, len(clean), CHUNK_IMAGES):
            chunk = slice(start, start + CHUNK_IMAGES)
            traced, began = _tracing_count(model), time.monotonic()
            part, steps_taken = self._attack_chunk(
                model, clean[chunk], None if labels is None else np.asarray(labels)[chunk],
                target, start, progress)
            parts.append(part)
            size = len(part.labels)
            if _tracing_count(model) == traced:  # a chunk that built a graph is no guide
                timings.setdefault(size, []).append(
                    (time.monotonic() - began) / self.paced_steps(steps_taken))
            progress.report(self.progress_total(start + size),
                            f"{start + size} of {len(clean)} done")
        return AttackResult.concatenate(parts)

    def _attack_chunk(self, model: keras.Model, clean: np.ndarray, labels: np.ndarray | None,
                      target: int | None, offset: int, progress: CallProgress
                      ) -> tuple[AttackResult, int]:
        """One chunk at the current budget: its result and the steps it took."""
        clean_logits = None
        if labels is None:  # the model's own answers are the labels to move away from
            clean_logits = models.predict_logits(model, clean)
            labels = clean_logits.argmax(-1)
        chunk = Chunk(model, clean, np.asarray(labels, dtype=np.int64), target,
                      progress.epsilon, offset, progress, clean_logits)
        proposed = self.run(chunk)
        # An attack's first gradient at the clean images may already have given their logits.
        clean_logits = (chunk.clean_logits if chunk.clean_logits is not None
                        else models.predict_logits(model, clean))
        epsilon, labels = chunk.epsilon, chunk.labels
        adversarial = self.round_to_pixels(clean, self.project(clean, proposed, epsilon),
                                           epsilon)
        adversarial_logits = models.predict_logits(model, adversarial)
        predictions = adversarial_logits.argmax(-1)
        success = predictions == target if target is not None else predictions != labels
        delta = (adversarial - clean).reshape(len(clean), -1)
        result = AttackResult(clean, adversarial, clean_logits, adversarial_logits, labels,
                              target, success, np.abs(delta).max(axis=1),
                              np.sqrt((delta ** 2).sum(axis=1)))
        return result, chunk.steps_taken

    def _build_graphs(self, model: keras.Model, image: np.ndarray,
                      progress: CallProgress) -> None:
        """Trace the graphs this attack runs on, once per model, on one image: tracing
        takes seconds, and done inside a chunk it would spoil that chunk's timing."""
        gradient = _gradient_function(model)
        untraced = models.compiled(model).experimental_get_tracing_count() == 0 or (
            self.step_kind == "gradient" and gradient.experimental_get_tracing_count() == 0)
        if untraced:  # it takes seconds: say so at step 0
            progress.report(0, PREPARING, headed=progress.sweeping)
        if models.compiled(model).experimental_get_tracing_count() == 0:
            models.predict_logits(model, image)
        if self.step_kind == "gradient" and gradient.experimental_get_tracing_count() == 0:
            gradient(image, np.zeros(1, dtype=np.int64), tf.constant(False))

    def paced_steps(self, steps_taken: int) -> float:
        """What a chunk's time is divided by for `pace` (and multiplied by for estimates):
        its steps, plus about one for the forward passes that score the result."""
        return max(steps_taken, 1) + 1

    def estimated_seconds(self, model: keras.Model, count: int) -> float | None:
        """Expected seconds to attack `count` images at one budget with `model`, from the
        pace of its earlier attacks in this process (`pace`), or None when it has none yet."""
        seconds = 0.0
        for start in range(0, int(count), CHUNK_IMAGES):
            size = min(CHUNK_IMAGES, int(count) - start)
            step = pace.seconds_per_step(model, self.step_kind, size)
            if step is None:
                return None
            seconds += step * self.paced_steps(self.max_steps)
        return seconds

    def begin_step(self, chunk: Chunk, finished: int = 0) -> None:
        """Report progress and honour a stop; every attack calls this once per step
        (`loss_gradient` does, so a gradient attack need not), with how many of the chunk's
        images need no more steps. A one-step attack (FGSM) reports after each chunk only:
        its step's start is the previous chunk's end."""
        done = self.progress_done(chunk, finished)
        chunk.steps_taken += 1
        if self.max_steps > 1:
            first, last = chunk.offset + 1, chunk.offset + len(chunk.images)
            images = (f"image {first} of {chunk.progress.count}" if first == last
                      else f"images {first}-{last} of {chunk.progress.count}")
            chunk.progress.report(done, f"step {chunk.steps_taken} of "
                                        f"{self.step_limit_words()}, {images}")
        chunk.check_stop()

    def step_limit_words(self) -> str:
        """How many steps an image gets, in words ("10"; DeepFool: "at most 50")."""
        return str(self.max_steps)

    def run(self, chunk: Chunk) -> np.ndarray:
        """Propose adversarial images (float pixels) for `chunk.images`; subclasses
        implement this."""
        raise NotImplementedError

    @staticmethod
    def project(clean: np.ndarray, candidates: np.ndarray, epsilon: float | None
                ) -> np.ndarray:
        """Clip candidates into the epsilon ball around `clean` (if bounded) and [0, 255]
        (`attack.pixels.project`)."""
        return _as_pixels(pixels.project(np.asarray(clean, np.float32),
                                         np.asarray(candidates, np.float32), epsilon))

    @staticmethod
    def round_to_pixels(clean: np.ndarray, adversarial: np.ndarray, epsilon: float | None
                        ) -> np.ndarray:
        """Round to whole pixel values without leaving the epsilon ball
        (`attack.pixels.round_to_pixels`)."""
        return _as_pixels(pixels.round_to_pixels(np.asarray(clean, np.float32),
                                                 np.asarray(adversarial, np.float32), epsilon))

    def loss_gradient(self, chunk: Chunk, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradient, with respect to the pixels, of the loss an attack climbs at `images`
        (the chunk's, or points near them), and the logits there.

        Untargeted: the cross-entropy of the chunk's labels (climb it to leave them).
        Targeted: minus the cross-entropy of the target (climb it to reach the target).
        Runs as one compiled graph per model, which also skips the weights' gradients.
        Counts as one step of the attack (`begin_step`).
        """
        self.begin_step(chunk)
        goals = np.full(len(images), chunk.target) if chunk.target is not None else chunk.labels
        gradient, logits = _gradient_function(chunk.model)(
            np.asarray(images, dtype=np.float32), np.asarray(goals, dtype=np.int64),
            tf.constant(chunk.target is not None))
        return gradient.numpy(), logits.numpy()


def _tracing_count(model: keras.Model) -> int:
    """How many graphs the model's compiled call and attack gradient have traced so far."""
    return (models.compiled(model).experimental_get_tracing_count()
            + _gradient_function(model).experimental_get_tracing_count())


_GRADIENTS: "weakref.WeakKeyDictionary[keras.Model, tf.types.experimental.GenericFunction]" = (
    weakref.WeakKeyDictionary())
_GRADIENTS_LOCK = threading.Lock()


def _gradient_function(model: keras.Model) -> tf.types.experimental.GenericFunction:
    """(pixels, goal classes, targeted) -> (gradient of the attack's loss, logits), compiled
    once per model. In a graph only the pixels' gradient is computed: an eager tape would
    also work out every convolution's filter gradient, about a third of the cost."""
    with _GRADIENTS_LOCK:
        function = _GRADIENTS.get(model)
        if function is None:
            reference = weakref.ref(model)

            @tf.function(input_signature=[
                tf.TensorSpec((None, *model.input_shape[1:]), tf.float32),
                tf.TensorSpec((None,), tf.int64), tf.TensorSpec((), tf.bool)])
            def function(pixels, goals, targeted):
                with tf.GradientTape(watch_accessed_variables=False) as tape:
                    tape.watch(pixels)
                    logits = reference()(pixels, training=False)
                    loss = tf.keras.losses.sparse_categorical_crossentropy(goals, logits,
                                                                           from_logits=True)
                    loss = tf.where(targeted, -loss, loss)
                return tape.gradient(loss, pixels), logits

            _GRADIENTS[model] = function
    return function


def _as_pixels(values: object) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(values), dtype=np.float32)
