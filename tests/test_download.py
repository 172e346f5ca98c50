"""Download, verification, resume, mirrors, lock file and safe extraction, against a 127.0.0.1 server."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from archives import (
    LocalServer,
    archive_org_files_xml,
    make_imv_archives,
    make_tar_with_absolute_path,
    make_tar_with_symlink,
    make_watkins_zip,
    make_zip_slip,
    make_zip_with_symlink,
    md5_of,
    serve_zenodo_record,
    write_tar_gz,
    zenodo_record_json,
)
from bioprobe import datasets
from bioprobe import download as dl

ITEM = "watkins_202104"
ZIP_ROUTE = f"/download/{ITEM}/watkins.zip"
XML_ROUTE = f"/download/{ITEM}/{ITEM}_files.xml"


@pytest.fixture(scope="module")
def watkins_zip(tmp_path_factory):
    return make_watkins_zip(tmp_path_factory.mktemp("srv") / "watkins.zip", seconds=1.0)


@pytest.fixture()
def server():
    with LocalServer() as srv:
        yield srv


def watkins_cfg(server: LocalServer, zip_path: Path, listing: str | None = None, **serve) -> dict:
    """Serve watkins.zip (and archive.org's listing of it) and return the dataset config pointing there."""
    url = server.add_file(ZIP_ROUTE, zip_path, **serve)
    cfg = {"type": "watkins", "urls": [url], "retry_backoff_s": 0.0, "retries": 3, "timeout_s": 10}
    if listing is not None:
        server.add_bytes(XML_ROUTE, listing.encode())
        cfg["files_xml"] = server.url + XML_ROUTE
    return cfg


def leftovers(data_dir: Path) -> list[str]:
    """Anything in data_dir that could pass for (part of) an extracted dataset."""
    return sorted(p.name for p in data_dir.iterdir() if p.name != ".downloads") if data_dir.exists() else []


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


def test_cut_transfer_is_resumed_with_a_range_request(server, watkins_zip, tmp_path):
    size = watkins_zip.zip_path.stat().st_size
    cut = size // 2
    assert cut > 2 * dl.CHUNK_BYTES
    cfg = watkins_cfg(server, watkins_zip.zip_path, archive_org_files_xml(ITEM, {"watkins.zip": watkins_zip.zip_path}),
                      drop_after=[cut])

    datasets.download("watkins", cfg, tmp_path / "data", lock_file=tmp_path / "lock.json")

    fetches = server.requests_for(ZIP_ROUTE)
    assert len(fetches) == 2
    assert fetches[0].range is None and fetches[0].bytes_sent == cut
    resumed_at = int(fetches[1].range.removeprefix("bytes=").rstrip("-"))
    assert cut - dl.CHUNK_BYTES <= resumed_at <= cut  # at most the block in flight is fetched again
    assert fetches[1].status == 206 and fetches[1].bytes_sent == size - resumed_at
    assert (tmp_path / "data" / "watkins" / ".complete.json").exists()


def test_server_ignoring_range_restarts_cleanly(server, watkins_zip, tmp_path):
    cfg = watkins_cfg(server, watkins_zip.zip_path, archive_org_files_xml(ITEM, {"watkins.zip": watkins_zip.zip_path}),
                      drop_after=[watkins_zip.zip_path.stat().st_size // 2], honor_range=False)
    datasets.download("watkins", cfg, tmp_path / "data", lock_file=tmp_path / "lock.json")
    fetches = server.requests_for(ZIP_ROUTE)
    assert [f.status for f in fetches] == [200, 200]
    assert (tmp_path / "data" / "watkins" / "annotations.csv").exists()


def test_mirror_is_used_when_primary_fails(server, watkins_zip, tmp_path):
    server.add_file("/mirror/watkins.zip", watkins_zip.zip_path)
    server.add_file("/flaky/watkins.zip", watkins_zip.zip_path, status=[503, 503, 503, 503])
    cfg = {"type": "watkins", "retry_backoff_s": 0.0, "retries": 2,
           "urls": [server.url + "/missing/watkins.zip", server.url + "/flaky/watkins.zip", server.url + "/mirror/watkins.zip"]}
    marker = datasets.download("watkins", cfg, tmp_path / "data", lock_file=tmp_path / "lock.json")
    assert [r.status for r in server.requests_for("/missing/watkins.zip")] == [404]  # not retried
    assert [r.status for r in server.requests_for("/flaky/watkins.zip")] == [503, 503, 503]  # 1 + 2 retries
    assert len(server.requests_for("/mirror/watkins.zip")) == 1
    assert json.loads(marker.read_text())["sources"][0]["url"].endswith("/missing/watkins.zip")


def test_checksum_mismatch_fails_clearly_and_leaves_nothing_complete(server, watkins_zip, tmp_path):
    other = make_watkins_zip(tmp_path / "other.zip", seed=5)
    cfg = watkins_cfg(server, watkins_zip.zip_path, archive_org_files_xml(ITEM, {"watkins.zip": other.zip_path}))
    data_dir = tmp_path / "data"

    with pytest.raises(dl.ChecksumError, match=r"watkins\.zip.*checksum mismatch.*md5"):
        datasets.download("watkins", cfg, data_dir, lock_file=tmp_path / "lock.json")

    assert leftovers(data_dir) == []
    assert not list(data_dir.rglob("*.part")) and not list(data_dir.rglob("watkins.zip"))
    assert not (tmp_path / "lock.json").exists(), "an unverified file must not be recorded"
    assert len(server.requests_for(ZIP_ROUTE)) == 1, "a fresh download that fails verification is not repeated"


def test_stale_partial_file_is_discarded_after_failed_verification(server, watkins_zip, tmp_path):
    other = make_watkins_zip(tmp_path / "other.zip", seed=5)
    partial = tmp_path / "data" / ".downloads" / "watkins" / "watkins.zip.part"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(other.zip_path.read_bytes()[:100_000])  # left over from another version of the file
    cfg = watkins_cfg(server, watkins_zip.zip_path, archive_org_files_xml(ITEM, {"watkins.zip": watkins_zip.zip_path}))
    datasets.download("watkins", cfg, tmp_path / "data", lock_file=tmp_path / "lock.json")
    assert [r.range for r in server.requests_for(ZIP_ROUTE)] == ["bytes=100000-", None]
    assert (tmp_path / "data" / "watkins" / ".complete.json").exists()


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


def test_zenodo_record_files_and_imv_download(server, tmp_path):
    imv = make_imv_archives(tmp_path / "srv", twins=(1, 2), calls_per_recording=3)
    api = serve_zenodo_record(server, 10130104, imv.archives)
    files = {f.name: f for f in dl.zenodo_record_files(10130104, api)}
    assert set(files) == set(imv.archives)
    doc = files["InfantMarmosetsVox_documentation.tar.gz"]
    assert doc.checksums == {"md5": md5_of(imv.archives[doc.name])} and doc.checksum_source == "zenodo"

    cfg = {"type": "imv", "zenodo_api": api, "zenodo_record": 10130104, "twins": [2], "retry_backoff_s": 0.0}
    marker = datasets.download("imv", cfg, tmp_path / "data", lock_file=tmp_path / "lock.json")
    record = json.loads(marker.read_text())
    assert sorted(s["name"] for s in record["sources"]) == ["InfantMarmosetsVox_documentation.tar.gz",
                                                           "InfantMarmosetsVox_twin_2.tar.gz"]
    assert not server.requests_for("/records/10130104/files/InfantMarmosetsVox_twin_1.tar.gz/content")
    assert (tmp_path / "data" / "imv" / "labels.csv").exists()
    assert (tmp_path / "data" / "imv" / "data" / "twin_2" / "20160907_Twin2_marmoset1.wav").exists()
    # Asking for another twin later invalidates the marker (its sources no longer match).
    ok, why = dl.check_complete(tmp_path / "data", "imv", datasets.dataset_module({"type": "imv"}).source_names({"twins": [1, 2]}), "imv")
    assert not ok and "sources" in why


def test_zenodo_legacy_api_layout(server, tmp_path):
    path = write_tar_gz(tmp_path / "a.tar.gz", {"x.txt": b"x"})
    server.add_bytes("/api/records/7", json.dumps(zenodo_record_json(7, {"a.tar.gz": path}, server.url, legacy=True)).encode())
    (remote,) = dl.zenodo_record_files(7, server.url + "/api/records")
    assert remote.urls == [f"{server.url}/records/7/files/a.tar.gz/content"]
    assert remote.checksums["md5"] == md5_of(path) and remote.size == path.stat().st_size


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


def test_checksum_helpers():
    assert dl.parse_checksum("md5:ABCDEF") == ("md5", "abcdef")
    with pytest.raises(ValueError):
        dl.parse_checksum("crc32:1234")
    assert dl.archive_org_files_xml_url("https://archive.org/download/watkins_202104/watkins.zip") == \
        "https://archive.org/download/watkins_202104/watkins_202104_files.xml"
    assert dl.archive_org_files_xml_url("https://storage.googleapis.com/ml-bioacoustics-datasets/watkins.zip") is None
    listing = dl.parse_archive_org_files_xml(
        '<files><file name="a.zip" source="original"><size>3</size><md5>AA</md5><sha1>bb</sha1></file>'
        '<file name="a_meta.xml" source="metadata"/></files>')
    assert listing["a.zip"] == {"size": 3, "md5": "aa", "sha1": "bb"}


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


def test_partial_file_from_an_earlier_run_is_resumed(server, watkins_zip, tmp_path):
    data_dir = tmp_path / "data"
    partial = data_dir / ".downloads" / "watkins" / "watkins.zip.part"
    partial.parent.mkdir(parents=True)
    head = watkins_zip.zip_path.read_bytes()[:100_000]
    partial.write_bytes(head)  # as left by a run killed mid-transfer
    cfg = watkins_cfg(server, watkins_zip.zip_path, archive_org_files_xml(ITEM, {"watkins.zip": watkins_zip.zip_path}))
    datasets.download("watkins", cfg, data_dir, lock_file=tmp_path / "lock.json")
    (fetch,) = server.requests_for(ZIP_ROUTE)
    assert fetch.range == "bytes=100000-" and fetch.status == 206
    assert fetch.bytes_sent == watkins_zip.zip_path.stat().st_size - 100_000


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
