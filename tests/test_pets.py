"""Oxford-IIIT Pets through a mocked TFDS: breeds, species relabelling, official test split."""
from __future__ import annotations

import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tlcore import config, data, pets

# In TFDS's label order: 0 Abyssinian (cat), 1 american_bulldog (dog), 2 american_pit_bull_terrier.
EXAMPLES = {"train": [(0, 0), (1, 1), (2, 1)] * 4, "test": [(0, 0), (1, 1), (2, 1)] * 2}


def fake_as_dataset(self, split, decoders=None, **kwargs):
    rows = EXAMPLES[str(split)]

    def generate():
        for index, (label, species) in enumerate(rows):
            pixels = np.full((12, 16, 3), 40 * label + index, dtype=np.uint8)
            yield {"image": tf.io.encode_jpeg(pixels).numpy(), "label": label,
                   "species": species, "file_name": f"{split}_{index}.jpg".encode()}
    signature = {"image": tf.TensorSpec((), tf.string), "label": tf.TensorSpec((), tf.int64),
                 "species": tf.TensorSpec((), tf.int64), "file_name": tf.TensorSpec((), tf.string)}
    return tf.data.Dataset.from_generator(generate, output_signature=signature)


@pytest.fixture
def mocked_pets(monkeypatch, tmp_path):
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(pets.socket, "getaddrinfo", lambda *args: [])  # "the network is up"
    with tfds.testing.mock_data(as_dataset_fn=fake_as_dataset):
        yield


def test_breeds_keep_the_official_test_split(mocked_pets):
    dataset = data.load_dataset("pets")
    assert dataset.class_names == ("Abyssinian", "american_bulldog", "american_pit_bull_terrier")
    assert dataset.split_sizes()["test"] == 6
    assert dataset.split_sizes()["train"] + dataset.split_sizes()["validation"] == 12
    test_names = [dataset.paths[i] for i in dataset.splits["test"]]
    assert all("/test__" in path for path in test_names)
    assert dataset.source == "pets" and not dataset.skipped


def test_species_relabelling(mocked_pets):
    breeds = data.load_dataset("pets")
    species = data.load_dataset("pets-species")
    assert species.class_names == ("cat", "dog")
    expected = [0 if breeds.class_names[label] == "Abyssinian" else 1 for label in breeds.labels]
    assert species.labels.tolist() == expected
    assert species.paths == breeds.paths and species.source == "pets-species"
    assert all(np.array_equal(species.splits[k], breeds.splits[k]) for k in species.splits)


def test_export_happens_once(mocked_pets):
    first = pets.export_pets(config.cache_dir() / "pets")
    stamp = (first / pets.SPECIES_FILE).stat().st_mtime_ns
    pets.export_pets(config.cache_dir() / "pets")
    assert (first / pets.SPECIES_FILE).stat().st_mtime_ns == stamp


def test_no_network_fails_at_once_and_says_how_to_bring_the_files(monkeypatch, tmp_path):
    import socket
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path / "home"))

    def no_dns(*args):
        raise socket.gaierror(-2, "Name or service not known")

    def no_download(*args, **kwargs):
        raise AssertionError("TFDS must not start its minutes-long retries offline")
    monkeypatch.setattr(pets.socket, "getaddrinfo", no_dns)
    monkeypatch.setattr(tfds, "load", no_download)
    with pytest.raises(ValueError, match="tensorflow_datasets") as caught:
        data.load_dataset("pets-species")
    assert "TFDS_DATA_DIR" in str(caught.value)
    assert not (tmp_path / "home" / "cache" / "pets").exists()


def test_a_cancelled_export_leaves_nothing_half_made(mocked_pets):
    with pytest.raises(ValueError, match="cancelled"):
        data.load_dataset("pets", should_stop=lambda: True)
    assert data.needs_download("pets")
    assert not (config.cache_dir() / "pets").exists()
    assert data.load_dataset("pets").split_sizes()["test"] == 6


def test_download_progress_is_read_from_the_growing_downloads_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    seen = []
    with pets._watch_download(lambda done, total, info: seen.append((done, total))):
        (tmp_path / "downloads" / "x.incomplete").mkdir(parents=True)
        (tmp_path / "downloads" / "x.incomplete" / "images.tar.gz").write_bytes(b"1" * 1000)
        time.sleep(1.2)
    assert seen and seen[-1] == (1000, pets.DOWNLOAD_BYTES)


@pytest.mark.slow
def test_a_breed_run_is_also_scored_by_species(mocked_pets, tmp_path):
    from tlcore import evaluate, train

    run = train.train_classifier(config.TrainConfig(backbone="scratch_cnn", weights=None,
                                                    mode="end-to-end", epochs=1, image_size=32),
                                 data.load_dataset("pets"), runs_dir=tmp_path / "runs")
    report = evaluate.evaluate_run(run, "test")
    assert report["species_accuracy"] is not None
    assert report["species_accuracy"] >= report["accuracy"]  # a breed hit is a species hit
