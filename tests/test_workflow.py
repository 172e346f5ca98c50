"""Whole-workflow tests: Snakemake on the offline demo config, end to end on the CPU.

The demo makes synthetic calls (4 learnable classes) and tiny random Hugging Face models, then
runs every stage. These tests check the numbers that come out, and that only stale stages are
recomputed after a change.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import h5py
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO / "resources" / "configs" / "demo.yaml"
MODELS = ["tiny_hubert", "tiny_wav2vec2", "tiny_wavlm"]

pytestmark = [pytest.mark.workflow, pytest.mark.timeout(1500)]


def snakemake(workdir: Path, *args: str, configfile: Path = DEMO_CONFIG, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir),
        "--configfile", str(configfile),
        "--cores", "2",
        *args,
    ]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1400)
    if check and proc.returncode != 0:
        logs = "\n".join(f"--- {p}\n{p.read_text()[-3000:]}" for p in sorted((workdir / "logs").rglob("*.log"))[-6:]) if (workdir / "logs").exists() else ""
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stderr[-6000:]}\n{logs}")
    return proc


def planned_jobs(workdir: Path, configfile: Path = DEMO_CONFIG) -> dict[str, int]:
    """Job counts per rule of a dry run (empty when nothing is to be done)."""
    out = snakemake(workdir, "-n", configfile=configfile)
    text = out.stdout + out.stderr
    counts = {}
    in_table = False
    for line in text.splitlines():
        if re.match(r"^job\s+count", line):
            in_table = True
            continue
        if in_table:
            m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
            if m and m.group(1) != "total":
                counts[m.group(1)] = int(m.group(2))
            elif line.strip().startswith("total"):
                break
    return counts


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("demo")
    snakemake(workdir)
    return workdir


def test_every_expected_output_exists(demo_run):
    results = demo_run / "results"
    expected = [
        "synthetic/clips.csv",
        "synthetic/split.csv",
        "synthetic/leakage.json",
        "synthetic/audio16k.h5",
        "synthetic/comparisons.csv",
        "synthetic/fusion/concat_best/scores.csv",
        "figures/layerwise_synthetic.png",
        "tables/best_layer.csv",
        "tables/best_layer.md",
        "tables/all_scores.csv",
    ]
    expected += [f"synthetic/embeddings/{m}.h5" for m in MODELS]
    expected += [f"synthetic/probes/{m}/mlp/{f}" for m in MODELS for f in ("scores.csv", "predictions.h5")]
    missing = [p for p in expected if not (results / p).is_file()]
    assert not missing, missing
    assert (results / "figures/layerwise_synthetic.png").read_bytes()[:4] == b"\x89PNG"


def test_clips_split_audio_and_embeddings_agree(demo_run):
    results = demo_run / "results" / "synthetic"
    clips = pd.read_csv(results / "clips.csv")
    assert list(clips.columns) == ["clip_id", "path", "start", "end"]
    manifest = pd.read_csv(results / "split.csv")
    assert manifest["clip_id"].tolist() == clips["clip_id"].tolist()
    assert len(manifest) == 120 and set(manifest["split"]) == {"train", "val", "test"}
    # stratified 70/20/10: every class in every split
    assert (manifest.groupby("split")["label"].nunique() == 4).all()
    with h5py.File(results / "audio16k.h5") as h5:
        assert h5.attrs["sample_rate"] == 16000 and h5.attrs["resampler"] == "soxr_hq"
        ids = [c.decode() for c in h5["clip_id"][:]]
        assert sorted(ids) == sorted(manifest["clip_id"].astype(str))
    for model in MODELS:
        with h5py.File(results / "embeddings" / f"{model}.h5") as h5:
            n, layers, dim = h5["features"].shape
            assert n == 120 and layers >= 2 and dim % 2 == 0
            assert [c.decode() for c in h5["clip_id"][:]] == ids


def test_synthetic_task_scores_well_above_chance(demo_run):
    best = pd.read_csv(demo_run / "results" / "tables" / "best_layer.csv")
    probes = best[best["model"].isin(MODELS)]
    assert set(probes["model"]) == set(MODELS)
    # 4 balanced classes: chance UAR is 0.25.
    assert (probes["test_uar"] > 0.6).all(), probes[["model", "best_layer", "test_uar"]]
    fused = best[best["model"] == "concat_best"]
    assert len(fused) == 1 and fused["test_uar"].iloc[0] > 0.6
    scores = pd.read_csv(demo_run / "results" / "tables" / "all_scores.csv")
    assert set(scores["seed"]) == {42, 43}
    assert {"ci_low", "ci_high"} <= set(scores.columns)


def test_second_dry_run_schedules_nothing(demo_run):
    assert planned_jobs(demo_run) == {}


def changed_config(tmp_path, change) -> Path:
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    change(config)
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=True))  # key order must not matter
    return path


def test_model_change_reschedules_only_that_model(demo_run, tmp_path):
    config = changed_config(tmp_path, lambda c: c["models"]["tiny_wavlm"].update(revision="another"))
    jobs = planned_jobs(demo_run, config)
    assert jobs.get("embed") == 1 and jobs.get("probe") == 1 and jobs.get("fetch_weights") == 1
    assert not {"resample", "clips", "split"} & set(jobs), jobs
    assert jobs.get("fuse") == 1 and jobs.get("tables") == 1


def test_label_change_redraws_without_recomputing(demo_run, tmp_path):
    config = changed_config(tmp_path, lambda c: c["models"]["tiny_wavlm"].update(label="renamed"))
    jobs = planned_jobs(demo_run, config)
    assert not {"embed", "probe", "fetch_weights", "resample"} & set(jobs), jobs


def test_batch_size_change_recomputes_nothing(demo_run, tmp_path):
    # batches only hold clips of equal length: the batch size cannot change the embeddings
    config = changed_config(tmp_path, lambda c: c["embed"].update(batch_size=2, device="cpu"))
    assert planned_jobs(demo_run, config) == {}


def test_probe_change_does_not_reembed(demo_run, tmp_path):
    config = changed_config(tmp_path, lambda c: c["probes"]["mlp"].update(seeds=[42]))
    jobs = planned_jobs(demo_run, config)
    assert jobs.get("probe") == len(MODELS)
    assert not {"embed", "resample", "clips", "split", "fetch_weights"} & set(jobs), jobs


def test_extensions_label_efficiency_and_cheapest_layer(demo_run):
    results = demo_run / "results"
    demo = yaml.safe_load(DEMO_CONFIG.read_text())
    le = demo["label_efficiency"]
    for name in MODELS + ["concat_best"]:
        table = pd.read_csv(results / f"synthetic/label_efficiency/{name}/mlp.csv", dtype={"k": str})
        layers = sorted(set(table["layer"]))
        assert len(table) == len(le["k"]) * le["draws"] * len(layers)
        assert sorted(set(table["k"])) == sorted(map(str, le["k"]))
        assert table["n_test"].nunique() == 1  # the test split is fixed
        assert (table.loc[table["k"] == "1", "n_train"] == 4).all()  # 1 clip x 4 classes
        best_all = table[table["k"] == "all"].groupby("layer")["uar"].mean().max()
        assert best_all > 0.6, table  # synthetic classes are learnable with all labels
    assert (results / "figures/label_efficiency_synthetic.png").read_bytes()[:4] == b"\x89PNG"
    cheapest = pd.read_csv(results / "synthetic/cheapest_layer.csv")
    assert list(cheapest["model"]) == MODELS
    assert (cheapest["cheapest_layer"] <= cheapest["best_layer"]).all()
    assert ((cheapest["compute_fraction"] > 0) & (cheapest["compute_fraction"] <= 1)).all()
    table = pd.read_csv(results / "tables/cheapest_layer.csv")
    assert len(table) == len(MODELS) and (results / "tables/cheapest_layer.md").is_file()


def test_extension_change_reruns_only_the_extension(demo_run, tmp_path):
    config = changed_config(tmp_path, lambda c: c["cheapest_layer"].update(delta=0.02))
    assert planned_jobs(demo_run, config) == {"cheapest_layer": 1, "cheapest_table": 1, "all": 1}
