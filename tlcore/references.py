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


# Backbones: what each architecture is known for, beside what a bake-off measures on the
# user's own images. The ImageNet numbers were read in Keras's table of applications
# (keras-io, templates/api/applications/index.md, the page at KERAS_APPLICATIONS) and, for
# MobileNetV3, in its Keras documentation's table (the docstring of MobileNetV3Large). The
# transfer results on Oxford-IIIT Pets and this machine's speeds come from the project's
# shared list of reference numbers, which quotes them; they were not read again here.
KERAS_APPLICATIONS = "https://keras.io/api/applications/"
KERAS_MOBILENET_V3 = "https://keras.io/api/applications/mobilenet/"
KORNBLITH = "https://arxiv.org/abs/1805.08974"


@dataclasses.dataclass(frozen=True)
class BackboneReference:
    """One architecture's published ImageNet facts (the whole classifier, its 1000-class
    head included: a bake-off's bodies have no such head, so they are smaller).

    Attributes:
        backbone: its name in `tlcore.backbones`.
        model: its name as published ("VGG16").
        top1: top-1 accuracy on ImageNet's validation images, in percent.
        parameters_millions: weights of the whole ImageNet classifier, in millions.
        size_mb: its weights file in MB, where published.
        milliseconds: its published inference time, where published.
        timed_on: what that time is of, in words ("a batch of 32 on a 92-core CPU").
        source: who published it.
        url: where the numbers can be read.
    """

    backbone: str
    model: str
    top1: float
    parameters_millions: float
    size_mb: float | None
    milliseconds: float | None
    timed_on: str
    source: str
    url: str

    def sentence(self) -> str:
        """The facts in one sentence, with the source (no address)."""
        size = "" if self.size_mb is None else f", {self.size_mb:g} MB"
        timing = ("" if self.milliseconds is None
                  else f", {self.milliseconds:g} ms per {self.timed_on}")
        return (f"{self.model}: {self.top1:g}% top-1 on ImageNet, "
                f"{self.parameters_millions:g} million parameters with its ImageNet head"
                f"{size}{timing} ({self.source}).")

    def to_dict(self) -> dict:
        """Its fields and its sentence, for JSON."""
        return {**dataclasses.asdict(self), "sentence": self.sentence()}


_KERAS_CPU = "batch of 32 on a 92-core AMD EPYC CPU"
_PIXEL_CPU = "image on a Pixel 1 phone's CPU"
_KERAS = "Keras Applications"
_KERAS_V3 = "Keras's MobileNetV3 documentation"
BACKBONES = (
    BackboneReference("vgg16", "VGG16", 71.3, 138.4, 528, 69.5, _KERAS_CPU, _KERAS,
                      KERAS_APPLICATIONS),
    BackboneReference("vgg19", "VGG19", 71.3, 143.7, 549, 84.8, _KERAS_CPU, _KERAS,
                      KERAS_APPLICATIONS),
    BackboneReference("resnet50", "ResNet50", 74.9, 25.6, 98, 58.2, _KERAS_CPU, _KERAS,
                      KERAS_APPLICATIONS),
    BackboneReference("mobilenet_v2", "MobileNetV2", 71.3, 3.5, 14, 25.9, _KERAS_CPU, _KERAS,
                      KERAS_APPLICATIONS),
    BackboneReference("mobilenet_v3_small", "MobileNetV3Small", 68.1, 2.9, None, 15.8,
                      _PIXEL_CPU, _KERAS_V3, KERAS_MOBILENET_V3),
    BackboneReference("mobilenet_v3_large", "MobileNetV3Large", 75.6, 5.4, None, 51.2,
                      _PIXEL_CPU, _KERAS_V3, KERAS_MOBILENET_V3),
    BackboneReference("efficientnet_b0", "EfficientNetB0", 77.1, 5.3, 29, 46.0, _KERAS_CPU,
                      _KERAS, KERAS_APPLICATIONS),
)


@dataclasses.dataclass(frozen=True)
class TransferReference:
    """A published transfer result: a pretrained (or not) network's top-1 accuracy on a
    new data set.

    Attributes:
        setting: the network, its pretraining and how it was trained on the new data.
        data: the new data set.
        accuracy: top-1 accuracy on its test images, in percent.
        source: who published it, as a reader would look it up.
        url: where to read it.
    """

    setting: str
    data: str
    accuracy: float
    source: str
    url: str

    def sentence(self) -> str:
        """The result in one sentence, with its source (no address)."""
        return f"{self.setting}: {self.accuracy:g}% on {self.data} ({self.source})."

    def to_dict(self) -> dict:
        """Its fields and its sentence, for JSON."""
        return {**dataclasses.asdict(self), "sentence": self.sentence()}


_PETS = "Oxford-IIIT Pets (37 breeds)"
_KORNBLITH = "Kornblith et al. 2019's protocol, as quoted in the SimCLR and BYOL papers"
PETS = (
    TransferReference("ResNet-50 pretrained on ImageNet, a linear head on frozen features "
                      "(what fast mode trains)", _PETS, 91.5, _KORNBLITH, KORNBLITH),
    TransferReference("ResNet-50 pretrained on ImageNet, fine-tuned", _PETS, 92.1, _KORNBLITH,
                      KORNBLITH),
    TransferReference("ResNet-50 trained from random weights (no transfer)", _PETS, 81.5,
                      _KORNBLITH, KORNBLITH),
)


@dataclasses.dataclass(frozen=True)
class MachineSpeed:
    """Forward passes per second of a body measured on this project's 2-core reference
    machine with plain Keras `predict` (224 px, batch 32, random weights: speed does not
    depend on the weights)."""

    backbone: str  # its name in `tlcore.backbones`
    model: str  # for people
    images_per_second: float

    def sentence(self) -> str:
        """The speed in one sentence, as milliseconds per image too."""
        milliseconds = 1000 / self.images_per_second
        return (f"{self.model}: {self.images_per_second:g} images per second "
                f"({milliseconds:.0f} ms per image) with plain Keras predict at 224 px on a "
                "2-core CPU (this project's reference machine).")

    def to_dict(self) -> dict:
        """Its fields and its sentence, for JSON."""
        return {**dataclasses.asdict(self), "sentence": self.sentence()}


MACHINE_SPEEDS = (
    MachineSpeed("mobilenet_v2", "MobileNetV2", 30.6),
    MachineSpeed("resnet50", "ResNet50", 13.1),
    MachineSpeed("vgg16", "VGG16", 3.1),
    MachineSpeed("efficientnet_b0", "EfficientNetB0", 22.7),
    MachineSpeed("mobilenet_v3_small", "MobileNetV3Small", 50.9),
)
