"""Gradient attacks: FGSM (one signed step), PGD (iterated, projected, random start), and the
lesson's unbounded descent (plain gradient steps toward a target, no budget)."""
from __future__ import annotations

import numpy as np

from tlcore import config, models
from tlcore.attack import pixels
from tlcore.attack.base import Attack
from tlcore.attack.call import Chunk

PGD_METHOD, LESSON_METHOD = config.ATTACK_METHODS["pgd"], config.ATTACK_METHODS["lesson"]


class FGSM(Attack):
    """Fast gradient sign method (Goodfellow et al. 2015): one step of size epsilon.

    Args:
        epsilon: budget in pixels, for calls that name none.
    """

    title = "FGSM"
    bounded = True

    def run(self, chunk: Chunk) -> np.ndarray:
        """Step every pixel by epsilon in the direction that raises the attack's loss (its
        gradient at the clean images also gives their logits)."""
        gradient, chunk.clean_logits = self.loss_gradient(chunk, chunk.images)
        return chunk.images + chunk.epsilon * np.sign(gradient)


class PGD(Attack):
    """Projected gradient descent (Madry et al. 2018) in the L-infinity ball.

    Args:
        epsilon: budget in pixels, for calls that name none.
        steps: iterations.
        step_size: pixels per step; None takes 2.5 * epsilon / steps at each budget.
        random_start: begin from a uniform random point in the ball.
        seed: seeds the random start.
    """

    title = "PGD"
    bounded = True

    def __init__(self, *, epsilon: float | None = None,
                 steps: int = PGD_METHOD.default_steps,
                 step_size: float | None = PGD_METHOD.default_step_size,
                 random_start: bool = True, seed: int = 0) -> None:
        super().__init__(epsilon=epsilon)
        if steps < 1:
            raise ValueError(f"steps={steps} must be at least 1")
        self.steps = int(steps)
        self.step_size = float(step_size) if step_size else None
        self.random_start = random_start
        self.seed = seed

    def run(self, chunk: Chunk) -> np.ndarray:
        """Iterate signed gradient steps, projecting back into the ball after each."""
        images, epsilon = chunk.images, chunk.epsilon
        adversarial = images.copy()
        if self.random_start:
            # Seeded by the chunk's place in the batch, so chunks do not repeat one noise;
            # the same noise, scaled, at every budget.
            random = np.random.default_rng([self.seed, chunk.offset])
            noise = random.uniform(-epsilon, epsilon, images.shape)
            adversarial = self.project(images, images + noise.astype(np.float32), epsilon)
        step_size = self.step_size or 2.5 * epsilon / self.steps
        for _ in range(self.steps):
            gradient, _ = self.loss_gradient(chunk, adversarial)
            adversarial = np.asarray(pixels.signed_step(images, adversarial, gradient,
                                                        step_size, epsilon), np.float32)
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

    title = "The lesson's descent"

    def __init__(self, *, steps: int = LESSON_METHOD.default_steps,
                 step_size: float | None = LESSON_METHOD.default_step_size) -> None:
        super().__init__()
        if steps < 1:
            raise ValueError(f"steps={steps} must be at least 1")
        self.steps = int(steps)
        self.step_size = float(step_size) if step_size else LESSON_METHOD.default_step_size

    def run(self, chunk: Chunk) -> np.ndarray:
        """Follow the raw gradient (not its sign), keeping pixels inside [0, 255]."""
        adversarial = chunk.images.copy()
        step = self.step_size / models.input_scale(chunk.model)
        for _ in range(self.steps):
            gradient, _ = self.loss_gradient(chunk, adversarial)
            adversarial = np.clip(adversarial + step * gradient, 0, 255)
        return adversarial
