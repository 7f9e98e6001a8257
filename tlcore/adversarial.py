"""Adversarial training: each batch is replaced by adversarial versions of itself, made
against the model as it is, before the step (Madry et al. 2018; Wong et al. 2020).

The perturbation obeys the attacks' own pixel rules (`attack.pixels`: the epsilon ball,
[0, 255], whole 8-bit pixels inside the ball) and takes PGD's signed step, so "robust at
4/255" means the same thing in training as on the Attack page. Validation stays on clean
images: a robust run's clean accuracy is what the run reports.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from tlcore import config
from tlcore.attack import pixels

FGSM_RS_STEP = 1.25  # FGSM with a random start: one step of 1.25 x epsilon (Wong et al.)
PGD_STEP = 2.5  # PGD: steps of 2.5 x epsilon / steps (Madry et al.), as `attack.PGD`


class AdversarialTraining(keras.Model):
    """Trains `classifier` (its own variables: nothing is copied) on perturbed batches.

    Its weights are the classifier's, in the same order, so callbacks that keep, restore or
    checkpoint `get_weights()` work on either. Inference calls the classifier as it is.

    Args:
        classifier: pixels in [0, 255] -> logits.
        train_config: its `adversarial_*` settings and seed.
    """

    def __init__(self, classifier: keras.Model, train_config: config.TrainConfig) -> None:
        super().__init__(name="adversarial_training")
        self.classifier = classifier
        self.epsilon = float(train_config.adversarial_epsilon)
        self.method = train_config.adversarial_method
        self.attack_steps = config.ADVERSARIAL_METHODS[self.method].steps(
            int(train_config.adversarial_steps))
        self.step_size = (FGSM_RS_STEP * self.epsilon if self.method == "fgsm-rs"
                          else PGD_STEP * self.epsilon / self.attack_steps)
        self.seed = int(train_config.seed)

    def call(self, inputs: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        """The classifier's logits."""
        return self.classifier(inputs, training=training)

    def perturb(self, images: tf.Tensor, labels: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        """Adversarial versions of a batch: a uniform random start in the ball (seeded by the
        seed and `step`), then signed steps up the cross-entropy of the true labels with the
        model in inference mode, rounded to whole pixels inside the ball."""
        images = tf.cast(images, tf.float32)
        noise = tf.random.stateless_uniform(tf.shape(images), seed=tf.stack([self.seed, step]),
                                            minval=-self.epsilon, maxval=self.epsilon)
        current = pixels.project(images, images + noise, self.epsilon)
        for _ in range(self.attack_steps):
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(current)
                logits = self.classifier(current, training=False)
                loss = keras.losses.sparse_categorical_crossentropy(labels, logits,
                                                                    from_logits=True)
            current = pixels.signed_step(images, current, tape.gradient(loss, current),
                                         self.step_size, self.epsilon)
        return tf.stop_gradient(pixels.round_to_pixels(images, current, self.epsilon))

    def train_step(self, data: tuple) -> dict:
        """Keras's step, on the batch's adversarial versions."""
        images, labels, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        perturbed = self.perturb(images, labels, tf.cast(self.optimizer.iterations, tf.int32))
        return super().train_step((perturbed, labels) if sample_weight is None
                                  else (perturbed, labels, sample_weight))


def trainer(classifier: keras.Model, train_config: config.TrainConfig) -> keras.Model:
    """What Keras `fit` trains: the classifier itself, or its adversarial training."""
    if not train_config.adversarial_epsilon:
        return classifier
    return AdversarialTraining(classifier, train_config)
