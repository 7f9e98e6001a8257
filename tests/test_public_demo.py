"""Public-demo mode: limits on what visitors hand the server, and cleanup after them."""
from __future__ import annotations

import datetime
import io
import os
import time
import zipfile

import pytest
from streamlit.testing.v1 import AppTest

from conftest import make_image_folder
from tlcore import archives, atomic, config, data, runs

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
    assert any("Public demo: uploads only (up to 50 MB)" in caption.value
               for caption in app.caption)
    app.switch_page("app_pages/data.py").run()
    assert not app.exception
    source = next(radio for radio in app.radio if radio.label == "Source")
    assert "A folder on this server" not in source.options
    assert "Upload a zip of class folders" in source.options
