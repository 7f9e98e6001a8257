"""Gradient-sign attacks: FGSM (one step) and PGD (iterated, projected, random start)."""
from __future__ import annotations

import keras
import numpy as np

from tlcore.attack.base import Attack


class FGSM(Attack):
    """Fast gradient sign method (Goodfellow et al. 2015): one step of size epsilon.

    Args:
        epsilon: budget in pixels.
    """

    name = "fgsm"

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
            noise = np.random.default_rng(self.seed).uniform(-self.epsilon, self.epsilon,
                                                             images.shape)
            adversarial = self.project(images, images + noise.astype(np.float32))
        for _ in range(self.steps):
            gradient = self.loss_gradient(model, adversarial, labels, target)
            adversarial = self.project(images, adversarial + self.step_size * np.sign(gradient))
        return adversarial
