"""Gradient attacks: FGSM (one signed step), PGD (iterated, projected, random start), and the
lesson's unbounded descent (plain gradient steps toward a target, no budget)."""
from __future__ import annotations

import keras
import numpy as np

from tlcore import models
from tlcore.attack.base import Attack


class FGSM(Attack):
    """Fast gradient sign method (Goodfellow et al. 2015): one step of size epsilon.

    Args:
        epsilon: budget in pixels.
    """

    name = "fgsm"
    title = "FGSM"

    def run(self, model: keras.Model, images: np.ndarray, labels: np.ndarray,
            target: int | None) -> np.ndarray:
        """Step every pixel by epsilon in the direction that raises the attack's loss."""
        return images + self.epsilon * np.sign(self.loss_gradient(model, images, labels, target))


class PGD(Attack):
    """Projected gradient descent (Madry et al. 2018) in the L-infinity ball.

    Args:
        epsilon: budget in pixels.
        steps: iterations.
        step_size: pixels per step; None takes 2.5 * epsilon / steps.
        random_start: begin from a uniform random point in the ball.
        seed: seeds the random start.
    """

    name = "pgd"
    title = "PGD"

    def __init__(self, *, epsilon: float, steps: int = 10, step_size: float | None = None,
                 random_start: bool = True, seed: int = 0) -> None:
        super().__init__(epsilon=epsilon)
        if steps < 1:
            raise ValueError(f"steps={steps} must be at least 1")
        self.steps = int(steps)
        self.step_size = float(step_size) if step_size else 2.5 * self.epsilon / self.steps
        self.random_start = random_start
        self.seed = seed

    def run(self, model: keras.Model, images: np.ndarray, labels: np.ndarray,
            target: int | None) -> np.ndarray:
        """Iterate signed gradient steps, projecting back into the ball after each."""
        adversarial = images.copy()
        if self.random_start:
            # Seeded by the chunk's place in the batch, so chunks do not repeat one noise.
            random = np.random.default_rng([self.seed, self._offset])
            noise = random.uniform(-self.epsilon, self.epsilon, images.shape)
            adversarial = self.project(images, images + noise.astype(np.float32))
        for _ in range(self.steps):
            gradient = self.loss_gradient(model, adversarial, labels, target)
            adversarial = self.project(images, adversarial + self.step_size * np.sign(gradient))
        return adversarial


class LessonDescent(Attack):
    """The lesson's attack: plain gradient descent on the target's cross-entropy, no budget.

    The lesson takes 100 unbounded steps and turns a dog into a "Siamese cat" for VGG16; the
    change is often visible, which is the point of comparing it with a bounded PGD. Without
    a target it climbs the true class's cross-entropy instead. As the lesson's render recipe
    (`visualize.lesson_class_weight`), the step is per unit of the gradient with respect to
    the model's own input: on VGG16 (pixels minus a mean) exactly the lesson's; behind
    `[-1, 1]` the pixel gradient is 127.5 times smaller and the step 127.5 times longer, so
    the image does not stay where it was.

    Args:
        steps: gradient steps.
        step_size: pixels per unit of gradient with respect to the model's input (the
            lesson's learning rate, 1).
    """

    name = "lesson"
    title = "The lesson's descent"

    def __init__(self, *, steps: int = 100, step_size: float | None = None) -> None:
        super().__init__(epsilon=None)
        if steps < 1:
            raise ValueError(f"steps={steps} must be at least 1")
        self.steps = int(steps)
        self.step_size = float(step_size) if step_size else 1.0

    def run(self, model: keras.Model, images: np.ndarray, labels: np.ndarray,
            target: int | None) -> np.ndarray:
        """Follow the raw gradient (not its sign), keeping pixels inside [0, 255]."""
        adversarial = images.copy()
        step = self.step_size / models.input_scale(model)
        for _ in range(self.steps):
            gradient = self.loss_gradient(model, adversarial, labels, target)
            adversarial = np.clip(adversarial + step * gradient, 0, 255)
        return adversarial
