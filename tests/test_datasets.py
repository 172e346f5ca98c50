"""Manifests of each dataset type, built from tiny copies in the real on-disk formats."""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pandas as pd
import pytest

from archives import (
    LocalServer,
    make_abzaliev_tree,
    make_folder_dataset,
    make_imv_archives,
    make_watkins_zip,
    serve_zenodo_record,
)
from bioprobe import datasets
from bioprobe.datasets import imv as imv_module

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- watkins


@pytest.fixture(scope="module")
def watkins_data(tmp_path_factory):
    """Watkins downloaded through the real path from a local server (annotations nested in a folder)."""
    tmp = tmp_path_factory.mktemp("watkins")
    info = make_watkins_zip(tmp / "srv" / "watkins.zip", prefix="watkins/")
    with LocalServer() as server:
        url = server.add_file("/watkins.zip", info.zip_path)
        cfg = {"type": "watkins", "urls": [url], "retry_backoff_s": 0.0}
        datasets.download("watkins", cfg, tmp / "data", lock_file=tmp / "lock.json")
    return info, cfg, tmp / "data"


def test_watkins_manifest_follows_annotations(watkins_data):
    info, cfg, data_dir = watkins_data
    df = datasets.build_manifest("watkins", cfg, data_dir)
    assert list(df.columns) == ["clip_id", "path", "start", "end", "label", "group", "exclude"]
    assert (df["exclude"] == "").all()
    assert df["path"].tolist() == [f"watkins/{rel}" for rel, _ in info.rows]  # annotations.csv order
    assert df["label"].tolist() == [species for _, species in info.rows]
    assert df["start"].isna().all() and df["end"].isna().all()  # whole files
    assert df["group"].is_unique and df["clip_id"].is_unique
    root = datasets.audio_root("watkins", cfg, data_dir)
    assert all((root / p).is_file() for p in df["path"])
    assert "Beluga,_White_Whale" in set(df["label"])  # commas in species names survive
    assert df.attrs["study_counts"] == {"clips": len(info.rows), "classes": len({s for _, s in info.rows})}


def test_watkins_min_clips_per_class_excludes_rare_species(watkins_data, tmp_path):
    _, cfg, data_dir = watkins_data
    datasets.prepare("watkins", cfg, data_dir, tmp_path / "all")
    datasets.prepare("watkins", {**cfg, "min_clips_per_class": 3}, data_dir, tmp_path / "min3")
    # the clip list does not depend on the setting; the split marks the rare species excluded
    assert (tmp_path / "all" / "clips.csv").read_bytes() == (tmp_path / "min3" / "clips.csv").read_bytes()
    split = pd.read_csv(tmp_path / "min3" / "split.csv", keep_default_na=False)
    rare = split["label"] == "Weddell_Seal"
    assert rare.any() and (split.loc[rare, "split"] == "excluded").all()
    assert (split.loc[rare, "exclude"] == "min_clips_per_class").all()
    assert split.loc[~rare, "split"].isin(["train", "val", "test"]).all()
    report = json.loads((tmp_path / "min3" / "leakage.json").read_text())
    assert "Weddell_Seal" in report["dropped_classes"] and report["n_classes"] == 3
    assert report["excluded"] == {"min_clips_per_class": int(rare.sum())}
    grouped = datasets.build_manifest("watkins", {**cfg, "group_prefix_chars": 3}, data_dir)
    assert grouped["group"].nunique() == 4  # file names of one species share their first 3 digits here


def test_watkins_without_download_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="annotations.csv.*download"):
        datasets.build_manifest("watkins", {"type": "watkins"}, tmp_path)


# ---------------------------------------------------------------- imv


@pytest.fixture(scope="module")
def imv_data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("imv")
    info = make_imv_archives(tmp / "srv", twins=(1, 2), calls_per_recording=8, n_calltypes=4)
    with LocalServer() as server:
        api = serve_zenodo_record(server, 10130104, info.archives)
        cfg = {"type": "imv", "zenodo_api": api, "twins": [1, 2], "retry_backoff_s": 0.0}
        datasets.download("imv", cfg, tmp / "data", lock_file=tmp / "lock.json")
    return info, cfg, tmp / "data"


def test_imv_manifest_one_row_per_call_without_silence_and_noise(imv_data):
    info, cfg, data_dir = imv_data
    df = datasets.build_manifest("imv", cfg, data_dir)
    calls = [row for row in info.labels if row["calltype"] < 11]
    assert len(df) == len(calls) == 8 * len(info.recordings)
    assert df["start"].tolist() == pytest.approx([r["start"] for r in calls])
    assert df["end"].tolist() == pytest.approx([r["end"] for r in calls])
    assert df["label"].tolist() == [imv_module.CALLTYPE_NAMES[r["calltype"]] for r in calls]
    assert set(df["label"]) == {"Peep(Pre-Phee)", "Phee", "Twitter", "Trill"}
    assert df["group"].tolist() == [r["filename"] for r in calls] == df["recording"].tolist()
    assert df["path"].iloc[0] == "data/twin_1/20160907_Twin1_marmoset1.wav"
    assert {"recording", "individual", "caller"} <= set(df.columns)
    dropped = df.attrs["manifest_dropped"]["rows"]
    assert dropped["silence"] == dropped["noise"] == len(info.recordings)


def test_imv_caller_task_labels_individuals(imv_data):
    _, cfg, data_dir = imv_data
    df = datasets.build_manifest("imv", {**cfg, "task": "caller"}, data_dir)
    assert sorted(df["label"].unique()) == ["twin1_marmoset1", "twin1_marmoset2", "twin2_marmoset1", "twin2_marmoset2"]
    assert (df["label"] == df["individual"]).all()
    assert all(f"Twin{lab[4]}_marmoset{lab[-1]}" in rec for lab, rec in zip(df["label"], df["recording"]))


def test_imv_twin_subset_and_bad_rows(imv_data, tmp_path, caplog):
    _, cfg, data_dir = imv_data
    only_first = datasets.build_manifest("imv", {**cfg, "twins": [1]}, data_dir)
    assert only_first["recording"].str.contains("Twin1").all()
    assert only_first.attrs["manifest_dropped"]["rows"]["twin_not_selected"] > 0
    # A labels.csv with an unknown call type, an empty segment and a missing recording.
    root = tmp_path / "imv"
    (root / "data" / "twin_1").mkdir(parents=True)
    wav = data_dir / "imv" / "data" / "twin_1" / "20160907_Twin1_marmoset1.wav"
    (root / "data" / "twin_1" / wav.name).write_bytes(wav.read_bytes())
    (root / "labels.csv").write_text(
        "filename,start,end,duration,calltype,caller\n"
        "20160907_Twin1_marmoset1,0.1,0.3,0.2,1,1\n"
        "20160907_Twin1_marmoset1,0.5,0.5,0.0,2,1\n"
        "20160907_Twin1_marmoset1,0.6,0.9,0.3,17,1\n"
        "20160907_Twin1_marmoset1,0.6,0.9,0.3,,1\n"
        "20161001_Twin1_marmoset2,0.1,0.3,0.2,1,2\n"
        "20160907_Twin1_marmoset1,1.0,1.2,0.2,2,1\n")  # a second class: a split needs two
    df = datasets.build_manifest("imv", {"type": "imv"}, tmp_path)
    assert len(df) == 2 and df["label"].tolist() == ["Phee", "Twitter"]
    rows = df.attrs["manifest_dropped"]["rows"]
    assert (rows["empty_segment"], rows["unknown_calltype"], rows["recording_missing"]) == (1, 2, 1)
    # counted as the study counted (before the end <= start row is dropped), compared with its counts
    assert df.attrs["study_counts"] == {"clips": 3, "classes": 2}
    with caplog.at_level(logging.WARNING):
        datasets.prepare("imv", {"type": "imv"}, tmp_path, tmp_path / "out")
    report = json.loads((tmp_path / "out" / "leakage.json").read_text())
    assert report["study_counts"]["expected"] == {"clips": 72921, "classes": 11}
    assert report["study_counts"]["found"] == {"clips": 3, "classes": 2} and not report["study_counts"]["match"]
    assert report["warnings"] == ["imv: count differs from the study's (clips: expected 72921, found 3)",
                                  "imv: count differs from the study's (classes: expected 11, found 2)"]
    assert report["manifest_dropped"]["rows"]["empty_segment"] == 1
    logged = caplog.text
    assert "count differs from the study's (clips: expected 72921, found 3)" in logged
    assert "dropped 1 call(s)" in logged and "end <= start" in logged
    assert "study_counts" not in datasets.build_manifest("imv", {"type": "imv", "twins": [1]}, tmp_path).attrs
    (root / "labels.csv").write_text("filename,start,end,duration,calltype,caller\nnot_a_recording,0,1,1,1,1\n")
    with pytest.raises(ValueError, match=r"labels\.csv, line 2.*not_a_recording"):
        datasets.build_manifest("imv", {"type": "imv"}, tmp_path)


# ---------------------------------------------------------------- abzaliev


def test_abzaliev_unavailable_without_path_explains_how_to_obtain():
    ok, why = datasets.dataset_is_available({"type": "abzaliev", "path": None})
    assert not ok and "10.3233/JIFS-169509" in why and "path" in why
    assert not datasets.needs_download({"type": "abzaliev", "path": None})
    with pytest.raises(ValueError, match="not available"):
        datasets.build_manifest("abzaliev", {"type": "abzaliev", "path": None}, "unused")


def test_abzaliev_wrong_path_says_how_to_obtain(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"does not exist.*10\.3233/JIFS-169509.*data/<dog>"):
        datasets.prepare_inputs("abzaliev", {"type": "abzaliev", "path": str(tmp_path / "nope")}, "unused")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="neither data/"):
        datasets.build_manifest("abzaliev", {"type": "abzaliev", "path": str(tmp_path / "empty")}, "unused")


@pytest.mark.parametrize("point_at_data", [False, True])
def test_abzaliev_manifest_drops_s_and_merges_dog_aliases(tmp_path, point_at_data):
    root = make_abzaliev_tree(tmp_path / "abz", dog_folders=("Lazy_150717", "Luna", "lasy_2", "Koster", "Mama Fisgonn"),
                              codes=("L-S1", "L-A", "S", "CH-P"), files_per_code=2)
    path = root / "data" if point_at_data else root
    cfg = {"type": "abzaliev", "path": str(path), "drop_codes": ["S"], "dog_aliases": {"mama fisgonn": "mama fisgon"}}
    df = datasets.build_manifest("abzaliev", cfg, "unused")
    assert datasets.audio_root("abzaliev", cfg, "unused") == root / "data"
    assert all((root / "data" / p).is_file() for p in df["path"])
    used = df[df["exclude"] == ""]
    assert set(used["label"]) == {"L-S1", "L-A", "CH-P"}
    assert len(used) == 5 * 3 * 2 and len(df) == 5 * 4 * 2  # S files stay in the clip list, excluded
    assert set(df.loc[df["label"] == "S", "exclude"]) == {"drop_codes"}
    assert sorted(df["dog"].unique()) == ["koster", "lazy", "luna", "mama fisgon"]
    assert (df["group"] == df["dog"]).all()
    assert set(df.loc[df["dog"] == "lazy", "dog_folder"]) == {"Lazy_150717", "lasy_2"}
    assert df.attrs["manifest_dropped"]["files_by_dropped_code"] == {"S": 10}
    keep_all = datasets.build_manifest("abzaliev", {**cfg, "drop_codes": []}, "unused")
    assert "S" in set(keep_all["label"]) and (keep_all["exclude"] == "").all()
    assert keep_all["clip_id"].tolist() == df["clip_id"].tolist()


def test_abzaliev_unknown_code_folder_is_an_error(tmp_path):
    root = make_abzaliev_tree(tmp_path / "abz", dog_folders=("Luna",), codes=("L-A", "XX"), files_per_code=1)
    with pytest.raises(ValueError, match=r"XX is not a call type folder"):
        datasets.build_manifest("abzaliev", {"type": "abzaliev", "path": str(root)}, "unused")


# ---------------------------------------------------------------- folder


def folder_cfg(root: Path, labels: Path) -> dict:
    return {"type": "folder", "root": str(root), "labels": str(labels)}


def test_folder_manifest_whole_files_and_segments(tmp_path):
    labels = make_folder_dataset(tmp_path / "calls", files_per_label=4)
    df = datasets.build_manifest("mine", folder_cfg(tmp_path / "calls", labels), "unused")
    table = pd.read_csv(labels)
    assert df["path"].tolist() == table["path"].tolist() and df["label"].tolist() == table["label"].tolist()
    assert df["group"].tolist() == table["group"].tolist()
    assert df["start"].isna().all()
    assert datasets.prepare_inputs("mine", folder_cfg(tmp_path / "calls", labels), "unused") == [str(labels)]

    seg_labels = make_folder_dataset(tmp_path / "seg", files_per_label=2, with_segments=True, seconds=0.3)
    seg = datasets.build_manifest("seg", folder_cfg(tmp_path / "seg", seg_labels), "unused")
    assert len(seg) == 3 * 2 * 2
    assert seg["start"].tolist()[:2] == pytest.approx([0.1, 0.5]) and seg["end"].tolist()[:2] == pytest.approx([0.4, 0.8])


def test_folder_optional_columns_default_sensibly(tmp_path):
    make_folder_dataset(tmp_path, files_per_label=1)
    csv = tmp_path / "mine.csv"
    csv.write_text("path,label,start,end\naudio/bark/bark_000.wav,bark,,0.2\naudio/growl/growl_000.wav,growl,0.1,\n")
    df = datasets.build_manifest("m", folder_cfg(tmp_path, csv), "unused")
    assert df["start"].tolist()[0] == 0.0 and df["end"].tolist()[0] == 0.2
    assert df["start"].tolist()[1] == 0.1 and math.isnan(df["end"].tolist()[1])
    assert df["group"].tolist() == ["audio/bark/bark_000.wav", "audio/growl/growl_000.wav"]


@pytest.mark.parametrize("content, error, match", [
    ("path,label,species\naudio/bark/bark_000.wav,bark,x\n", ValueError, r"mine\.csv: unknown column\(s\) \['species'\]"),
    ("path\naudio/bark/bark_000.wav\n", ValueError, r"missing required column\(s\) \['label'\]"),
    ("path,label\naudio/bark/bark_000.wav,bark\naudio/bark/bark_001.wav,\n", ValueError, r"mine\.csv: empty label on line\(s\) 3"),
    ("path,label\n../outside.wav,bark\n", ValueError, r"mine\.csv: path leaves root .* line\(s\) 2"),
    ("path,label\n/etc/passwd,bark\n", ValueError, r"path leaves root .* line\(s\) 2"),
    ("path,label\naudio/bark/nope.wav,bark\n", FileNotFoundError, r"mine\.csv: audio file missing .* line\(s\) 2.*nope\.wav"),
    ("path,label,start,end\naudio/bark/bark_000.wav,bark,0.3,0.2\n", ValueError, r"mine\.csv, line 2: end \(0\.2\) must be after start"),
    ("path,label,start\naudio/bark/bark_000.wav,bark,soon\n", ValueError, r"mine\.csv, line 2: start 'soon' is not a number"),
    ("path,label\n", ValueError, r"mine\.csv: no rows"),
])
def test_folder_bad_labels_name_the_csv_and_row(tmp_path, content, error, match):
    make_folder_dataset(tmp_path / "root", files_per_label=2)
    csv = tmp_path / "mine.csv"
    csv.write_text(content)
    with pytest.raises(error, match=match):
        datasets.build_manifest("m", folder_cfg(tmp_path / "root", csv), "unused")


def test_folder_symlink_leaving_root_is_refused(tmp_path):
    make_folder_dataset(tmp_path / "root", files_per_label=1)
    outside = tmp_path / "outside.wav"
    outside.write_bytes((tmp_path / "root" / "audio" / "bark" / "bark_000.wav").read_bytes())
    os.symlink(outside, tmp_path / "root" / "sneaky.wav")
    csv = tmp_path / "mine.csv"
    csv.write_text("path,label\nsneaky.wav,bark\n")
    with pytest.raises(ValueError, match="leaves root"):
        datasets.build_manifest("m", folder_cfg(tmp_path / "root", csv), "unused")


# ---------------------------------------------------------------- prepare and the cheap API


def test_prepare_writes_clips_split_and_leakage_identically_each_run(tmp_path):
    labels = make_folder_dataset(tmp_path / "calls", files_per_label=10, groups_per_label=5)
    cfg = {**folder_cfg(tmp_path / "calls", labels), "split": {"method": "grouped", "seed": 3}}
    out1, out2 = tmp_path / "r1", tmp_path / "r2"
    for out in (out1, out2):
        datasets.prepare("mine", cfg, "unused", out)
    for name in ("clips.csv", "split.csv", "leakage.json"):
        assert (out1 / name).read_bytes() == (out2 / name).read_bytes()
    clips = pd.read_csv(out1 / "clips.csv")
    assert list(clips.columns) == ["clip_id", "path", "start", "end"]
    df = pd.read_csv(out1 / "split.csv", keep_default_na=False)
    assert list(df.columns) == ["clip_id", "label", "group", "split", "exclude"]
    assert df["clip_id"].tolist() == clips["clip_id"].tolist()
    assert df.groupby("group")["split"].nunique().max() == 1
    report = json.loads((out1 / "leakage.json").read_text())
    assert report["dataset"] == "mine" and report["split"]["method"] == "grouped"
    assert report["ids"]["group"]["n_crossing_splits"] == 0
    assert sorted(p.name for p in out1.iterdir()) == ["clips.csv", "leakage.json", "split.csv"]  # no temporary files left


def test_split_settings_never_change_the_clip_list(tmp_path):
    labels = make_folder_dataset(tmp_path / "calls", files_per_label=10, groups_per_label=5)
    base = folder_cfg(tmp_path / "calls", labels)
    variants = {
        "base": base,
        "seed": {**base, "split": {"seed": 7}},
        "grouped": {**base, "split": {"method": "grouped"}},
        "mapped": {**base, "label_map": {"bark": "noise", "growl": None}},
    }
    for name, cfg in variants.items():
        datasets.prepare("mine", cfg, "unused", tmp_path / name)
        assert (tmp_path / name / "clips.csv").read_bytes() == (tmp_path / "base" / "clips.csv").read_bytes(), name
    mapped = pd.read_csv(tmp_path / "mapped" / "split.csv", keep_default_na=False)
    growl = mapped["exclude"] == "label_map"
    assert growl.sum() == 10 and (mapped.loc[growl, "split"] == "excluded").all()
    assert "bark" not in set(mapped["label"]) and (mapped["label"] == "noise").sum() == 10
    seed = pd.read_csv(tmp_path / "seed" / "split.csv")
    assert seed["split"].tolist() != pd.read_csv(tmp_path / "base" / "split.csv")["split"].tolist()
    # settings tracked by each rule: the split's keys are not the clip list's
    assert datasets.clip_settings(variants["seed"]) == datasets.clip_settings(base)
    assert datasets.split_settings(variants["seed"]) != datasets.split_settings(base)
    assert datasets.split_settings(variants["mapped"])["label_map"] == {"bark": "noise", "growl": None}
    from bioprobe.datasets.labels import apply_label_map

    numeric = pd.DataFrame({"label": ["1", "2", "3"], "exclude": ["", "", ""]})
    mapped = apply_label_map(numeric, {1: "one", 2: None})  # keys as YAML reads them
    assert mapped["label"].tolist() == ["one", "2", "3"] and mapped["exclude"].tolist() == ["", "label_map", ""]


def test_split_refuses_a_clip_list_that_no_longer_matches_the_data(tmp_path):
    labels = make_folder_dataset(tmp_path / "calls", files_per_label=4)
    cfg = folder_cfg(tmp_path / "calls", labels)
    datasets.prepare("mine", cfg, "unused", tmp_path / "out")
    rows = labels.read_text().splitlines()
    labels.write_text("\n".join(rows[:-1]) + "\n")  # one clip fewer
    with pytest.raises(ValueError, match=r"clips\.csv is out of date .*--forcerun clips"):
        datasets.write_split("mine", cfg, "unused", tmp_path / "out" / "clips.csv", tmp_path / "s.csv", tmp_path / "l.json")


def test_folder_clip_digest_follows_clip_columns_only(tmp_path):
    from bioprobe.datasets import folder

    csv = tmp_path / "labels.csv"
    csv.write_text("path,label,group\na.wav,bark,g1\nb.wav,growl,g2\n")
    cfg = {"type": "folder", "root": str(tmp_path), "labels": str(csv)}
    before = folder.clip_columns_digest(cfg)
    csv.write_text("path,label,group\na.wav,growl,g9\nb.wav,growl,g2\n")  # labels and groups edited
    assert folder.clip_columns_digest(cfg) == before
    assert datasets.clip_settings(cfg)["clip_columns_sha256"] == before
    assert datasets.clips_inputs("m", cfg, "unused") == [(str(csv), True)]  # its date is not tracked
    csv.write_text("path,label,group\nb.wav,growl,g2\na.wav,growl,g9\n")  # clips re-ordered
    assert folder.clip_columns_digest(cfg) != before
    # a labels file made by the workflow itself (the demo's) is tracked by date, as any output
    assert "clip_columns_sha256" not in datasets.clip_settings(cfg, made_by_workflow=(str(csv),))
    assert datasets.clips_inputs("m", cfg, "unused", made_by_workflow=(str(csv),)) == [(str(csv), False)]


def test_download_settings_track_only_what_is_downloaded():
    base = {"type": "imv", "twins": [1, 2]}
    assert datasets.download_settings({**base, "retries": 9, "task": "caller", "split": {"seed": 1},
                                       "urls": None}) == datasets.download_settings(base)
    assert datasets.download_settings({**base, "twins": [1]}) != datasets.download_settings(base)
    assert datasets.download_settings({"type": "abzaliev", "path": "x"}) == {"type": "abzaliev", "sources": []}
    watkins = {"type": "watkins"}
    assert datasets.download_settings({**watkins, "min_clips_per_class": 3}) == datasets.download_settings(watkins)


def test_prepare_default_split_per_type(tmp_path):
    labels = make_folder_dataset(tmp_path / "calls", files_per_label=5)
    datasets.prepare("mine", folder_cfg(tmp_path / "calls", labels), "unused", tmp_path)
    assert json.loads((tmp_path / "leakage.json").read_text())["split"]["method"] == "stratified"
    assert datasets.split_config({"type": "watkins"})["method"] == "random"


def test_prepare_from_downloaded_imv_reports_recording_leakage(imv_data, tmp_path):
    _, cfg, data_dir = imv_data
    datasets.prepare("imv", cfg, data_dir, tmp_path)
    report = json.loads((tmp_path / "leakage.json").read_text())
    assert set(report["ids"]) == {"group", "recording", "individual", "caller"}
    assert report["ids"]["recording"]["n_crossing_splits"] > 0  # the authors' random rule leaks recordings
    assert report["manifest_dropped"]["rows"]["silence"] == 8


def test_dispatch_helpers(tmp_path):
    assert datasets.DATASET_TYPES == ("folder", "watkins", "imv", "abzaliev")
    assert [datasets.needs_download({"type": t}) for t in datasets.DATASET_TYPES] == [False, True, True, False]
    assert datasets.dataset_is_available({"type": "watkins", "enabled": False})[0] is False
    assert datasets.audio_root("w", {"type": "watkins"}, tmp_path) == tmp_path / "w"
    assert datasets.prepare_inputs("w", {"type": "imv"}, tmp_path) == [str(tmp_path / "w" / ".complete.json")]
    with pytest.raises(ValueError, match="unknown dataset type 'mp3s'"):
        datasets.needs_download({"type": "mp3s"})
    with pytest.raises(ValueError, match="nothing to download"):
        datasets.download("f", {"type": "folder", "root": "x", "labels": "y"}, tmp_path)


def test_importing_datasets_stays_cheap():
    code = ("import sys, bioprobe.datasets as d; d.needs_download({'type': 'imv'}); "
            "d.dataset_is_available({'type': 'abzaliev', 'path': None}); d.audio_root('w', {'type': 'watkins'}, 'x'); "
            "print(sorted(m for m in ('pandas', 'torch', 'numpy', 'requests') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO / "workflow")})
    assert out.stdout.strip() == "[]"


def test_folder_loader_leaves_the_audio_to_the_audit(tmp_path):
    # unreadable files and segments past the end are judged by bioprobe.audit (every file named), not here
    make_folder_dataset(tmp_path, files_per_label=1, seconds=0.5)
    (tmp_path / "broken.wav").write_bytes(b"RIFF....WAVEnot really")
    csv = tmp_path / "mine.csv"
    csv.write_text("path,label,start,end\naudio/bark/bark_000.wav,bark,0.2,0.9\nbroken.wav,bark,,\n")
    df = datasets.build_manifest("m", folder_cfg(tmp_path, csv), "unused")
    assert list(df["path"]) == ["audio/bark/bark_000.wav", "broken.wav"]


def test_folder_predefined_split_column(tmp_path):
    make_folder_dataset(tmp_path, files_per_label=3)
    csv = tmp_path / "mine.csv"
    lines = ["path,label,split"] + [f"audio/{lab}/{lab}_{j:03d}.wav,{lab},{s}" for lab in ("bark", "growl")
                                    for j, s in enumerate(("train", "val", "Test"))]
    csv.write_text("\n".join(lines) + "\n")
    cfg = {**folder_cfg(tmp_path, csv), "split": {"method": "predefined"}}
    datasets.prepare("m", cfg, "unused", tmp_path)
    df = pd.read_csv(tmp_path / "split.csv")
    assert df["split"].tolist() == ["train", "val", "test"] * 2
    assert "split" not in json.loads((tmp_path / "leakage.json").read_text())["ids"]
    csv.write_text("path,label,split\naudio/bark/bark_000.wav,bark,dev\n")
    with pytest.raises(ValueError, match=r"mine\.csv, line 2: split 'dev' is not train, val or test"):
        datasets.build_manifest("m", cfg, "unused")


def test_served_configs_for_workflow_tests(tmp_path):
    from archives import serve_imv, serve_watkins

    watkins = make_watkins_zip(tmp_path / "srv" / "watkins.zip", files_per_species=3)
    imv = make_imv_archives(tmp_path / "srv", twins=(3,), calls_per_recording=4)
    with LocalServer() as server:
        wcfg, icfg = serve_watkins(server, watkins), serve_imv(server, imv, task="caller")
        assert icfg["twins"] == [3]
        for name, cfg in (("watkins", wcfg), ("imv", icfg)):
            datasets.download(name, cfg, tmp_path / "data", lock_file=tmp_path / "lock.json")
            datasets.prepare(name, cfg, tmp_path / "data", tmp_path / name)
    assert len(pd.read_csv(tmp_path / "watkins" / "split.csv")) == 12
    imv_manifest = pd.read_csv(tmp_path / "imv" / "split.csv")
    assert set(imv_manifest["label"]) == {"twin3_marmoset1", "twin3_marmoset2"}
    lock = json.loads((tmp_path / "lock.json").read_text())["files"]
    assert lock["watkins/watkins.zip"]["verified_against"].startswith("archive.org")
    assert lock["imv/InfantMarmosetsVox_twin_3.tar.gz"]["verified_against"] == "zenodo"


def test_exclude_small_counts_used_clips_and_keeps_a_class_at_the_minimum():
    from bioprobe.datasets.labels import exclude_small

    # "a": 3 used clips (= minimum, kept); "b": 3 clips of which one is already excluded -> 2 used
    df = pd.DataFrame({"label": ["a", "a", "a", "b", "b", "b", "c", "c", "c", "c"],
                       "exclude": ["", "", "", "", "", "bad_audio", "", "", "", ""]})
    out, reasons = exclude_small(df, 3)
    assert reasons == {"b": "2 clip(s) < min_clips_per_class=3"}
    assert out["exclude"].tolist() == ["", "", "", "min_clips_per_class", "min_clips_per_class", "bad_audio", "", "", "", ""]


# ---------------------------------------------------------------- mutation pass 2


def test_watkins_groups_by_name_prefix_and_refuses_missing_listed_files(tmp_path):
    root = tmp_path / "data" / "watkins"
    rows = [("Orca/61025001.wav", "Orca"), ("Orca/61029002.wav", "Orca"), ("Beluga/71000003.wav", "Beluga")]
    for rel, _ in rows:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")  # the loader only checks the file is there
    (root / "annotations.csv").write_text("path,species\n" + "".join(f"{r},{s}\n" for r, s in rows))
    cfg = {"type": "watkins"}
    df = datasets.build_manifest("watkins", cfg, tmp_path / "data")
    assert df["group"].tolist() == [r for r, _ in rows]  # default: the file itself
    assert datasets.build_manifest("watkins", {**cfg, "group_prefix_chars": 4}, tmp_path / "data")["group"].tolist() == \
        ["6102", "6102", "7100"]
    assert datasets.build_manifest("watkins", {**cfg, "group_prefix_chars": 5}, tmp_path / "data")["group"].tolist() == \
        ["61025", "61029", "71000"]
    (root / rows[1][0]).unlink()
    with pytest.raises(FileNotFoundError, match=r"annotations\.csv: 1 listed file\(s\) are missing.*line 3: Orca/61029002\.wav"):
        datasets.build_manifest("watkins", cfg, tmp_path / "data")


def test_abzaliev_default_drop_and_alias_rules(tmp_path):
    nfd = unicodedata.normalize("NFD", "Ñeñe_2")
    root = make_abzaliev_tree(tmp_path / "abz", dog_folders=("Luna_2", "Luna", "lasy_2", "Ñeñe", nfd),
                              codes=("L-A", "S"), files_per_code=1)
    # no drop_codes key: S is dropped by default
    df = datasets.build_manifest("abzaliev", {"type": "abzaliev", "path": str(root)}, "unused")
    assert set(df.loc[df["label"] == "S", "exclude"]) == {"drop_codes"} and set(df.loc[df["label"] == "L-A", "exclude"]) == {""}
    dogs = dict(zip(df["dog_folder"], df["dog"]))
    # a decomposed (NFD) folder name is the same dog as the composed one, through the built-in alias ñeñe -> neñe
    assert dogs["Ñeñe"] == dogs[nfd] == unicodedata.normalize("NFC", "neñe")
    assert dogs["lasy_2"] == "lazy" and dogs["Luna_2"] == dogs["Luna"] == "luna"
    # a config alias of a whole folder name, and one overriding a built-in alias
    cfg = {"type": "abzaliev", "path": str(root), "dog_aliases": {"Luna_2": "sol", "lasy": "lassie"}}
    aliased = datasets.build_manifest("abzaliev", cfg, "unused")
    dogs = dict(zip(aliased["dog_folder"], aliased["dog"]))
    assert dogs["Luna_2"] == "sol" and dogs["Luna"] == "luna" and dogs["lasy_2"] == "lassie"


@pytest.mark.parametrize("content, match", [
    ("path,label,start,end\naudio/bark/bark_000.wav,bark,0.2,0.2\n", r"line 2: end \(0\.2\) must be after start \(0\.2\)"),
    ("path,label,start,end\naudio/bark/bark_000.wav,bark,,0.5\naudio/bark/bark_000.wav,bark,0,0.5\n",
     r"the same clip .* listed more than once: lines 2, 3"),
])
def test_folder_empty_segment_and_same_clip_written_two_ways(tmp_path, content, match):
    make_folder_dataset(tmp_path / "root", files_per_label=1)
    csv = tmp_path / "mine.csv"
    csv.write_text(content)
    with pytest.raises(ValueError, match=match):
        datasets.build_manifest("m", folder_cfg(tmp_path / "root", csv), "unused")


def test_label_map_keeps_the_first_exclusion_reason():
    from bioprobe.datasets.labels import apply_label_map

    df = pd.DataFrame({"label": ["S", "S", "1", "L-A"], "exclude": ["drop_codes", "", "", ""]})
    out = apply_label_map(df, {"S": None, 1: "one"})  # YAML reads the label 1 as a number
    assert out["exclude"].tolist() == ["drop_codes", "label_map", "", ""]
    assert out["label"].tolist() == ["S", "S", "one", "L-A"]
