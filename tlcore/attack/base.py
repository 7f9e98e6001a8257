"""What every attack shares: pixel bounds, the epsilon ball, 8-bit rounding and success.

Attacks write only `run`, which proposes adversarial images; the base class projects them
onto the L-infinity ball of radius epsilon inside [0, 255] (only into [0, 255] for the
unbounded attacks, whose epsilon is None), rounds them to the 8-bit pixels a saved PNG
holds (staying inside the ball), and judges success on those rounded images, so a result
describes exactly the image a user downloads.
"""
from __future__ import annotations

import dataclasses
import threading
import time
import weakref
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from tlcore import config, models, pace
from tlcore.config import StepCallback

# Images attacked together: a batch is attacked in chunks of this many, so memory does not
# grow with the batch (VGG16 at 224 px: about 75 MB per image, 0.6 GB per chunk).
CHUNK_IMAGES = 8


class AttackStopped(RuntimeError):
    """`should_stop()` turned True during an attack (cancelled, or out of time)."""


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
        epsilon: the L-infinity budget in pixels of [0, 255] (8 means 8/255), or None for
            an unbounded attack (the image only stays inside [0, 255]).
    """

    name = "attack"
    title = "Attack"  # for people
    step_kind = "gradient"  # what one step costs (see `pace`)
    progress_unit = "image steps"  # what `on_step` counts (see `progress_total`)

    def __init__(self, *, epsilon: float | None) -> None:
        if epsilon is not None and not 0 < epsilon <= 255:
            raise ValueError(f"epsilon={epsilon} must be in (0, 255] pixels (e.g. 8 for 8/255)")
        self.epsilon = None if epsilon is None else float(epsilon)
        self._clean: np.ndarray | None = None  # the chunk being attacked, during a call
        self._clean_logits: np.ndarray | None = None
        self._offset = 0  # the chunk's first index in the batch (seeds random starts)
        self._should_stop: Callable[[], bool] | None = None
        self._on_step: StepCallback | None = None
        self._count = 0  # images in the batch being attacked
        self._steps_taken = 0  # steps begun on the current chunk

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
        """What `on_step` counts to over `count` images, in `progress_unit`s."""
        return self.image_steps(count)

    def progress_done(self, chunk: int, finished: int) -> int:
        """Progress at the start of the current step of a chunk of `chunk` images, of which
        `finished` need no more steps (DeepFool's flipped ones)."""
        return self.image_steps(self._offset) + min(self._steps_taken, self.max_steps) * chunk

    def __call__(self, model: keras.Model, images: np.ndarray, labels: np.ndarray | None = None,
                 *, target: int | None = None, should_stop: Callable[[], bool] | None = None,
                 on_step: StepCallback | None = None) -> AttackResult:
        """Attack a batch of images, CHUNK_IMAGES at a time.

        Args:
            model: pixels in [0, 255] -> logits.
            images: (N, S, S, 3) pixels in [0, 255].
            labels: (N,) true classes; None uses the model's own clean predictions.
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
        self._should_stop, self._on_step, self._count = should_stop, on_step, len(clean)
        parts, timings = [], {}
        self._build_graphs(model, clean[:1])
        try:
            for start in range(0, len(clean), CHUNK_IMAGES):
                self._offset, self._steps_taken = start, 0
                chunk = slice(start, start + CHUNK_IMAGES)
                traced, began = _tracing_count(model), time.monotonic()
                parts.append(self._attack_chunk(model, clean[chunk], None if labels is None
                                                else np.asarray(labels)[chunk], target))
                size = len(parts[-1].labels)
                if _tracing_count(model) == traced:  # a chunk that built a graph is no guide
                    timings.setdefault(size, []).append(
                        (time.monotonic() - began) / self.paced_steps(self._steps_taken))
                self._report(self.progress_total(start + size),
                             f"{start + size} of {len(clean)} done")
        finally:
            for size, seconds in timings.items():
                pace.record_step(model, self.step_kind, size, float(np.mean(seconds)))
            self._should_stop, self._on_step = None, None
            self._clean, self._clean_logits = None, None
        return AttackResult.concatenate(parts)

    def _attack_chunk(self, model: keras.Model, clean: np.ndarray, labels: np.ndarray | None,
                      target: int | None) -> AttackResult:
        self._clean, self._clean_logits = clean, None
        if labels is None:  # the model's own answers are the labels to move away from
            self._clean_logits = models.predict_logits(model, clean)
            labels = self._clean_logits.argmax(-1)
        labels = np.asarray(labels, dtype=np.int64)
        proposed = self.run(model, clean, labels, target)
        # An attack's first gradient at the clean images already gave their logits.
        clean_logits = (self._clean_logits if self._clean_logits is not None
                        else models.predict_logits(model, clean))
        self._clean = self._clean_logits = None
        adversarial = self.round_to_pixels(clean, self.project(clean, proposed))
        adversarial_logits = models.predict_logits(model, adversarial)
        predictions = adversarial_logits.argmax(-1)
        success = predictions == target if target is not None else predictions != labels
        delta = (adversarial - clean).reshape(len(clean), -1)
        return AttackResult(clean, adversarial, clean_logits, adversarial_logits, labels, target,
                            success, np.abs(delta).max(axis=1), np.sqrt((delta ** 2).sum(axis=1)))

    def _build_graphs(self, model: keras.Model, image: np.ndarray) -> None:
        """Trace the graphs this attack runs on, once per model, on one image: tracing
        takes seconds, and done inside a chunk it would spoil that chunk's timing."""
        gradient = _gradient_function(model)
        untraced = models.compiled(model).experimental_get_tracing_count() == 0 or (
            self.step_kind == "gradient" and gradient.experimental_get_tracing_count() == 0)
        if untraced and self._on_step is not None:  # seconds (MobileNetV2: about 5 s)
            preparing = "preparing the model's gradients, once per model"
            self._on_step(0, self.progress_total(self._count),
                          {"phase": self.progress_unit, "position": preparing,
                           "detail": preparing})
        if models.compiled(model).experimental_get_tracing_count() == 0:
            models.predict_logits(model, image)
        if self.step_kind == "gradient" and gradient.experimental_get_tracing_count() == 0:
            gradient(image, np.zeros(1, dtype=np.int64), tf.constant(False))

    def check_stop(self) -> None:
        """Raise AttackStopped when the caller's `should_stop()` says so."""
        if self._should_stop is not None and self._should_stop():
            raise AttackStopped("the attack was stopped (cancelled or out of time)")

    def paced_steps(self, steps_taken: int) -> float:
        """What a chunk's time is divided by for `pace` (and multiplied by for estimates):
        its steps, plus about one for the forward passes that score the result."""
        return max(steps_taken, 1) + 1

    def estimated_seconds(self, model: keras.Model, count: int) -> float | None:
        """Expected seconds to attack `count` images with `model`, from the pace of its
        earlier attacks in this process (`pace`), or None when it has none yet."""
        seconds = 0.0
        for start in range(0, int(count), CHUNK_IMAGES):
            size = min(CHUNK_IMAGES, int(count) - start)
            step = pace.seconds_per_step(model, self.step_kind, size)
            if step is None:
                return None
            seconds += step * self.paced_steps(self.max_steps)
        return seconds

    def begin_step(self, finished: int = 0) -> None:
        """Report progress and honour a stop; every attack calls this once per step
        (`loss_gradient` does, so a gradient attack need not), with how many of the chunk's
        images need no more steps. A one-step attack (FGSM) reports after each chunk only:
        its step's start is the previous chunk's end."""
        chunk = len(self._clean) if self._clean is not None else 0
        done = self.progress_done(chunk, finished)
        self._steps_taken += 1
        if self.max_steps > 1:
            first, last = self._offset + 1, self._offset + chunk
            images = (f"image {first} of {self._count}" if first == last
                      else f"images {first}-{last} of {self._count}")
            self._report(done, f"step {self._steps_taken} of {self.step_limit_words()}, "
                               f"{images}")
        self.check_stop()

    def _report(self, done: int, position: str) -> None:
        """on_step(image steps done, image steps in all, {"phase", "detail" (this attack
        and `position`), "position" (which step of which images)})."""
        if self._on_step is not None:
            self._on_step(done, self.progress_total(self._count),
                          {"phase": self.progress_unit, "position": position,
                           "detail": f"{self.title}: {position}"})

    def step_limit_words(self) -> str:
        """How many steps an image gets, in words ("10"; DeepFool: "at most 50")."""
        return str(self.max_steps)

    def run(self, model: keras.Model, images: np.ndarray, labels: np.ndarray,
            target: int | None) -> np.ndarray:
        """Propose adversarial images (float pixels); subclasses implement this."""
        raise NotImplementedError

    def project(self, clean: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Clip candidates into the epsilon ball around `clean` (if bounded) and [0, 255]."""
        if self.epsilon is not None:
            candidates = np.clip(candidates, clean - self.epsilon, clean + self.epsilon)
        return np.clip(candidates, 0, 255)

    def round_to_pixels(self, clean: np.ndarray, adversarial: np.ndarray) -> np.ndarray:
        """Round to whole pixel values without leaving the epsilon ball.

        Rounding alone can step past the budget (3.4 + 0.6 rounds to 4 with epsilon 0.6 on
        an image at 3.4); the ceil/floor of the ball's bounds stops that.
        """
        if self.epsilon is None:
            return np.clip(np.rint(adversarial), 0, 255).astype(np.float32)
        low = np.maximum(np.ceil(clean - self.epsilon), 0)
        high = np.minimum(np.floor(clean + self.epsilon), 255)
        return np.clip(np.rint(adversarial), low, high).astype(np.float32)

    def loss_gradient(self, model: keras.Model, images: np.ndarray, labels: np.ndarray,
                      target: int | None) -> np.ndarray:
        """Gradient, with respect to the pixels, of the loss an attack climbs.

        Untargeted: the cross-entropy of the true labels (climb it to leave them).
        Targeted: minus the cross-entropy of the target (climb it to reach the target).
        Runs as one compiled graph per model, which also skips the weights' gradients.
        Counts as one step of the attack (`begin_step`).
        """
        self.begin_step()
        goals = np.full(len(images), target) if target is not None else labels
        gradient, logits = _gradient_function(model)(
            np.asarray(images, dtype=np.float32), np.asarray(goals, dtype=np.int64),
            tf.constant(target is not None))
        if images is self._clean:
            self._clean_logits = logits.numpy()
        return gradient.numpy()


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
