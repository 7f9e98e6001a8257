"""Microsoft PetImages: downloaded, checked, extracted; its broken files skipped and listed."""
from __future__ import annotations

import pytest

from tlcore import data, downloads, petimages


def test_petimages_skips_exactly_the_broken_files(served_petimages):
    dataset = data.load_dataset("petimages")
    assert dataset.class_names == ("Cat", "Dog") and dataset.class_counts() == {"Cat": 4, "Dog": 4}
    skipped = sorted(item.path.rsplit("PetImages/", 1)[1] for item in dataset.skipped)
    assert skipped == ["Cat/666.jpg", "Cat/Thumbs.db", "Dog/11702.jpg", "Dog/Thumbs.db"]
    assert dataset.source == "petimages"
    again = data.load_dataset("petimages")  # extracted once: no second download needed
    assert again.fingerprint() == dataset.fingerprint()


def test_petimages_offline_names_the_file_and_the_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(petimages, "URL", "http://127.0.0.1:9/kagglecatsanddogs_5340.zip")
    with pytest.raises(downloads.DownloadError, match="kagglecatsanddogs_5340.zip"):
        data.load_dataset("petimages")


def test_progress_goes_download_extract_check_and_ends_complete(served_petimages):
    steps = []
    data.load_dataset("petimages", on_step=lambda done, total, info: steps.append(
        (info["phase"], done, total)))
    phases = list(dict.fromkeys(phase for phase, _, _ in steps))
    assert phases == ["downloading", "extracting", "checking images"]
    download = [step for step in steps if step[0] == "downloading"]
    assert download[-1][1] == download[-1][2] == petimages.SIZE
    checked = [step for step in steps if step[0] == "checking images"]
    assert checked[-1][1] == checked[-1][2] == 12  # every file in the two class folders
    assert petimages.is_ready() and not data.needs_download("petimages")


def test_a_cancelled_download_is_not_ready_and_the_next_attempt_completes(served_petimages):
    with pytest.raises(downloads.DownloadError, match="cancelled"):
        data.load_dataset("petimages", should_stop=lambda: True)
    assert data.needs_download("petimages")
    assert data.load_dataset("petimages").class_counts() == {"Cat": 4, "Dog": 4}
