"""Whole-workflow tests: Snakemake on the offline demo config, end to end on the CPU.

The demo makes synthetic calls (4 learnable classes) and tiny random Hugging Face models, then
runs every stage. These tests check the numbers that come out, and that only stale stages are
recomputed after a change. The demo run itself is the session fixture ``demo_run``
(tests/conftest.py), shared with tests/test_slurm.py.
"""

import re
from pathlib import Path

import h5py
import pandas as pd
import pytest
import yaml
from workflow_helpers import DEMO_CONFIG, snakemake

REPO = Path(__file__).resolve().parents[1]
TINY = ["tiny_hubert", "tiny_wav2vec2", "tiny_wavlm"]  # tiny random Hugging Face models
MODELS = ["logmel", "tiny_hubert", "tiny_wav2vec2", "tiny_wav2vec2_ft", "tiny_wavlm"]
FIGURES = [
    "layerwise_synthetic", "study_fig1_layerwise", "study_fig2_fine_tuning", "published_vs_reproduced",
    "study_fig4_confusion_synthetic_concat_best", *[f"per_class/synthetic/{m}" for m in MODELS],
]
TABLES = ["best_layer.csv", "best_layer.md", "all_scores.csv", *[f"study_fig3_comparison.{e}" for e in ("csv", "md", "tex")]]
FIGURE_RULES = {"layerwise_figure", "study_fig1", "study_fig2", "study_fig4_confusion", "published_figure", "per_class_figure"}

pytestmark = [pytest.mark.workflow, pytest.mark.timeout(1500)]


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


def test_every_expected_output_exists(demo_run):
    results = demo_run / "results"
    expected = [
        "synthetic/clips.csv",
        "synthetic/split.csv",
        "synthetic/leakage.json",
        "synthetic/audio16k.h5",
        "synthetic/comparisons.csv",
        "synthetic/fusion/concat_best/scores.csv",
    ]
    expected += [f"figures/{f}.png" for f in FIGURES] + [f"tables/{t}" for t in TABLES]
    expected += [f"synthetic/embeddings/{m}.h5" for m in MODELS]
    expected += [f"synthetic/probes/{m}/mlp/{f}" for m in MODELS for f in ("scores.csv", "predictions.h5")]
    missing = [p for p in expected if not (results / p).is_file()]
    assert not missing, missing
    for figure in FIGURES:
        assert (results / f"figures/{figure}.png").read_bytes()[:4] == b"\x89PNG", figure
    # the comparison table: the demo's invented published numbers, matched by key and published_as
    table = pd.read_csv(results / "tables" / "study_fig3_comparison.csv").set_index("model")
    assert table.loc["tiny_hubert", "published_uar"] == 80.0 and table.loc["tiny_wavlm", "published_uar"] == 85.0
    assert table.loc["concat_best", "published_uar"] == 90.0 and pd.isna(table.loc["logmel", "published_uar"])
    assert (table["rank"] == 1).sum() >= 1 and "\\toprule" in (results / "tables" / "study_fig3_comparison.tex").read_text()


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
    for model in TINY:
        with h5py.File(results / "embeddings" / f"{model}.h5") as h5:
            n, layers, dim = h5["features"].shape
            assert n == 120 and layers >= 2 and dim % 2 == 0
            assert [c.decode() for c in h5["clip_id"][:]] == ids


def test_synthetic_task_scores_well_above_chance(demo_run):
    best = pd.read_csv(demo_run / "results" / "tables" / "best_layer.csv")
    probes = best[best["model"].isin(TINY)]
    assert set(best["model"]) == {*MODELS, "concat_best"}
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


def test_figure_setting_change_redraws_only_figures(demo_run, tmp_path):
    # a new format, another probe for figures' sake, a label: figures and tables, never a probe or fusion
    def change(c):
        c["figures"]["formats"] = ["png", "svg"]
        c["figures"]["dpi"] = 200
        c["models"]["tiny_hubert"]["label"] = "renamed"
    jobs = planned_jobs(demo_run, changed_config(tmp_path, change))
    # (and the extensions' figure and table, docs/extensions.md)
    assert set(jobs) - {"all", "tables", "compare", "label_efficiency_figure", "cheapest_table", "leakage_figure"} == FIGURE_RULES, jobs
    assert jobs["per_class_figure"] == 1  # one job draws every model's heatmap of a dataset


def test_report_holds_every_figure_and_table(demo_run, tmp_path):
    report = tmp_path / "report.html"
    snakemake(demo_run, "--report", str(report))
    html = report.read_text()
    for name in [*FIGURES, *TABLES]:
        if name not in ("best_layer.md", "all_scores.csv"):
            assert name.rsplit("/", 1)[-1] + (".png" if "." not in name else "") in html, name
    assert "Study figure 1: layer-wise test UAR [%] of\\ntiny HuBERT (random), tiny WavLM (random)" in html
    assert "leakage_synthetic.png" in html and "Leakage on dataset synthetic" in html


def test_embed_protocol_settings_and_results_dir(demo_run, tmp_path):
    # the keys added for the authors' protocol, at the values that give the former embeddings
    # or at their defaults, re-run nothing
    config = changed_config(tmp_path, lambda c: c["embed"].update(batching="equal_length", std_ddof=1))
    assert planned_jobs(demo_run, config) == {}
    # the population std changes every embedding, and nothing upstream
    jobs = planned_jobs(demo_run, changed_config(tmp_path, lambda c: c["embed"].update(std_ddof=0)))
    assert jobs.get("embed") == len(MODELS) and not {"resample", "clips", "split", "fetch_weights"} & set(jobs), jobs
    # one model's embed: override re-embeds that model only, and fetches nothing
    jobs = planned_jobs(demo_run, changed_config(tmp_path, lambda c: c["models"]["tiny_hubert"].update(embed={"chunk_seconds": 1.0})))
    assert jobs.get("embed") == 1 and jobs.get("probe") == 1 and not {"resample", "fetch_weights"} & set(jobs), jobs

    # another results_dir with the authors' batches: everything from prepare on is its own,
    # the demo's calls, models and weight locks are shared
    def exact(c):
        c["results_dir"] = "results/exact"
        c["embed"].update(batching="study_repeat_pad", batch_size=1)
        c["datasets"]["synthetic"]["embed"] = {"batch_size": 32}

    jobs = planned_jobs(demo_run, changed_config(tmp_path, exact))
    assert jobs.get("embed") == len(MODELS) and jobs.get("resample") == 1 and jobs.get("clips") == jobs.get("split") == 1, jobs
    assert not {"demo_calls", "demo_model", "fetch_weights"} & set(jobs), jobs


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
    cheapest = pd.read_csv(results / "synthetic/cheapest_layer.csv").set_index("model")
    assert list(cheapest.index) == MODELS
    assert (cheapest["cheapest_layer"] <= cheapest["best_layer"]).all()
    transformers = cheapest.drop(index="logmel")["compute_fraction"]
    assert ((transformers > 0) & (transformers <= 1)).all() and pd.isna(cheapest.loc["logmel", "compute_fraction"])
    table = pd.read_csv(results / "tables/cheapest_layer.csv")
    assert len(table) == len(MODELS) and (results / "tables/cheapest_layer.md").is_file()


def test_leakage_outputs_of_the_demo(demo_run):
    results = demo_run / "results" / "synthetic"
    n_layers = {"logmel": 1, "tiny_hubert": 3, "tiny_wav2vec2": 3, "tiny_wav2vec2_ft": 3, "tiny_wavlm": 3}
    for model in MODELS:
        table = pd.read_csv(results / f"leakage/{model}/mlp/scores.csv", keep_default_na=False)
        assert sorted(set(table["split"])) == ["grouped_group", "main", "nuisance_group"]
        assert len(table) == 3 * n_layers[model]
        main = table[table["split"] == "main"].set_index("layer")
        probe = pd.read_csv(results / f"probes/{model}/mlp/summary.csv").query("split == 'test'").set_index("layer")
        assert main["uar"].to_numpy() == pytest.approx(probe["uar_mean"].to_numpy())  # the study's probes, unchanged
        nuisance = table[table["task"] == "nuisance"]
        assert (nuisance["n_classes"] == 6).all() and (nuisance["target"] == "group").all()
        # the demo's "animal" is drawn at random for each call: nothing to decode beyond chance (1/6)
        assert nuisance["uar"].mean() < 0.4, nuisance
    summary = (results / "leakage/summary.md").read_text()
    assert summary.startswith("## Leakage on synthetic") and "Highest decoding of the group itself (6 values" in summary
    assert (demo_run / "results/figures/leakage_synthetic.png").read_bytes()[:4] == b"\x89PNG"


def test_extension_change_reruns_only_the_extension(demo_run, tmp_path):
    config = changed_config(tmp_path, lambda c: c["cheapest_layer"].update(delta=0.02))
    assert planned_jobs(demo_run, config) == {"cheapest_layer": 1, "cheapest_table": 1, "all": 1}
