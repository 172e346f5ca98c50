"""Safe extraction (bioprobe.download.archives): malicious archives are refused before anything is written."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from archives import (
    make_imv_archives,
    make_tar_with_absolute_path,
    make_tar_with_symlink,
    make_zip_slip,
    make_zip_with_symlink,
    serve_zenodo_record,
    write_tar_gz,
)
from download_helpers import watkins_cfg, leftovers
from bioprobe import datasets
from bioprobe import download as dl


@pytest.mark.parametrize("maker, match", [
    (lambda p: make_zip_slip(p / "evil.zip"), r"escapes the extraction folder"),
    (lambda p: make_zip_slip(p / "evil2.zip", evil_name="/tmp/bioprobe_evil_abs.txt"), r"absolute path"),
    (lambda p: make_zip_with_symlink(p / "link.zip"), r"symbolic link"),
    (lambda p: make_tar_with_absolute_path(p / "abs.tar.gz"), r"absolute path"),
    (lambda p: make_tar_with_symlink(p / "sym.tar.gz"), r"is a link"),
    (lambda p: make_tar_with_symlink(p / "hard.tar.gz", target="../../outside.txt", then_write=None, hard=True), r"is a link"),
    (lambda p: write_tar_gz(p / "dots.tar.gz", {"data/../../evil.txt": b"x"}), r"escapes"),
])
def test_malicious_archives_are_rejected_before_writing(tmp_path, maker, match):
    archive = maker(tmp_path)
    target = tmp_path / "deep" / "target"
    with pytest.raises(dl.UnsafeArchiveError, match=match):
        dl.safe_extract(archive, target)
    assert not any(target.rglob("*")), "nothing may be extracted from an unsafe archive"
    assert not (tmp_path / "deep" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()
    assert not Path("/tmp/bioprobe_evil.txt").exists() and not Path("/tmp/bioprobe_evil_abs.txt").exists()


def test_malicious_download_leaves_no_dataset(server, tmp_path):
    evil = make_zip_slip(tmp_path / "watkins.zip")
    cfg = watkins_cfg(server, evil)
    with pytest.raises(dl.UnsafeArchiveError):
        datasets.download("watkins", cfg, tmp_path / "data", lock_file=tmp_path / "lock.json")
    assert leftovers(tmp_path / "data") == []


def test_failed_extraction_leaves_no_dataset(server, tmp_path):
    imv = make_imv_archives(tmp_path / "srv", twins=(1,), calls_per_recording=2)
    broken = tmp_path / "srv" / "InfantMarmosetsVox_documentation.tar.gz"
    broken.write_bytes(broken.read_bytes()[:-200])  # truncated: Zenodo's md5 is of these bytes, so it verifies
    api = serve_zenodo_record(server, 99, imv.archives)
    cfg = {"type": "imv", "zenodo_api": api, "zenodo_record": 99, "twins": [1], "retry_backoff_s": 0.0}
    with pytest.raises((tarfile.TarError, EOFError, OSError, dl.UnsafeArchiveError)):
        datasets.download("imv", cfg, tmp_path / "data", lock_file=tmp_path / "lock.json")
    assert leftovers(tmp_path / "data") == []
    # The verified archives stay, so a retry does not fetch them again.
    assert (tmp_path / "data" / ".downloads" / "imv" / "InfantMarmosetsVox_twin_1.tar.gz").exists()
