"""The leakage analysis through the whole workflow, on two synthetic sets of calls on "tapes".

Both sets have the same calls, each tape carrying mostly one class (classes and tapes partly
confounded). In the *leaky* set every tape also has its own hum and noise colour; in the *clean*
set tapes sound alike. The log-mel baseline is probed on the study's random split, on a split
grouped by tape, and on decoding the tape itself (bioprobe.leakage).
"""

from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_helpers import snakemake

from bioprobe.demo import make_taped_calls

pytestmark = [pytest.mark.workflow, pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def leakage_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("leakage")
    datasets = {}
    for name, hum in (("leaky", True), ("clean", False)):
        labels = make_taped_calls(tmp / name, hum=hum, seed=0)
        datasets[name] = {"type": "folder", "root": str(labels.parent), "labels": str(labels),
                          "split": {"method": "random", "ratios": [0.5, 0.2, 0.3], "seed": 42}}
    config = {
        "data_dir": "data", "model_cache": "cache", "datasets": datasets,
        "models": {"logmel": {"source": "logmel", "label": "log-mel", "group": "baseline"}},
        "probes": {"mlp": {"type": "mlp", "protocol": "study", "seeds": [42, 43, 44]}},
        "figures": {"formats": ["png"]},
        "leakage": {"probe": "mlp", "by": {"leaky": ["group"], "clean": ["group"]}},
    }
    configfile = tmp / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    workdir = tmp / "work"
    snakemake(workdir, configfile=configfile)
    return workdir / "results"


def rows(results: Path, dataset: str) -> dict:
    frame = pd.read_csv(results / dataset / "leakage" / "logmel" / "mlp" / "scores.csv", keep_default_na=False)
    assert list(frame["split"]) == ["main", "grouped_group", "nuisance_group"]  # logmel: one layer
    return {row["split"]: row for _, row in frame.iterrows()}


def test_on_the_leaky_set_the_grouped_split_loses_and_the_tape_is_decodable(leakage_run):
    r = rows(leakage_run, "leaky")
    main, grouped, tape = r["main"], r["grouped_group"], r["nuisance_group"]
    assert (main["method"], grouped["method"], tape["method"]) == ("random", "grouped", "stratified")
    assert grouped["uar"] < main["uar"] - 0.15, (main["uar"], grouped["uar"])
    assert grouped["ci_high"] < main["ci_low"]  # the loss is beyond the intervals' noise
    assert tape["task"] == "nuisance" and tape["n_classes"] == 16 and tape["chance"] == pytest.approx(1 / 16)
    assert tape["uar"] > 0.8  # each tape's hum gives it away


def test_on_the_clean_set_both_splits_agree_within_noise(leakage_run):
    r = rows(leakage_run, "clean")
    main, grouped = r["main"], r["grouped_group"]
    assert max(main["ci_low"], grouped["ci_low"]) <= min(main["ci_high"], grouped["ci_high"])  # intervals overlap
    assert abs(main["uar"] - grouped["uar"]) < 0.1
    # tapes sound alike: the tape is guessed only through its main class (at best 1 in 4 tapes)
    assert r["nuisance_group"]["uar"] < 0.3 < rows(leakage_run, "leaky")["nuisance_group"]["uar"]


def test_splits_figure_and_summary(leakage_run):
    leaky = leakage_run / "leaky"
    grouped = pd.read_csv(leaky / "splits" / "grouped_group" / "split.csv", keep_default_na=False)
    used = grouped[grouped["split"] != "excluded"]
    assert used.groupby("group")["split"].nunique().max() == 1  # no tape in two splits
    nuisance = pd.read_csv(leaky / "splits" / "nuisance_group" / "split.csv", keep_default_na=False)
    assert (nuisance["label"] == nuisance["group"]).all() and set(nuisance["call_label"]) == set(grouped["label"])
    assert nuisance.groupby("label")["split"].nunique().min() == 3  # every tape in train, val and test
    main = pd.read_csv(leaky / "split.csv", keep_default_na=False)
    assert main["clip_id"].tolist() == grouped["clip_id"].tolist()  # the same clips, one embedding file
    summary = (leaky / "leakage" / "summary.md").read_text()
    assert "By group" in summary and "log-mel, layer 0" in summary and "16 values, chance 0.062" in summary
    assert (leakage_run / "figures" / "leakage_leaky.png").stat().st_size > 10_000
    assert not (leakage_run / "leaky" / "embeddings" / "grouped_group").exists()
