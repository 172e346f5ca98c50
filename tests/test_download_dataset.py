"""A dataset's download (bioprobe.download.dataset, .lockfile): marker, lock file, disk space, reuse."""

from __future__ import annotations

import json

import pytest

from archives import (
    archive_org_files_xml,
    make_watkins_zip,
    md5_of,
)
from download_helpers import ITEM, ZIP_ROUTE, XML_ROUTE, watkins_cfg, leftovers
from bioprobe import datasets
from bioprobe import download as dl


def test_clean_fetch_verifies_against_archive_org_and_is_not_repeated(server, watkins_zip, tmp_path):
    data_dir = tmp_path / "resources" / "data"
    cfg = watkins_cfg(server, watkins_zip.zip_path, archive_org_files_xml(ITEM, {"watkins.zip": watkins_zip.zip_path}))

    marker = datasets.download("watkins", cfg, data_dir)

    assert marker == data_dir / "watkins" / ".complete.json"
    record = json.loads(marker.read_text())
    assert record["sources"][0]["md5"] == md5_of(watkins_zip.zip_path)
    assert record["sources"][0]["verified_against"].startswith("archive.org")
    assert "annotations.csv" in record["files"]
    for rel, _species in watkins_zip.rows:
        assert (data_dir / "watkins" / rel).stat().st_size == record["files"][rel]
    # The archive is deleted once extracted; the lock file beside data_dir records the checksums.
    assert not (data_dir / ".downloads").exists()
    lock = json.loads((tmp_path / "resources" / "locks" / "datasets.json").read_text())["files"]
    assert lock["watkins/watkins.zip"]["md5"] == md5_of(watkins_zip.zip_path)

    n_requests = len(server.requests)
    assert datasets.download("watkins", cfg, data_dir) == marker
    assert len(server.requests) == n_requests, "verified data must not be fetched again"

    # Snakemake deletes a job's output (the marker) before rerunning it: it is restored offline.
    marker.unlink()
    assert datasets.download("watkins", cfg, data_dir) == marker
    assert marker.exists() and len(server.requests) == n_requests


def test_missing_file_invalidates_the_marker(server, watkins_zip, tmp_path):
    cfg = watkins_cfg(server, watkins_zip.zip_path)
    marker = datasets.download("watkins", cfg, tmp_path / "data", lock_file=tmp_path / "lock.json")
    first_file = tmp_path / "data" / "watkins" / watkins_zip.rows[0][0]
    first_file.unlink()
    ok, why = dl.check_complete(tmp_path / "data", "watkins", ["watkins.zip"], "watkins")
    assert not ok and first_file.name in why
    datasets.download("watkins", cfg, tmp_path / "data", lock_file=tmp_path / "lock.json")
    assert first_file.exists() and marker.exists()


def test_unpublished_checksum_is_recorded_then_enforced(server, watkins_zip, tmp_path):
    lock = tmp_path / "locks.json"
    cfg = watkins_cfg(server, watkins_zip.zip_path)  # no archive.org listing: nothing published
    datasets.download("watkins", cfg, tmp_path / "data", lock_file=lock)
    entry = json.loads(lock.read_text())["files"]["watkins/watkins.zip"]
    assert entry["verified_against"] == "none published; recorded on first fetch"
    assert entry["sha256"] == dl.file_digests(watkins_zip.zip_path)["sha256"]

    # The host now serves different bytes under the same name: the lock file catches it.
    changed = make_watkins_zip(tmp_path / "changed.zip", seed=9)
    server.add_file(ZIP_ROUTE, changed.zip_path)
    with pytest.raises(dl.ChecksumError, match="checksum mismatch"):
        datasets.download("watkins", cfg, tmp_path / "data2", lock_file=lock)
    assert leftovers(tmp_path / "data2") == []


def test_local_file_source_and_foreign_data_is_not_overwritten(server, watkins_zip, tmp_path):
    listing = archive_org_files_xml(ITEM, {"watkins.zip": watkins_zip.zip_path})
    server.add_bytes(XML_ROUTE, listing.encode())
    cfg = {"type": "watkins", "retry_backoff_s": 0.0, "files_xml": server.url + XML_ROUTE,
           "urls": [watkins_zip.zip_path.as_uri(), server.url + "/never/watkins.zip"]}
    # Someone's own copy of the data sits where the dataset goes: it is not deleted.
    foreign = tmp_path / "data" / "watkins"
    foreign.mkdir(parents=True)
    (foreign / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="did not download and verify"):
        datasets.download("watkins", cfg, tmp_path / "data", lock_file=tmp_path / "lock.json")
    assert (foreign / "mine.txt").read_text() == "keep me"
    assert not [p for p in (tmp_path / "data").iterdir() if p.name.startswith(".watkins.")]

    (foreign / "mine.txt").unlink()  # an empty folder (as Snakemake creates it) is fine
    marker = datasets.download("watkins", cfg, tmp_path / "data", lock_file=tmp_path / "lock.json")
    record = json.loads(marker.read_text())
    assert record["sources"][0]["verified_against"].startswith("archive.org")
    assert not server.requests_for("/never/watkins.zip")


def test_lock_file_disagreeing_with_the_host_stops_before_downloading(server, watkins_zip, tmp_path):
    lock = tmp_path / "lock.json"
    dl.record_in_lock(lock, "watkins/watkins.zip", {"md5": "0" * 32, "sha256": "1" * 64, "size": 1})
    cfg = watkins_cfg(server, watkins_zip.zip_path, archive_org_files_xml(ITEM, {"watkins.zip": watkins_zip.zip_path}))
    with pytest.raises(dl.ChecksumError, match=r"host now publishes md5 .* delete the entry 'watkins/watkins.zip'"):
        datasets.download("watkins", cfg, tmp_path / "data", lock_file=lock)
    assert not server.requests_for(ZIP_ROUTE)


def test_disk_space_estimate(tmp_path):
    remotes = [dl.RemoteFile("a.tar.gz", ["http://127.0.0.1/a"], size=4_000), dl.RemoteFile("b.zip", ["http://127.0.0.1/b"])]
    (tmp_path / "a.tar.gz.part").write_bytes(b"x" * 1_000)
    assert dl.bytes_needed(remotes, tmp_path) == 3_000 + 4_000
    assert dl.disk_space_problem(7_000, 10_000) is None
    assert "needs about 21.0 GB of free disk (download and extraction), only 5.0 GB" in dl.disk_space_problem(20_000_000_000, 5_000_000_000)


def test_lock_file_updates_from_parallel_downloads_are_not_lost(tmp_path):
    import multiprocessing

    lock = tmp_path / "locks" / "datasets.json"
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_record_many, args=(lock, prefix)) for prefix in ("imv", "watkins")]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    assert len(dl.read_lock(lock)) == 2 * 25


def _record_many(lock, prefix):
    for i in range(25):
        dl.record_in_lock(lock, f"{prefix}/file{i}", {"sha256": f"{i:064x}", "size": i})
