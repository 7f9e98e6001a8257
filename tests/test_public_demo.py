"""Public-demo mode: limits on what visitors hand the server, and cleanup after them."""
from __future__ import annotations

import dataclasses
import datetime
import io
import os
import time
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tlcore import archives, atomic, config, data, runs
from ui import state

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "app.py")


@pytest.fixture
def demo(monkeypatch):
    monkeypatch.setenv("TLCORE_PUBLIC_DEMO", "1")


def test_limits_switch_with_the_demo_and_refuse_big_uploads(monkeypatch):
    assert config.limits() == config.OWN_LIMITS
    config.check_upload(100 * 2**20, "the image")  # fine outside the demo
    monkeypatch.setenv("TLCORE_PUBLIC_DEMO", "1")
    assert config.limits() == config.DEMO_LIMITS
    with pytest.raises(ValueError, match="the image is 100.0 MB; at most 50 MB"):
        config.check_upload(100 * 2**20, "the image")


def test_a_demo_refuses_a_zip_with_too_many_files(demo, monkeypatch):
    monkeypatch.setattr(config, "DEMO_LIMITS", config.Limits(50, 300, 3, 24.0))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(4):
            archive.writestr(f"cats/{index}.png", b"x")
    with pytest.raises(archives.ArchiveError, match="4 entries; at most 3"):
        data.from_zip(buffer.getvalue())


def test_the_sweep_removes_old_temporaries_only(tmp_path):
    old, fresh = time.time() - 7200, time.time()
    leftovers = [tmp_path / ".tmp-run.json.abc", tmp_path / "cache" / ".tmp-staging-x-1"]
    keep = [tmp_path / "runs" / ".checkpoints", tmp_path / "cache" / "pets.partial",
            tmp_path / "runs" / "r1" / "run.json", tmp_path / ".tmp-fresh.npy.1"]
    for path in leftovers + keep:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir() if "staging" in path.name or path.name == ".checkpoints" else path.touch()
    (leftovers[1] / "half.png").touch()
    live = tmp_path / "cache" / ".tmp-staging-live-2"  # old folder, a file just added
    (live / "deep").mkdir(parents=True)
    (live / "deep" / "new.png").touch()
    for path in [*leftovers, leftovers[1] / "half.png", *keep[:3], live, live / "deep"]:
        os.utime(path, (old, old))
    os.utime(keep[3], (fresh, fresh))
    assert sorted(atomic.sweep(tmp_path)) == sorted(leftovers)
    assert all(path.exists() for path in [*keep, live])
    assert not any(p.exists() for p in leftovers)


def test_visitor_runs_expire_and_curated_runs_stay(tiny_run, tmp_path):
    import shutil
    day_old = (datetime.datetime.now() - datetime.timedelta(hours=30)).isoformat()
    for name, visitor, created in (("old-visitor", True, day_old), ("new-visitor", True, None),
                                   ("curated", False, day_old)):
        folder = shutil.copytree(tiny_run.run_dir, tmp_path / name)
        info = {**tiny_run.info, "id": name, "created": created or tiny_run.info["created"]}
        info.pop("public_demo", None)
        if visitor:
            info["public_demo"] = True
        runs.write_info(folder, info)
    assert runs.sweep_visitor_runs(24, tmp_path) == ["old-visitor"]
    assert sorted(run.run_id for run in runs.list_runs(tmp_path)) == ["curated", "new-visitor"]


def test_the_demo_offers_no_server_folder_and_says_its_rules(demo, tiny_run):
    app = AppTest.from_file(APP, default_timeout=180).run()
    assert any("Public demo: what you upload and train is yours alone" in caption.value
               and "Uploads up to 50 MB" in caption.value for caption in app.caption)
    app.switch_page("app_pages/data.py").run()
    assert not app.exception
    source = next(radio for radio in app.radio if radio.label == "Source")
    assert "A folder on this server" not in source.options
    assert "Upload a zip of class folders" in source.options


# --- Hostile visitors: each case builds its hostile file itself -------------------------

def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _png(size: int = 16, value: int = 90) -> bytes:
    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), value, dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _files_under(folder) -> list:
    return [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_a_webp_bomb_zip_is_refused_from_headers_and_leaves_nothing(demo, tmp_path):
    from PIL import Image

    buffer = io.BytesIO()  # lossless WebP of one flat colour: 2 kB declaring 49 megapixels
    Image.new("RGB", (7000, 7000), (120, 130, 140)).save(buffer, "WEBP", lossless=True)
    bomb = buffer.getvalue()
    eight = _zip({f"{kind}/{index}.webp": bomb for kind in ("cats", "dogs")
                  for index in range(4)})
    assert len(eight) < 20_000
    before = _peak_mb()
    # Each image is over the per-image limit: refused from its header, none decoded.
    with pytest.raises(ValueError, match="0 class folder"):
        data.from_zip(eight, name="bomb.zip", into=tmp_path / "uploads")
    # Many smaller ones together are over the archive's budget.
    forty = _zip({f"{kind}/{index}.webp": bomb for kind in ("cats", "dogs")
                  for index in range(20)})
    with pytest.raises(config.LimitError, match="megapixels in all"):
        data.from_zip(forty, name="bomb.zip", into=tmp_path / "uploads")
    assert _peak_mb() - before < 500  # a full decode of one image alone is 196 MB
    assert _files_under(tmp_path / "uploads") == []


def test_one_image_over_the_pixel_limit_is_skipped_with_the_reason(demo, tmp_path,
                                                                   make_image_folder):
    from PIL import Image

    folder = make_image_folder(tmp_path / "set", per_class=3)
    Image.new("RGB", (6000, 5000)).save(folder / "red" / "huge.png")  # 30 MP > 24 MP
    dataset = data.from_folder(folder)
    [huge] = [item for item in dataset.skipped if item.path.endswith("huge.png")]
    assert "6000x5000 pixels is more than the 24,000,000 allowed" in huge.reason
    assert data.relative_name(huge.path, dataset) == "red/huge.png"


def test_a_refused_upload_leaves_no_files(demo, tmp_path):
    one_class = _zip({f"only/{index}.png": _png() for index in range(5)})
    with pytest.raises(ValueError, match="1 class folder"):
        data.from_zip(one_class, into=tmp_path / "uploads")
    assert _files_under(tmp_path / "uploads") == []
    assert not any(str(tmp_path / "uploads") in path.read_text()  # no scan kept either
                   for path in _files_under(config.cache_dir() / "scans"))
    many = _zip({f"class{index}/a.png": _png() for index in range(101)})  # limit: 100
    with pytest.raises(config.LimitError, match="class folders: 101 is over"):
        data.from_zip(many, into=tmp_path / "uploads")
    assert _files_under(tmp_path / "uploads") == []


def _bomb_model(path, units: int = 100_000):
    """A 0.5 MB .keras file whose config declares Dense(units) on 12,288 inputs."""
    import json

    import keras

    small = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(10)])
    small.save(path.with_name("small.keras"))
    with zipfile.ZipFile(path.with_name("small.keras")) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    saved = json.loads(files["config.json"])
    saved["config"]["layers"][-1]["config"]["units"] = units
    files["config.json"] = json.dumps(saved).encode()
    path.write_bytes(_zip(files))
    return path


def test_a_model_bomb_is_refused_from_its_config_before_any_weight_is_allocated(demo, tmp_path):
    from tlcore import models

    bomb = _bomb_model(tmp_path / "bomb.keras")  # 1.2 billion weights: 4.9 GB if built
    assert models.declared_parameters(tmp_path / "small.keras") == 122_890
    before = _peak_mb()
    with pytest.raises(config.LimitError, match="1,228,900,000 is over this public demo's "
                                                 "limit of 30,000,000 parameters"):
        models.load_model(bomb)
    assert _peak_mb() - before < 500
    assert models.load_model(tmp_path / "small.keras").count_params() == 122_890


def test_an_unbuilt_model_is_refused_with_the_reason(tmp_path):
    import keras

    from tlcore import models

    unbuilt = keras.Sequential([keras.layers.Dense(3)])
    unbuilt.save(tmp_path / "unbuilt.keras")
    with pytest.raises(ValueError, match="without an input shape"):
        models.wrap_external_model(models.load_model(tmp_path / "unbuilt.keras"), "none")


def test_renders_attacks_and_trainings_over_the_demo_budget_are_refused(demo, tiny_run,
                                                                       tiny_folder):
    import numpy as np

    from tlcore import attack, train, visualize

    model = tiny_run.load_model()
    with pytest.raises(config.LimitError, match="render steps: 2,000 is over"):
        visualize.render(model, 0, config.RenderConfig(steps=2000))
    with pytest.raises(config.LimitError, match="images per sweep: 8 is over"):
        visualize.render_sweep(model, 0, config.RenderConfig(steps=5), [0.1] * 8)
    pixels = np.full((65, 32, 32, 3), 128, dtype=np.float32)
    with pytest.raises(config.LimitError, match="images per attack: 65 is over"):
        attack.make_attack(config.AttackConfig(method="fgsm"))(model, pixels)
    with pytest.raises(config.LimitError, match="attack steps: 500 is over"):
        attack.make_attack(config.AttackConfig(steps=500))(model, pixels[:1])
    with pytest.raises(config.LimitError, match="images per attack"):
        attack.robustness_curve(model, pixels, np.zeros(65), [4])
    with pytest.raises(config.LimitError, match="epochs: 50 is over"):
        train.train_classifier(config.TrainConfig(backbone="scratch_cnn", weights=None,
                                                  mode="end-to-end", epochs=50),
                               data.from_folder(tiny_folder))


def test_a_big_attack_runs_in_chunks_like_small_ones(tiny_run):
    import numpy as np

    from tlcore import attack

    model = tiny_run.load_model()
    pixels = np.random.default_rng(0).uniform(0, 255, (attack.CHUNK_IMAGES + 5, 32, 32, 3))
    chunks, fgsm = [], attack.make_attack(config.AttackConfig(method="fgsm", epsilon=8))
    whole = fgsm(model, pixels, on_step=lambda done, total, _: chunks.append((done, total)))
    chunks = [chunk for chunk in chunks if chunk[0]]  # not "preparing the model" at 0
    assert chunks == [(attack.CHUNK_IMAGES, len(pixels)), (len(pixels), len(pixels))]
    alone = fgsm(model, pixels[-5:])
    assert np.array_equal(whole.adversarial[-5:], alone.adversarial)
    with pytest.raises(attack.AttackStopped):
        attack.make_attack(config.AttackConfig(steps=5))(model, pixels,
                                                         should_stop=lambda: True)


def test_run_ids_cannot_be_guessed_and_a_save_never_replaces_a_run(tiny_run, tmp_path):
    run_id = runs.new_run_id("vgg16", "fast")
    assert len(run_id.rsplit("-", 1)[1]) == 16  # 64 random bits
    model = tiny_run.load_model()
    runs.save_run(model, dict(tiny_run.info), tmp_path, run_id="taken")
    with pytest.raises(FileExistsError, match="nothing was replaced"):
        runs.save_run(model, {**tiny_run.info, "classes": ["x", "y", "z"]}, tmp_path,
                      run_id="taken")
    assert runs.load_run(tmp_path / "taken").classes == tiny_run.classes


def _visitor_run(tiny_run, runs_dir, name: str, owner: str | None):
    import shutil

    folder = shutil.copytree(tiny_run.run_dir, runs_dir / name)
    info = {**tiny_run.info, "id": name}
    info.pop("public_demo", None)
    info.pop("owner", None)
    if owner is not None:
        info.update(public_demo=True, owner=owner)
    runs.write_info(folder, info)


def test_each_visitor_sees_only_their_runs_and_the_hosts(demo, tiny_run):
    from tlcore import visitors

    alice, bob = visitors.new_token(), visitors.new_token()
    assert alice != bob and visitors.is_token(alice) and not visitors.is_token("../x")
    for name, owner in (("alice_passport_scans", visitors.owner_id(alice)),
                        ("bobs", visitors.owner_id(bob)), ("curated", None)):
        _visitor_run(tiny_run, config.runs_dir(), name, owner)

    def runs_page(token: str) -> AppTest:
        app = AppTest.from_file(APP, default_timeout=180)
        app.query_params["visitor"] = token
        app.run()
        app.switch_page("app_pages/runs.py").run()
        assert not app.exception
        return app

    page = runs_page(bob)
    [picker] = [box for box in page.selectbox if box.label == "Run"]
    shown = {option.split(":")[0] for option in picker.options}
    assert "bobs" in shown and "curated" in shown and "alice_passport_scans" not in shown
    assert not any("alice" in str(frame.value) for frame in page.dataframe)
    # Bob may delete his own run, not the host's.
    by_id = {run.run_id: run for run in runs.list_runs()}
    picker.set_value(by_id["bobs"]).run()
    assert any(button.label == "Delete" for button in page.button)
    [picker] = [box for box in page.selectbox if box.label == "Run"]
    picker.set_value(by_id["curated"]).run()
    assert not any(button.label == "Delete" for button in page.button)
    # A forged or malformed token is a new visitor, never someone else.
    stranger = runs_page("../" + alice)
    [picker] = [box for box in stranger.selectbox if box.label == "Run"]
    assert not any("alice" in option or "bobs" in option for option in picker.options)
    assert stranger.query_params["visitor"] != alice


def test_a_page_failure_in_the_demo_shows_an_incident_not_a_traceback(demo, monkeypatch):
    from ui import cache

    secret = str(config.tlcore_home() / "runs" / "secret")

    def broken(*args, **kwargs):
        raise RuntimeError(f"cannot read {secret}")

    monkeypatch.setattr(cache, "all_runs", broken)
    app = AppTest.from_file(APP, default_timeout=180).run()
    app.switch_page("app_pages/runs.py").run()
    assert not app.exception
    assert any("incident" in error.value for error in app.error)
    text = " ".join(str(element.value) for kind in (app.error, app.markdown, app.caption)
                    for element in kind)
    assert secret not in text and "Traceback" not in text


def test_markdown_in_a_visitors_class_name_is_shown_literally(tmp_path, make_image_folder):
    from ui import widgets

    hostile = "[win](http://evil.example) ![x](http://evil.example/x.png) **b**"
    folder = make_image_folder(tmp_path / "set", per_class=3,
                               colours={hostile.replace("/", "|"): (200, 0, 0),
                                        "plain": (0, 0, 200)})
    app = AppTest.from_file(APP, default_timeout=180)
    app.session_state[state.DATA_SOURCE] = str(folder)
    app.run()
    app.switch_page("app_pages/data.py").run()
    assert not app.exception
    [caption] = [c for c in app.caption if "win" in c.value]
    assert caption.value == widgets.plain(hostile.replace("/", "|"))
    assert "\\[win\\]\\(h\u200bttp\\:" in caption.value  # no link, image, bold or autolink


def test_quotas_count_a_visitors_uploads_and_runs(demo, monkeypatch, tiny_run):
    from tlcore import visitors

    owner = visitors.owner_id(visitors.new_token())
    upload = visitors.uploads_folder(owner) / "abc" / "cats"
    upload.mkdir(parents=True)
    (upload / "big.bin").write_bytes(b"x" * 3 * 2**20)
    _visitor_run(tiny_run, config.runs_dir(), "theirs", owner)
    used = visitors.usage_bytes(owner)
    assert used >= 3 * 2**20 + visitors.folder_bytes(config.runs_dir() / "theirs")
    quota = used / 2**20 + 0.5
    monkeypatch.setattr(config, "DEMO_LIMITS", dataclasses.replace(config.DEMO_LIMITS,
                                                                   visitor_disk_mb=quota))
    visitors.check_disk(owner)  # half a MB left
    with pytest.raises(config.LimitError, match=r"^your uploads and runs would take [\d.]+ MB "
                       r"of disk; this public demo allows [\d.]+ MB per visitor\. Delete a"):
        visitors.check_disk(owner, incoming_bytes=2**20)
    assert visitors.owns_source(owner, str(upload.parent)) and visitors.owns_source(owner, "demo")
    other = visitors.owner_id(visitors.new_token())
    assert not visitors.owns_source(other, str(upload.parent))
    assert not visitors.owns_source(owner, str(upload.parent / ".." / ".." / ".." / ".."))
    with pytest.raises(ValueError):
        visitors.folder("../../etc")


def test_a_training_on_another_visitors_data_is_refused(demo, tiny_folder):
    from tlcore import visitors
    from ui import jobs

    owner = visitors.owner_id(visitors.new_token())
    with pytest.raises(ValueError, match="not yours"):
        jobs.start_training(owner, config.TrainConfig(), str(tiny_folder))


def test_the_tidy_sweeps_expired_visitors_and_caches_beyond_their_size(demo, tmp_path):
    from tlcore import housekeeping, visitors

    old_owner = visitors.owner_id(visitors.new_token())
    new_owner = visitors.owner_id(visitors.new_token())
    for owner in (old_owner, new_owner):
        (visitors.uploads_folder(owner) / "x").mkdir(parents=True)
        (visitors.uploads_folder(owner) / "x" / "a.png").write_bytes(b"png")
    day_old = time.time() - 30 * 3600
    for path in visitors.folder(old_owner).rglob("*"):
        os.utime(path, (day_old, day_old))
    os.utime(visitors.folder(old_owner), (day_old, day_old))
    assert visitors.sweep(24) == [old_owner]
    assert visitors.folder(new_owner).is_dir()
    cache = tmp_path / "cache"
    for index, name in enumerate(["embeddings/a.npy", "embeddings/b.npy", "scans/c.json"]):
        (cache / name).parent.mkdir(parents=True, exist_ok=True)
        (cache / name).write_bytes(b"x" * 2**20)
        os.utime(cache / name, (1000 + index, 1000 + index))  # a is the oldest
    (cache / "demo").mkdir()
    (cache / "demo" / "keep.png").write_bytes(b"x" * 2**20)  # the host's: never swept
    assert housekeeping.sweep_caches(2.5, cache) == [cache / "embeddings" / "a.npy"]
    assert (cache / "demo" / "keep.png").exists() and (cache / "scans" / "c.json").exists()


def test_a_render_over_the_time_budget_stops_and_keeps_what_it_has(demo, tiny_run,
                                                                    monkeypatch):
    monkeypatch.setattr(config, "DEMO_LIMITS", dataclasses.replace(config.DEMO_LIMITS,
                                                                   job_seconds=0.0))
    app = AppTest.from_file(APP, default_timeout=180)
    app.session_state[state.RUN_ID] = tiny_run.run_id
    app.run()
    app.switch_page("app_pages/ideal_image.py").run()
    app.number_input[0].set_value(20)  # the render form's steps
    next(button for button in app.button if button.label == "Render").click().run()
    assert not app.exception
    assert any("Stopped after 1 of 20 steps: it reached this demo's time budget of 0 s"
               in warning.value for warning in app.warning)
    assert any(metric.label == "Class probability" for metric in app.metric)
    assert not any(button.label == "Cancel" for button in app.button)  # gone with the work


def test_an_uploaded_zip_keeps_its_name_and_is_offered_again(tmp_path):
    flat = _zip({f"{kind}/{index}.png": _png(value=40 * index) for kind in ("cats", "dogs")
                 for index in range(3)})
    dataset = data.from_zip(flat, name="my pets.zip", into=tmp_path / "uploads")
    assert data.load_dataset(dataset.source).name == "my pets.zip"  # not the zip's hash
    assert data.extracted_zips(tmp_path / "uploads") == {dataset.source: "my pets.zip"}


@pytest.mark.slow
def test_a_training_over_the_time_budget_keeps_its_finished_epochs(demo, monkeypatch,
                                                                   tiny_folder):
    from tlcore import visitors
    from ui import jobs

    monkeypatch.setattr(config, "DEMO_LIMITS", dataclasses.replace(config.DEMO_LIMITS,
                                                                   training_seconds=0.0))
    owner = visitors.owner_id(visitors.new_token())
    folder = visitors.uploads_folder(owner) / "colours"
    import shutil
    shutil.copytree(tiny_folder, folder)
    job = jobs.start_training(owner, config.TrainConfig(backbone="scratch_cnn", weights=None,
                                                        mode="end-to-end", epochs=3,
                                                        image_size=32), str(folder))
    snapshot = jobs.wait(job.job_id)
    assert snapshot.state == "cancelled"
    assert "time budget of 0 minutes per training" in snapshot.error


def _keras_file(path, model) -> dict:
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_model_files_that_expand_or_are_damaged_are_refused_before_keras_reads_them(
        demo, tmp_path):
    import tempfile

    import h5py
    import keras

    from tlcore import models

    small = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(2)])
    files = _keras_file(tmp_path / "small.keras", small)
    zeros = dict(files, **{"model.weights.h5": b"\0" * 300 * 2**20})  # 300 MB, zipped 0.3 MB
    (tmp_path / "zeros.keras").write_bytes(_zip(zeros))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # stored, so its bytes can be altered
        for name, content in {**files, "zzz.bin": b"x" * 2**20}.items():
            archive.writestr(name, content)
    damaged = buffer.getvalue().replace(b"x" * 64, b"y" * 64, 1)  # a bad checksum at the end
    (tmp_path / "damaged.keras").write_bytes(damaged)
    with h5py.File(tmp_path / "bomb.h5", "w") as saved:  # a gzip dataset declaring 1 GB
        saved.attrs["model_config"] = small.to_json()
        saved.create_dataset("w", shape=(2**28,), dtype="float32", compression="gzip",
                             chunks=(2**20,), fillvalue=0)
    before = set(Path(tempfile.gettempdir()).iterdir())
    peak = _peak_mb()
    for name, reason in (("zeros.keras", "expands to 300 MB"), ("damaged.keras", "damaged"),
                         ("bomb.h5", "expands to 1,024 MB")):
        with pytest.raises(ValueError, match=reason):
            models.load_model(tmp_path / name)
    assert _peak_mb() - peak < 200
    assert set(Path(tempfile.gettempdir()).iterdir()) <= before  # Keras extracted nothing
    assert models.load_model(tmp_path / "small.keras").count_params() == 386


def test_a_model_with_huge_activations_is_refused(demo, tmp_path):
    import keras

    from tlcore import models

    upsampling = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.UpSampling2D(128),
                                   keras.layers.GlobalAveragePooling2D(),
                                   keras.layers.Dense(2)])
    upsampling.save(tmp_path / "up.keras")  # 26 kB, 8 weights, 50 million values per image
    with pytest.raises(config.LimitError, match="activations per image"):
        models.load_model(tmp_path / "up.keras")
    assert models.activation_elements(keras.applications.MobileNetV2(
        weights=None, input_shape=(224, 224, 3))) < config.DEMO_LIMITS.model_activations


def test_16_bit_images_decode_in_integers_and_reasons_name_no_folder(tmp_path, make_image_folder):
    import numpy as np
    from PIL import Image

    from tlcore import images

    levels = np.array([[0, 257, 65535, 32768]], dtype=np.uint16)
    Image.fromarray(levels).save(tmp_path / "deep.png")
    assert images.load_image(tmp_path / "deep.png")[0, :, 0].tolist() == [0, 1, 255, 128]
    folder = make_image_folder(tmp_path / "set", per_class=3)
    (folder / "red" / "broken.png").write_bytes(b"not a png")
    [broken] = [item for item in data.from_folder(folder).skipped if "broken" in item.path]
    assert str(folder) not in broken.reason and "not a readable image" in broken.reason


def test_the_demo_never_downloads_imagenet_weights(demo):
    from tlcore import backbones

    with pytest.raises(backbones.WeightsUnavailableError, match="not installed on this demo"):
        backbones.resolve_weights("mobilenet_v2", "imagenet", 96)


def test_a_visitors_link_opens_the_data_set_they_chose(demo, tiny_folder):
    """A reload is a new session: the visitor's last choice comes back with their link, as
    long as it is theirs and still there."""
    import shutil

    from tlcore import visitors
    from ui import state

    token = visitors.new_token()
    owner = visitors.owner_id(token)
    mine = visitors.uploads_folder(owner) / "abc" / "colours"
    shutil.copytree(tiny_folder, mine)

    def new_session() -> AppTest:
        app = AppTest.from_file(APP, default_timeout=180)
        app.query_params["visitor"] = token
        return app.run()

    assert new_session().session_state[state.DATA_SOURCE] == "demo"
    visitors.remember_source(owner, str(mine))
    assert new_session().session_state[state.DATA_SOURCE] == str(mine)
    visitors.remember_source(owner, str(tiny_folder))  # not inside their folder
    assert new_session().session_state[state.DATA_SOURCE] == "demo"
    visitors.remember_source(owner, str(mine))
    shutil.rmtree(mine)  # expired or deleted
    assert new_session().session_state[state.DATA_SOURCE] == "demo"
