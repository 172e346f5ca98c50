"""HTTP fetching (bioprobe.download.fetch): resume, restart, mirrors, retries, checksums; served from 127.0.0.1."""

from __future__ import annotations

import json

import pytest

from archives import (
    archive_org_files_xml,
    make_watkins_zip,
)
from download_helpers import ITEM, ZIP_ROUTE, watkins_cfg, leftovers
from bioprobe import datasets
from bioprobe import download as dl


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


def test_checksum_helpers():
    assert dl.parse_checksum("md5:ABCDEF") == ("md5", "abcdef")
    with pytest.raises(ValueError):
        dl.parse_checksum("crc32:1234")
    digests = dl.file_digests(__file__)
    assert set(digests) == set(dl.HASH_ALGORITHMS)
    assert dl.checksum_mismatches(digests, {"md5": digests["md5"]}) == []
    assert dl.checksum_mismatches(digests, {"md5": "0" * 32}) == [f"md5 is {digests['md5']}, expected {'0' * 32}"]
