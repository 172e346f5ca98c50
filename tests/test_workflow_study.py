"""The study's dataset types and model sources through the whole workflow, offline.

Watkins and InfantMarmosetsVox are served in their real archive formats (with archive.org's
file listing and Zenodo's record API) from a local HTTP server on 127.0.0.1; Abzaliev is a
folder tree in its real layout; AVES is a tiny model in the torchaudio port's format, fetched by
URL from the same server. Snakemake runs download -> figures on the CPU; the checks are on the
numbers and on what is (not) fetched again.
"""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from archives import LocalServer, make_abzaliev_tree, make_imv_archives, make_watkins_zip, serve_imv, serve_watkins

from bioprobe.tiny import save_tiny_aves_model

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.workflow, pytest.mark.timeout(1500)]


def run_snakemake(workdir: Path, configfile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(configfile), "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1400)
    if proc.returncode != 0:
        logs = "\n".join(f"--- {p}\n{p.read_text()[-2500:]}" for p in sorted((workdir / "logs").rglob("*.log"))[-8:])
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stderr[-5000:]}\n{logs}")
    return proc


@pytest.fixture(scope="module")
def study_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("study")
    workdir = tmp / "work"
    workdir.mkdir()
    with LocalServer() as server:
        watkins = make_watkins_zip(
            tmp / "src" / "watkins.zip",
            species=("Clymene_Dolphin", "Bottlenose_Dolphin", "Beluga,_White_Whale", "Weddell_Seal"),
            files_per_species=(14, 14, 14, 2), seconds=0.5,
        )
        imv = make_imv_archives(tmp / "src" / "imv", twins=(1, 2), calls_per_recording=12, n_calltypes=4)
        make_abzaliev_tree(tmp / "abzaliev", files_per_code=5,
                           dog_folders=("Lazy_150717", "Luna", "lasy_2", "Koster", "Rex", "Bella", "Toby", "Max", "Nala"))
        aves_config, aves_weights = save_tiny_aves_model(tmp / "src" / "aves")
        config = {
            "data_dir": "data",
            "model_cache": "cache",
            "datasets": {
                "watkins": {**serve_watkins(server, watkins), "min_clips_per_class": 3,
                            "split": {"method": "stratified", "seed": 42}},
                "imv": {**serve_imv(server, imv), "split": {"method": "random", "seed": 42}},
                "abzaliev": {"type": "abzaliev", "path": str(tmp / "abzaliev"), "split": {"method": "grouped", "seed": 1}},
            },
            "models": {
                "aves_tiny": {"source": "aves", "label": "AVES (tiny, random)",
                              "config_url": server.add_file("/ported_aves/aves-tiny.model_config.json", aves_config),
                              "weights_url": server.add_file("/ported_aves/aves-tiny.torchaudio.pt", aves_weights)},
                "logmel": {"source": "logmel", "label": "log-mel statistics", "group": "baseline"},
            },
            "embed": {"batch_size": 4},
            "probes": {"mlp": {"type": "mlp", "seeds": [42], "epochs": 15, "n_boot": 200}},
            "fusion": {"concat_best": {"method": "concat_best", "probe": "mlp"},
                       "late": {"method": "late_average", "probe": "mlp"}},
            "figures": {"formats": ["png"]},
            "leakage": {"probe": "mlp"},  # each type's default identifier columns (watkins: none)
        }
        configfile = tmp / "study.yaml"
        configfile.write_text(yaml.safe_dump(config, sort_keys=False))
        run_snakemake(workdir, configfile)
        first_requests = len(server.requests)
        # A second run finds everything up to date. Lost download markers are restored by the
        # download rule from the verified data, without fetching anything; the restored markers
        # are identical, so nothing downstream is stale afterwards.
        second = run_snakemake(workdir, configfile, "-n")
        markers = [f"data/{dataset}/.complete.json" for dataset in ("watkins", "imv")]
        for marker in markers:
            (workdir / marker).unlink()
        rerun = run_snakemake(workdir, configfile, *markers)
        third = run_snakemake(workdir, configfile, "-n")
        requests_after_rerun = len(server.requests) - first_requests
    return {"workdir": workdir, "config": config, "watkins": watkins, "imv": imv, "second_dry_run": second,
            "aves_config": json.loads(Path(aves_config).read_text()),
            "requests_after_rerun": requests_after_rerun, "rerun": rerun,
            "third_dry_run": third}


def test_downloads_verified_once(study_run):
    data = study_run["workdir"] / "data"
    for dataset in ("watkins", "imv"):
        marker = json.loads((data / dataset / ".complete.json").read_text())
        assert marker, dataset
    assert study_run["requests_after_rerun"] == 0
    assert "Nothing to be done" in study_run["second_dry_run"].stdout + study_run["second_dry_run"].stderr
    rerun_log = study_run["rerun"].stdout + study_run["rerun"].stderr
    assert rerun_log.count("rule download:") == 2
    assert "Nothing to be done" in study_run["third_dry_run"].stdout + study_run["third_dry_run"].stderr


def test_clip_lists_and_splits_follow_each_dataset_rules(study_run):
    results = study_run["workdir"] / "results"

    def tables(dataset):
        clips = pd.read_csv(results / dataset / "clips.csv")
        split = pd.read_csv(results / dataset / "split.csv", keep_default_na=False)
        assert list(clips.columns) == ["clip_id", "path", "start", "end"]
        assert split["clip_id"].tolist() == clips["clip_id"].tolist()
        return clips, split

    clips, watkins = tables("watkins")
    assert len(clips) == 44  # every file is a clip; Weddell_Seal's 2 files < min_clips_per_class 3 are excluded
    weddell = watkins["label"] == "Weddell_Seal"
    assert weddell.sum() == 2 and (watkins.loc[weddell, "split"] == "excluded").all()
    used = watkins[watkins["split"] != "excluded"]
    assert len(used) == 42 and (used.groupby("split")["label"].nunique() == 3).all()
    clips, imv = tables("imv")
    assert len(clips) == 8 * 12  # 8 recordings x 12 calls; Silence and Noise dropped
    assert clips["start"].notna().all() and (clips["end"] > clips["start"]).all()
    assert set(imv["split"]) == {"train", "val", "test"}
    _, abz = tables("abzaliev")
    assert set(abz.loc[abz["label"] == "S", "split"]) == {"excluded"}
    assert set(abz.loc[abz["split"] != "excluded", "label"]) == {c for c in set(abz["label"]) if c != "S"}
    dogs_per_split = abz[abz["split"] != "excluded"].groupby("group")["split"].nunique()
    assert (dogs_per_split == 1).all()  # grouped: no dog in two splits
    leakage = json.loads((results / "abzaliev" / "leakage.json").read_text())
    assert leakage["excluded"] == {"drop_codes": int((abz["label"] == "S").sum())}


def test_every_dataset_is_learned_by_the_baseline(study_run):
    best = pd.read_csv(study_run["workdir"] / "results" / "tables" / "best_layer.csv")
    assert set(best["dataset"]) == {"watkins", "imv", "abzaliev"}
    assert set(best["model"]) == {"aves_tiny", "logmel", "concat_best", "late"}
    chance = {"watkins": 1 / 3, "imv": 1 / 4, "abzaliev": 1 / 3}
    logmel = best[best["model"] == "logmel"]
    assert len(logmel) == 3
    for row in logmel.itertuples():
        assert row.test_uar > chance[row.dataset] + 0.3, (row.dataset, row.test_uar)


def test_aves_gives_thirteen_style_layers_and_figures_exist(study_run):
    import h5py

    results = study_run["workdir"] / "results"
    with h5py.File(results / "imv" / "embeddings" / "aves_tiny.h5") as h5:
        n, layers, dim = h5["features"].shape
        # layer 0, then one per transformer layer: the count the model's own config gives
        assert layers == study_run["aves_config"]["encoder_num_layers"] + 1 == 3
        assert n == 96
    for dataset in ("watkins", "imv", "abzaliev"):
        assert (results / "figures" / f"layerwise_{dataset}.png").stat().st_size > 10_000
        assert (results / dataset / "comparisons.csv").is_file()


def test_leakage_by_each_type_default_columns(study_run):
    results = study_run["workdir"] / "results"
    expected = {"imv": ["grouped_recording", "nuisance_recording", "grouped_individual", "nuisance_individual"],
                "abzaliev": ["grouped_dog", "nuisance_dog"]}
    for dataset, splits in expected.items():
        for model in ("aves_tiny", "logmel"):
            table = pd.read_csv(results / dataset / "leakage" / model / "mlp" / "scores.csv", keep_default_na=False)
            assert list(dict.fromkeys(table["split"])) == ["main", *splits]
            assert table.loc[table["split"] == "main", "method"].iloc[0] == study_run["config"]["datasets"][dataset]["split"]["method"]
        for split in splits:
            frame = pd.read_csv(results / dataset / "splits" / split / "split.csv", keep_default_na=False)
            column = split.split("_", 1)[1]
            used = frame[frame["split"] != "excluded"]
            if split.startswith("grouped"):
                assert used.groupby(column)["split"].nunique().max() == 1, split
            else:
                assert (used["label"] == used[column]).all(), split
        assert (results / "figures" / f"leakage_{dataset}.png").is_file()
    assert not (results / "watkins" / "leakage").exists()  # each Watkins file is its own group: skipped
