"""Host metadata (bioprobe.download.hosts): Zenodo's record API and archive.org's file listings."""

from __future__ import annotations

import json

from archives import (
    make_imv_archives,
    md5_of,
    serve_zenodo_record,
    write_tar_gz,
    zenodo_record_json,
)
from bioprobe import datasets
from bioprobe import download as dl


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


def test_archive_org_helpers():
    assert dl.archive_org_files_xml_url("https://archive.org/download/watkins_202104/watkins.zip") == \
        "https://archive.org/download/watkins_202104/watkins_202104_files.xml"
    assert dl.archive_org_files_xml_url("https://storage.googleapis.com/ml-bioacoustics-datasets/watkins.zip") is None
    listing = dl.parse_archive_org_files_xml(
        '<files><file name="a.zip" source="original"><size>3</size><md5>AA</md5><sha1>bb</sha1></file>'
        '<file name="a_meta.xml" source="metadata"/></files>')
    assert listing["a.zip"] == {"size": 3, "md5": "aa", "sha1": "bb"}
