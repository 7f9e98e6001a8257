"""Published results the app, the command line and the docs cite beside a user's own: one
table, each entry with its setting, its numbers and where they were published.

Every number here was read in its source (the address given), not recalled: RobustBench's
entries from its leaderboard's model records (`model_info/<dataset>/Linf/*.json` in
github.com/RobustBench/robustbench), the training times from the table of the authors'
repository for "Fast is better than free".
"""
from __future__ import annotations

import dataclasses

ROBUSTBENCH = "https://robustbench.github.io/"
FAST_ADVERSARIAL = "https://github.com/locuslab/fast_adversarial"


@dataclasses.dataclass(frozen=True)
class Reference:
    """One published result: a model's top-1 accuracy on clean images and under an attack.

    Attributes:
        setting: the model, its data and how it was trained, in words.
        attack: the attack and its L-infinity budget, in words ("AutoAttack at 4/255").
        epsilon: that budget in pixels of [0, 255] (4 = 4/255), as this tool counts it.
        clean: accuracy on the clean test images, in percent.
        attacked: accuracy under the attack, in percent.
        source: who published it, as a reader would look it up.
        year: when.
        url: where the numbers can be read.
        training_minutes: the training's wall time as published, where the source gives it.
    """

    setting: str
    attack: str
    epsilon: float
    clean: float
    attacked: float
    source: str
    year: int
    url: str
    training_minutes: float | None = None

    def sentence(self) -> str:
        """The result in one sentence, with its source and year (no address)."""
        minutes = ("" if self.training_minutes is None
                   else f", after {self.training_minutes:,g} minutes of training")
        return (f"{self.setting}: {self.clean:g}% on clean images, {self.attacked:g}% under "
                f"{self.attack}{minutes} ({self.source}, {self.year}).")

    def describe(self) -> str:
        """`sentence()` followed by the address to read it at."""
        return f"{self.sentence()} {self.url}"

    def to_dict(self) -> dict:
        """Its fields and its sentence, for JSON."""
        return {**dataclasses.asdict(self), "sentence": self.sentence()}


STANDARD_IMAGENET = Reference(
    setting="A standard ImageNet ResNet-50", attack="AutoAttack at 4/255",
    epsilon=4, clean=76.52, attacked=0.0, source="RobustBench", year=2021, url=ROBUSTBENCH)

ROBUST_IMAGENET = Reference(
    setting="ImageNet ResNet-50 adversarially trained at 4/255 (Salman et al. 2020)",
    attack="AutoAttack at 4/255", epsilon=4, clean=64.02, attacked=34.96,
    source="RobustBench", year=2021, url=ROBUSTBENCH)

ROBUSTNESS = (
    STANDARD_IMAGENET,
    ROBUST_IMAGENET,
    Reference(setting="ImageNet ResNet-50 adversarially trained at 4/255 (Engstrom et al., "
                      "robustness library 2019)",
              attack="AutoAttack at 4/255", epsilon=4, clean=62.56, attacked=29.22,
              source="RobustBench", year=2021, url=ROBUSTBENCH),
    Reference(setting="A standard CIFAR-10 WideResNet-28-10", attack="AutoAttack at 8/255",
              epsilon=8, clean=94.78, attacked=0.0, source="RobustBench", year=2021,
              url=ROBUSTBENCH),
    Reference(setting="CIFAR-10 ResNet-18 trained on FGSM-with-random-start images at 8/255 "
                      "(Wong, Rice & Kolter 2020)",
              attack="AutoAttack at 8/255", epsilon=8, clean=83.34, attacked=43.21,
              source="RobustBench", year=2021, url=ROBUSTBENCH),
    Reference(setting="CIFAR-10 trained on FGSM-with-random-start images at 8/255",
              attack="PGD at 8/255", epsilon=8, clean=86.06, attacked=46.06,
              source="Wong, Rice & Kolter, Fast is better than free", year=2020,
              url=FAST_ADVERSARIAL, training_minutes=12),
    Reference(setting="CIFAR-10 trained on PGD-7 images at 8/255 (Madry et al. 2018)",
              attack="PGD at 8/255", epsilon=8, clean=87.30, attacked=45.80,
              source="Wong, Rice & Kolter, Fast is better than free", year=2020,
              url=FAST_ADVERSARIAL, training_minutes=4966),
)
