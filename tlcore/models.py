"""Classifiers: raw pixels in [0, 255] in, logits out; save, load, and wrap foreign models.

A classifier is `pixels -> PixelPreprocessing ("preprocessing") -> body -> global pooling
("pool") -> head ("head")`. The body is the nested model Keras built (it keeps Keras's
name, e.g. "vgg16"); the head is a nested model too, so the fast mode can train it on its
own; feature maps and Grad-CAM reach the body's layers by their names through the nesting
(`features.activation_model`).
"""
from __future__ import annotations

import json
import math
import threading
import weakref
import zipfile
from pathlib import Path
from typing import Any, Callable

import h5py
import keras
import numpy as np
import tensorflow as tf
from keras.src.backend.common import global_state
from keras.src.backend.common.stateless_scope import StatelessScope
from keras.src.legacy.saving import saving_utils as legacy_saving

from tlcore import backbones, config
from tlcore.layers import PREPROCESSING, PREPROCESSING_MODES, PixelPreprocessing

# A model's config is a few hundred kB even for ResNet50; more is not a model to trust.
MAX_CONFIG_BYTES = 4 * 2**20
HEAD_NAME = "head"
POOL_NAME = "pool"
# What a model's outputs are (`scores_kind`).
SCORES_LOGITS = "logits"
SCORES_PRE_SOFTMAX = "the scores before its softmax"
SCORES_LOG_PROBABILITIES = "log-probabilities"
_SCORES_KINDS: "weakref.WeakKeyDictionary[keras.Model, str]" = weakref.WeakKeyDictionary()
# Names a user may give for the input convention of a model made elsewhere.
PREPROCESS_ALIASES = {
    **{mode: mode for mode in PREPROCESSING_MODES},
    "vgg16": "caffe", "vgg19": "caffe", "resnet50": "caffe", "mobilenet_v2": "tf",
    "inception_v3": "tf", "xception": "tf", "mobilenet_v3": "none", "efficientnet": "none",
}


def build_head(feature_size: int, num_classes: int, dropout_rate: float = 0.2,
               feature_mean: np.ndarray | None = None,
               feature_variance: np.ndarray | None = None) -> keras.Model:
    """Build the classification head: [standardise,] dropout, one dense layer giving logits.

    Args:
        feature_size: length of the pooled feature vector.
        num_classes: number of logits.
        dropout_rate: dropout before the dense layer.
        feature_mean, feature_variance: per-feature statistics of the training embeddings.
            Given, the head standardises its input first: body features range from 1e-3 to
            1e3 depending on the weights, and a linear probe learns far faster on
            standardised ones.
    """
    features = keras.Input((feature_size,), name="features")
    inputs = features
    if feature_mean is not None and feature_variance is not None:
        # Floor each variance at 1% of the average: a feature that never fires on the
        # training images would otherwise be divided by ~0 and explode on any new image.
        # If no feature varies at all, leave the scale alone.
        average = float(np.mean(feature_variance))
        variance = np.maximum(feature_variance, 0.01 * average if average > 0 else 1.0)
        inputs = keras.layers.Normalization(mean=feature_mean, variance=variance,
                                            name="standardize")(features)
    dropped = keras.layers.Dropout(dropout_rate, name="dropout")(inputs)
    logits = keras.layers.Dense(num_classes, name="logits")(dropped)
    return keras.Model(features, logits, name=HEAD_NAME)


def build_classifier(backbone_name: str, body: keras.Model, num_classes: int, *,
                     dropout_rate: float = 0.2, head: keras.Model | None = None,
                     freeze_batch_norm: bool = True) -> keras.Model:
    """Put preprocessing, a body and a head together into one pixels-to-logits model.

    Args:
        backbone_name: registry name of the body (decides the preprocessing).
        body: from `backbones.build_backbone`; used as is, so pass one you own.
        num_classes: number of output logits.
        dropout_rate: for a new head.
        head: a trained head to reuse; None builds a new one.
        freeze_batch_norm: run the body in inference mode, so fine-tuning a pretrained
            body does not wreck its BatchNorm statistics (the BatchNorm trap). Turn off only
            for a body trained from scratch.

    Returns:
        A Keras model mapping float (N, S, S, 3) pixels in [0, 255] to (N, num_classes) logits.
    """
    spec = backbones.get_spec(backbone_name)
    size = body.input_shape[1]
    pixels = keras.Input((size, size, 3), name="pixels")
    preprocessed = PixelPreprocessing(spec.preprocessing, name="preprocessing")(pixels)
    features = body(preprocessed, training=False) if freeze_batch_norm else body(preprocessed)
    pooling = (keras.layers.GlobalMaxPooling2D if spec.pooling == "max"
               else keras.layers.GlobalAveragePooling2D)
    pooled = pooling(name=POOL_NAME)(features)
    head = head or build_head(pooled.shape[-1], num_classes, dropout_rate)
    return keras.Model(pixels, head(pooled), name=f"{backbone_name}_classifier")


def embedding_model(classifier: keras.Model) -> keras.Model:
    """Return the part of a classifier that maps pixels to pooled feature vectors."""
    return keras.Model(classifier.input, classifier.get_layer(POOL_NAME).output,
                       name="embedder")


_COMPILED: "weakref.WeakKeyDictionary[keras.Model, Callable]" = weakref.WeakKeyDictionary()
_COMPILED_LOCK = threading.Lock()


def compiled(model: keras.Model) -> Callable[[np.ndarray], tf.Tensor]:
    """The model's inference call as one TensorFlow graph, built once per model.

    Calling a Keras model directly runs it op by op in Python (eager); `predict` compiles
    but keeps per-model state that is not safe across threads. This is a `tf.function` over
    any batch size (inference mode), safe to call from several threads, and about 2x an
    eager call for small networks (measured in docs/architecture.md).
    """
    with _COMPILED_LOCK:
        function = _COMPILED.get(model)
        if function is None:
            reference = weakref.ref(model)  # the graph keeps the variables, not the model
            signature = [tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)]
            function = tf.function(lambda batch: reference()(batch, training=False),
                                   input_signature=signature)
            _COMPILED[model] = function
    return function


def predict_logits(model: keras.Model, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Return logits (N, K) for pixels (N, S, S, 3) in [0, 255], batch by batch.

    Uses the model's compiled call (`models.compiled`) rather than `predict`, which keeps
    per-model state and is not safe to call from several threads at once.
    """
    call = compiled(model)
    outputs = [call(np.asarray(images[start:start + batch_size], dtype=np.float32)).numpy()
               for start in range(0, len(images), batch_size)]
    if not outputs:
        return np.zeros((0, model.output_shape[-1]), dtype=np.float32)
    return np.concatenate(outputs).astype(np.float32)


def fit_input(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """Pixels (N, S, S, 3) at a model's input side: as they are when they fit, else resized
    (bilinear), as a second model sees another model's images (which blurs a perturbation
    made for the first one a little)."""
    side = input_size(model)
    if images.shape[1] == side:
        return images
    return tf.image.resize(np.asarray(images, dtype=np.float32), (side, side)).numpy()


def softmax(logits: np.ndarray) -> np.ndarray:
    """Return probabilities from logits along the last axis (numerically stable)."""
    shifted = np.asarray(logits, dtype=np.float64)
    shifted = shifted - shifted.max(axis=-1, keepdims=True)
    exponentials = np.exp(shifted)
    return (exponentials / exponentials.sum(axis=-1, keepdims=True)).astype(np.float32)


def forward_gflops(model: keras.Model) -> float:
    """A model's forward pass per image in GFLOPs: 2 x the multiply-adds of its
    convolutions (depthwise ones counted as such) and dense layers, nested models included.
    Other layers (pooling, BatchNorm, activations) cost comparatively little."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += forward_gflops(layer) * 1e9
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            height, width = layer.output.shape[1:3]
            total += 2 * math.prod(layer.kernel.shape) * height * width
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * math.prod(layer.kernel.shape)
    return total / 1e9


def input_size(model: keras.Model) -> int:
    """Return the square input side a model expects."""
    shape = model.input_shape
    if shape[1] is None or shape[1] != shape[2]:
        raise ValueError(f"model input shape {shape} is not a fixed square; tlcore needs one")
    return int(shape[1])


def input_scale(model: keras.Model) -> float:
    """How far the network's own input moves when a pixel moves by one: 1 for VGG16's
    caffe input (pixels minus a mean), 1/127.5 for [-1, 1] (MobileNetV2), about 1/58 for
    per-channel ImageNet standardisation (EfficientNet's built-in one).

    It is read from the settings of the rescaling layers a model starts with
    (`PixelPreprocessing`, `Rescaling`, `Normalization`, also inside a nested body): the
    median over the three channels. Nothing is called, so a page may ask while another
    thread runs the model.
    """
    scales, _ = _input_scaling(model)
    return float(np.median(scales))


def _input_scaling(model: keras.Model) -> tuple[np.ndarray, bool]:
    """Per-channel scale of the rescaling layers `model` starts with; also whether a layer
    that is not one was reached (the walk ends there)."""
    scales = np.ones(3)
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            inner, ended = _input_scaling(layer)
            scales = scales * inner
            if ended:
                return scales, True
            continue
        factor = _rescaling_factor(layer)
        if factor is None:
            return scales, True
        scales = scales * factor
    return scales, False


def _rescaling_factor(layer: keras.layers.Layer) -> np.ndarray | None:
    """Per-channel factor by which a rescaling layer multiplies its input, or None."""
    if isinstance(layer, PixelPreprocessing):
        return 1.0 / np.asarray(PREPROCESSING[layer.mode][2], dtype=np.float64)
    if isinstance(layer, keras.layers.Rescaling):
        return np.abs(np.broadcast_to(np.asarray(layer.scale, dtype=np.float64).reshape(-1), 3))
    if isinstance(layer, keras.layers.Normalization):
        variance = np.asarray(keras.ops.convert_to_numpy(layer.variance), dtype=np.float64)
        return np.broadcast_to(1.0 / np.sqrt(np.maximum(variance.reshape(-1), 1e-12)), 3)
    return None


def save_model(model: keras.Model, path: str | Path) -> None:
    """Save a model in the native `.keras` format."""
    model.save(str(path))


def load_model(path: str | Path) -> keras.Model:
    """Load a `.keras` or `.h5` model in safe mode (no arbitrary code from the file).

    Raises:
        ValueError: the file is missing, unsafe or not a Keras model.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"model file {str(path)!r} does not exist")
    limits = config.limits()
    if limits.model_parameters is not None:
        check_model_file(path, limits.model_parameters)
    try:
        model = keras.saving.load_model(str(path), compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many types for bad files.
        raise ValueError(f"cannot load {path.name} as a Keras model in safe mode: "
                         f"{type(error).__name__}: {str(error)[:200]}") from error
    if limits.model_activations is not None and isinstance(model, keras.Model):
        config.check_limit("model_activations", activation_elements(model),
                           f"{path.name}'s activations per image")
    return model


def check_model_file(path: Path, max_parameters: int) -> None:
    """Refuse a model file before Keras reads it: too many parameters declared in its
    config, or contents that expand far beyond what such weights need.

    Keras extracts a `.keras` archive's entries (to memory or a temporary folder it does
    not always remove on failure) and reads every weight an `.h5` file lists before it
    compares shapes, so a 1 MB file of compressed zeros cost 1-2 GB; here sizes are read
    from the zip's directory and the HDF5 metadata, and a `.keras` archive's checksums
    are verified, before anything is expanded into memory.

    Raises:
        config.LimitError: over `max_parameters`, or expanding to more than 12 bytes a
            parameter (plus 16 MB) or more than 10 times the file's size.
        ValueError: not a readable model file.
    """
    config.check_limit("model_parameters", declared_parameters(path),
                       f"{path.name}'s parameters")
    budget = min(12 * max_parameters, 10 * path.stat().st_size) + 16 * 2**20
    expanded = _expanded_bytes(path, budget)
    if expanded > budget:
        raise config.LimitError(f"{path.name} expands to {expanded / 2**20:,.0f} MB; a model "
                                f"of its size may expand to at most {budget / 2**20:,.0f} MB")


def _expanded_bytes(path: Path, budget: int) -> int:
    """What a model file expands to: its zip entries' sizes (their checksums verified when
    within `budget`; beyond it the file is refused unread), or the sizes of the datasets
    an HDF5 file declares."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                total = sum(entry.file_size for entry in archive.infolist())
                if total <= budget:
                    broken = archive.testzip()
                    if broken is not None:
                        raise ValueError(f"its entry {broken!r} is damaged")
                return total
        sizes: list[int] = []
        with h5py.File(path, "r") as saved:
            saved.visititems(lambda name, item: sizes.append(item.size * item.dtype.itemsize)
                             if isinstance(item, h5py.Dataset) else None)
        return sum(sizes)
    except ValueError as error:
        raise ValueError(f"{path.name} is not a usable model file: {error}") from error
    except Exception as error:  # zip and HDF5 readers raise many types
        raise ValueError(f"{path.name} is not a usable model file "
                         f"({type(error).__name__})") from error


def activation_elements(model: keras.Model) -> int:
    """Values one image produces through all of a model's layers (nested models included):
    its activations' memory per image, from the layers' symbolic output shapes."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += activation_elements(layer)
            continue
        try:
            outputs = layer.output
        except (AttributeError, ValueError):  # a layer that was never called
            continue
        for output in outputs if isinstance(outputs, (list, tuple)) else [outputs]:
            total += math.prod(dimension or 1 for dimension in output.shape[1:])
    return total


def declared_parameters(path: str | Path) -> int:
    """Count the weights a saved model's config declares, without allocating any.

    The model is built from its config inside a Keras stateless scope, where variables
    record their shapes but get no memory, so a small file declaring a huge layer is
    measured in milliseconds instead of allocating gigabytes.

    Raises:
        ValueError: the file holds no readable model config, or one Keras refuses in safe
            mode.
    """
    saved, legacy = _saved_config(Path(path))
    with StatelessScope(initialize_variables=False):
        try:
            model = (legacy_saving.model_from_config(saved) if legacy
                     else keras.saving.deserialize_keras_object(saved, safe_mode=True))
            return sum(math.prod(variable.shape) for variable in model.weights)
        except Exception as error:  # Keras raises many types for bad configs
            raise ValueError(f"{Path(path).name} holds no model tlcore can read: "
                             f"{type(error).__name__}: {str(error)[:200]}") from error
        finally:  # drop the shapes it recorded, instead of allocating them on exit
            global_state.set_global_attribute("uninitialized_variables", [])


def _saved_config(path: Path) -> tuple[dict[str, Any], bool]:
    """A saved model's config, and whether it is the legacy (.h5) kind."""
    try:
        if zipfile.is_zipfile(path):  # .keras: config.json inside a zip
            with zipfile.ZipFile(path) as archive:
                entry = archive.getinfo("config.json")
                if entry.file_size > MAX_CONFIG_BYTES:
                    raise ValueError(f"a config of {entry.file_size:,} bytes")
                saved = json.loads(archive.read(entry))
                saved.pop("compile_config", None)  # an optimiser is no weight of the model
                return saved, False
        with h5py.File(path, "r") as saved:  # legacy .h5: the config is an attribute
            text = saved.attrs["model_config"]
            text = text.decode() if isinstance(text, bytes) else str(text)
            if len(text) > MAX_CONFIG_BYTES:
                raise ValueError(f"a config of {len(text):,} bytes")
            return json.loads(text), True
    except Exception as error:  # zip, HDF5 and JSON readers raise many types
        raise ValueError(f"{path.name} is not a Keras model file (.keras or .h5 with its "
                         f"config): {type(error).__name__}: {str(error)[:120]}") from error


def wrap_external_model(model: keras.Model, preprocess: str) -> keras.Model:
    """Wrap a model trained elsewhere so that it takes raw pixels and returns logits.

    A model whose last layer applies a softmax (a Dense layer with softmax activation, a
    Softmax layer, or a nested model ending in one) is read before that softmax: its
    pre-softmax scores are its logits, and a class-logit objective climbs them, not log p
    (which can rise by lowering the other classes, and draws worse images). The original
    model is untouched: the last layer is copied with a linear activation. Where no
    pre-softmax output can be had, log-probabilities stand in (they give the same softmax
    and usable gradients). `scores_kind` tells which the wrapper returns.

    Args:
        model: a Keras image classifier with a fixed square input.
        preprocess: the input convention it was trained with (a PREPROCESS_ALIASES key).

    Returns:
        pixels [0, 255] -> PixelPreprocessing -> model -> logits.
    """
    if preprocess not in PREPROCESS_ALIASES:
        raise ValueError(f"preprocess={preprocess!r} is not one of {sorted(PREPROCESS_ALIASES)}")
    _check_image_classifier(model)
    size = input_size(model)
    pixels = keras.Input((size, size, 3), name="pixels")
    kind, scorer = SCORES_LOGITS, model
    if ends_in_softmax(model):
        scorer = before_softmax(model)
        kind = SCORES_PRE_SOFTMAX if scorer is not None else SCORES_LOG_PROBABILITIES
    outputs = (scorer or model)(PixelPreprocessing(PREPROCESS_ALIASES[preprocess],
                                                   name="preprocessing")(pixels))
    if kind == SCORES_LOG_PROBABILITIES:
        outputs = keras.ops.log(keras.ops.clip(outputs, 1e-12, 1.0))
    wrapped = keras.Model(pixels, outputs, name=f"wrapped_{model.name}")
    _SCORES_KINDS[wrapped] = kind
    return wrapped


def scores_kind(model: keras.Model) -> str:
    """What a model's outputs are: SCORES_LOGITS (its own outputs, no softmax),
    SCORES_PRE_SOFTMAX (a wrapped model read before its final softmax) or
    SCORES_LOG_PROBABILITIES (a wrapped softmax model whose softmax could not be removed)."""
    return _SCORES_KINDS.get(model, SCORES_LOGITS)


def scores_note(model: keras.Model) -> str:
    """For people: which scores of a wrapped model tlcore treats as its logits, or "" when
    they are its own outputs."""
    kind = scores_kind(model)
    if kind == SCORES_PRE_SOFTMAX:
        return ("The model ends in a softmax; tlcore reads its scores before the softmax (its "
                "logits), so a class-logit objective climbs the class's own score.")
    if kind == SCORES_LOG_PROBABILITIES:
        return ("The model ends in a softmax tlcore cannot take off, so its log-probabilities "
                "stand in for logits: a class-logit objective then climbs log p, which can "
                "rise by lowering the other classes and tends to draw texture, not objects.")
    return ""


def before_softmax(model: keras.Model) -> keras.Model | None:
    """A model giving `model`'s scores before its final softmax, or None when they cannot
    be had (the softmax is not a separate layer or activation tlcore can take off).

    The original keeps its softmax: a final Softmax layer is skipped, a final layer with a
    softmax activation is copied (same weights) with a linear one, a final nested model is
    opened the same way. The result is checked on random inputs: its softmax must be the
    model's output (a layer shared between two calls, say, could otherwise read the wrong
    input).
    """
    try:
        scorer = _pre_softmax_graph(model)
    except (ValueError, AttributeError, TypeError):  # several inputs, a custom layer
        return None
    if scorer is None:
        return None
    probe = np.random.default_rng(0).uniform(-1, 1, (2, *model.input_shape[1:]))
    probe = probe.astype(np.float32)
    expected = keras.ops.convert_to_numpy(model(probe, training=False))
    scores = keras.ops.convert_to_numpy(scorer(probe, training=False))
    return scorer if np.allclose(softmax(scores), expected, atol=1e-4) else None


def _pre_softmax_graph(model: keras.Model) -> keras.Model | None:
    last = model.layers[-1]
    source = last.input
    if isinstance(last, keras.Model):
        inner = _pre_softmax_graph(last)
        return None if inner is None else keras.Model(model.inputs[0], inner(source))
    if isinstance(last, keras.layers.Softmax) or (
            isinstance(last, keras.layers.Activation) and _is_softmax(last.activation)):
        return keras.Model(model.inputs[0], source)
    if _is_softmax(getattr(last, "activation", None)):
        settings = {**last.get_config(), "activation": "linear", "name": f"{last.name}_logits"}
        linear = type(last).from_config(settings)
        outputs = linear(source)
        linear.set_weights(last.get_weights())
        return keras.Model(model.inputs[0], outputs)
    return None


def _check_image_classifier(model: keras.Model) -> None:
    """Refuse, with the reason, a model that does not map one RGB image to class scores."""
    if not isinstance(model, keras.Model):
        raise ValueError(f"the file holds a {type(model).__name__}, not a Keras model")
    if not model.built or not getattr(model, "inputs", None):
        raise ValueError("the model was saved without an input shape (an unbuilt "
                         "Sequential?); save it after keras.Input((S, S, 3)) or a first call")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"the model has {len(model.inputs)} inputs and {len(model.outputs)} "
                         "outputs; tlcore needs one image in and one score vector out")
    shape, scores = tuple(model.input_shape), tuple(model.output_shape)
    if len(shape) != 4 or shape[-1] != 3 or shape[1] is None or shape[1] != shape[2]:
        raise ValueError(f"the model's input shape {shape} is not (batch, S, S, 3): tlcore "
                         "needs a fixed square RGB input")
    if len(scores) != 2 or scores[-1] is None or scores[-1] < 2:
        raise ValueError(f"the model's output shape {scores} is not (batch, classes) with "
                         "at least two classes")


def ends_in_softmax(model: keras.Model) -> bool:
    """Return True when a model's last layer outputs probabilities (softmax), also when
    that layer is a nested model ending in one."""
    last = model.layers[-1]
    if isinstance(last, keras.Model):
        return ends_in_softmax(last)
    return isinstance(last, keras.layers.Softmax) or _is_softmax(getattr(last, "activation", None))


def _is_softmax(activation: Any) -> bool:
    return getattr(activation, "__name__", "") == "softmax"
