"""Training on several devices (MirroredStrategy over logical CPUs) and several workers
(TF_CONFIG; fast mode's embeddings sharded over the workers, joined into one cache)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tlcore import backbones, distribute, features

pytestmark = pytest.mark.slow  # starts a server, a browser or other processes

ROOT = Path(__file__).resolve().parents[1]


def cli(arguments: list[str], home: Path, **environment: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tlcore", "train", "--json", *arguments],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TLCORE_HOME": str(home), **environment})


def result_of(process: subprocess.Popen) -> dict:
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-2000:]
    return json.loads(stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def two_workers(arguments: list[str], tmp_path: Path) -> tuple[dict, dict]:
    """Run `train` as workers 0 and 1 of a cluster on 127.0.0.1 sharing one TLCORE_HOME;
    return their results."""
    ports = [free_port(), free_port()]
    workers = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
                                "task": {"type": "worker", "index": index}})
        workers.append(cli([*arguments, "--distribute", "multi-worker",
                            "--runs-dir", str(tmp_path / "runs")], tmp_path / "shared",
                           TF_CONFIG=tf_config))
    chief, other = (result_of(process) for process in workers)
    return chief, other


def test_mirrored_training_over_two_logical_cpus_learns_like_one_device(tiny_folder, tmp_path):
    common = ["--data", str(tiny_folder), "--backbone", "scratch_cnn", "--weights", "none",
              "--mode", "end-to-end", "--epochs", "12", "--image-size", "32",
              "--batch-size", "8", "--learning-rate", "0.005", "--patience", "0"]
    processes = [cli([*common, "--distribute", "mirrored", "--cpu-replicas", "2",
                      "--runs-dir", str(tmp_path / "a")], tmp_path / "home-a"),
                 cli([*common, "--runs-dir", str(tmp_path / "b")], tmp_path / "home-b")]
    mirrored, single = (result_of(process) for process in processes)  # side by side
    assert mirrored["distribute"] == "MirroredStrategy, 2 replicas"
    assert single["distribute"] is None
    assert mirrored["val_accuracy"] > 0.6 and single["val_accuracy"] > 0.6  # chance: 1/3


def test_two_workers_share_the_embedding_work_and_train_what_one_worker_trains(
        tiny_folder, tmp_path):
    body = backbones.build_backbone("scratch_cnn", weights=None, input_size=32)
    weights = tmp_path / "body.weights.h5"
    body.save_weights(str(weights))
    common = ["--data", str(tiny_folder), "--backbone", "scratch_cnn", "--weights",
              str(weights), "--mode", "fast", "--epochs", "10", "--image-size", "32"]
    on_its_own = cli([*common, "--runs-dir", str(tmp_path / "alone")], tmp_path / "own")
    chief, other = two_workers(common, tmp_path)
    alone = result_of(on_its_own)
    assert other == {"worker": 1, "workers": 2, "seconds": other["seconds"]}
    assert chief["embedding_cache"] == "hit"  # the joined parts
    assert chief["val_accuracy"] == alone["val_accuracy"]  # the same vectors, the same head
    leftovers = list((tmp_path / "shared" / "cache" / "embeddings").glob("*.part-*"))
    assert leftovers == []


def test_two_workers_on_loopback_train_one_body_in_step(tiny_folder, tmp_path):
    # MultiWorkerMirroredStrategy: gradients are summed over gRPC on 127.0.0.1 every step,
    # so both workers end with the same weights: the same validation accuracy.
    common = ["--data", str(tiny_folder), "--backbone", "scratch_cnn", "--weights", "none",
              "--mode", "end-to-end", "--epochs", "12", "--image-size", "32",
              "--batch-size", "8", "--learning-rate", "0.005", "--patience", "0"]
    chief, other = two_workers(common, tmp_path)
    assert chief["distribute"] == "MultiWorkerMirroredStrategy, 2 replicas"
    assert other["worker"] == 1 and other["val_accuracy"] == chief["val_accuracy"]
    assert chief["val_accuracy"] > 0.6  # chance: 1/3
    assert len(list((tmp_path / "runs").iterdir())) == 1  # the chief's run only


def test_parts_join_into_the_rows_one_writer_would_write(tmp_path):
    table = np.random.default_rng(0).normal(size=(23, 5)).astype(np.float32)
    chunk = 4
    starts = list(range(0, 23, chunk))
    for index in range(3):
        mine = starts[index::3]
        rows = sum(len(table[start:start + chunk]) for start in mine)
        features.write_shard("joined", index, 3, rows, 5,
                             (table[start:start + chunk] for start in mine))
    joined = features.merge_shards("joined", 3, 23, 5, chunk)
    np.testing.assert_array_equal(joined.rows(np.arange(23)), table)
    assert not any(features.shard_path("joined", index, 3).exists() for index in range(3))


@pytest.mark.parametrize("value, message", [
    ("{not json", "not a worker cluster"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}',
     "not one of its 1 workers"),
    ('{"cluster": {"chief": ["a:1"]}, "task": {"type": "chief", "index": 0}}',
     "not a worker cluster"),
])
def test_a_tf_config_that_is_not_a_worker_cluster_is_refused(monkeypatch, value, message):
    monkeypatch.setenv("TF_CONFIG", value)
    with pytest.raises(ValueError, match=message):
        distribute.worker()


def test_without_tf_config_there_is_one_worker(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.worker() == (0, 1)
