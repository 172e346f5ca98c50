"""The leakage analysis' library: named splits, retargeted split files, the table, the summary, the figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bioprobe.config import ConfigError, validate_config
from bioprobe.datasets import named_split_settings, split_settings
from bioprobe.datasets.labels import build_split
from bioprobe.figures.leakage import make_leakage, read_leakage_tables
from bioprobe.leakage import (
    LeakageConfigError,
    leakage_columns,
    leakage_splits,
    leakage_summary,
    leakage_table,
    named_splits,
    split_gaps,
)

IMV = {"type": "imv", "split": {"method": "random", "ratios": [0.7, 0.2, 0.1], "seed": 42}}
ON = {"probe": "mlp"}


def test_default_columns_by_type_and_the_skipped_datasets_say_why():
    assert leakage_columns("imv", IMV, ON) == (["recording", "individual"], None)
    assert leakage_columns("imv", {**IMV, "task": "caller"}, ON)[0] == ["recording"]  # the caller is the target
    assert leakage_columns("abz", {"type": "abzaliev"}, ON) == (["dog"], None)
    columns, note = leakage_columns("watkins", {"type": "watkins"}, ON)
    assert columns == [] and "each file is its own group" in note and "group_prefix_chars" in note
    assert leakage_columns("watkins", {"type": "watkins", "group_prefix_chars": 4}, ON) == (["group"], None)
    columns, note = leakage_columns("mine", {"type": "folder"}, ON)
    assert columns == [] and "leakage.by.mine" in note
    assert leakage_columns("mine", {"type": "folder"}, {"by": {"mine": ["site"]}}) == (["site"], None)
    assert leakage_columns("imv", IMV, None) == ([], None)  # off: nothing, no note


def test_named_splits_inherit_the_main_split_and_names_are_checked():
    specs = named_splits("imv", {**IMV, "splits": {"by_twin": {"method": "grouped", "group_by": "individual"}}}, ON)
    assert list(specs) == ["by_twin", "grouped_recording", "nuisance_recording", "grouped_individual", "nuisance_individual"]
    assert leakage_splits(specs) == list(specs)[1:]
    assert specs["by_twin"] == {"ratios": [0.7, 0.2, 0.1], "seed": 42, "drop_small_classes": False, "group_by": "individual",
                                "target": "label", "method": "grouped", "purpose": "user", "column": "individual"}
    assert specs["grouped_individual"]["group_by"] == "individual" and specs["grouped_individual"]["target"] == "label"
    assert specs["grouped_individual"]["drop_small_classes"]  # a class seen in < 3 animals cannot be in every split
    assert specs["nuisance_individual"] == {"ratios": [0.7, 0.2, 0.1], "seed": 42, "drop_small_classes": True, "group_by": "group",
                                            "target": "individual", "method": "stratified", "purpose": "nuisance",
                                            "column": "individual"}
    assert named_splits("d", {"type": "folder", "splits": {"g": {"method": "grouped"}}})["g"]["column"] == "group"
    with pytest.raises(LeakageConfigError, match="taken by the leakage analysis"):
        named_splits("imv", {**IMV, "splits": {"grouped_recording": {"method": "random"}}}, ON)
    with pytest.raises(LeakageConfigError, match="'main' is not a usable split name"):
        named_splits("imv", {**IMV, "splits": {"main": {"method": "random"}}}, ON)
    with pytest.raises(LeakageConfigError, match="no method"):
        named_splits("imv", {**IMV, "splits": {"x": {"seed": 1}}}, ON)


def test_a_named_split_tracks_its_own_spec_not_the_main_split():
    spec = named_splits("imv", IMV, ON)["grouped_recording"]
    other_seed = {**IMV, "split": {**IMV["split"], "seed": 7}}
    assert named_split_settings(IMV, spec) == named_split_settings(other_seed, spec)  # spec carries the seed it uses
    assert split_settings(IMV) != split_settings(other_seed)
    assert named_split_settings(IMV, spec)["named_split"]["group_by"] == "recording"


def taped_table(n_tapes=6, per_tape=6, n_classes=3):
    rows = []
    for tape in range(n_tapes):
        for j in range(per_tape):
            rows.append({"clip_id": f"c{tape}_{j}", "path": f"t{tape}_{j}.wav", "start": np.nan, "end": np.nan,
                         "label": f"k{(tape + (j == 0)) % n_classes}", "group": f"tape{tape}", "exclude": ""})
    return pd.DataFrame(rows)


def test_a_nuisance_split_predicts_the_group_on_the_same_clips():
    df = taped_table()
    df.loc[0, "exclude"] = "bad_audio"                       # excluded stays excluded
    df = pd.concat([df, pd.DataFrame([{"clip_id": "lonely", "path": "l.wav", "start": np.nan, "end": np.nan,
                                       "label": "k0", "group": "tape_small", "exclude": ""}])], ignore_index=True)
    dcfg = {"type": "folder", "split": {"method": "random", "seed": 1}}
    spec = named_splits("d", dcfg, {"by": {"d": ["group"]}})["nuisance_group"]
    table, report = build_split("d", dcfg, df, spec)
    assert list(table.columns) == ["clip_id", "label", "call_label", "group", "split", "exclude"]
    used = table[table["split"] != "excluded"]
    assert (used["label"] == used["group"]).all() and set(used["label"]) == {f"tape{i}" for i in range(6)}
    assert used.groupby("label")["split"].nunique().eq(3).all()   # stratified by tape
    assert table.set_index("clip_id").loc["c0_0", "exclude"] == "bad_audio"
    assert table.set_index("clip_id").loc["lonely", "exclude"] == "drop_small_classes"  # one clip: cannot be in 3 splits
    assert report["dropped_classes"] == {"tape_small": "1 clip(s), needs at least 3"}
    assert "call_label" not in report["ids"]  # the label is not an identifier


def test_a_grouped_split_keeps_each_group_in_one_split_and_a_missing_column_is_named():
    df = taped_table(n_tapes=9)
    dcfg = {"type": "folder", "split": {"method": "random", "seed": 1, "ratios": [0.4, 0.3, 0.3]}}
    table, _ = build_split("d", dcfg, df, named_splits("d", dcfg, {"by": {"d": ["group"]}})["grouped_group"])
    assert table.groupby("group")["split"].nunique().max() == 1
    with pytest.raises(ValueError, match="dataset 'd': split target 'dog' is not a column of its clips"):
        build_split("d", dcfg, df, named_splits("d", dcfg, {"by": {"d": ["dog"]}})["nuisance_dog"])


def summary(uars, ci=0.05):
    rows = [{"layer": layer, "split": split, "uar_mean": u, "uar_std": 0.01, "ci_low": u - ci, "ci_high": u + ci}
            for layer, u in enumerate(uars) for split in ("val", "test")]
    return pd.DataFrame(rows)


def split_frame(n_classes, n_test):
    labels = [f"c{i % n_classes}" for i in range(3 * n_classes + n_test)]
    splits = ["train"] * 3 * n_classes + ["test"] * n_test
    return pd.DataFrame({"clip_id": range(len(labels)), "label": labels, "split": splits})


def leaky_frame(model="m", main=(0.9, 0.8, 0.7), grouped=(0.6, 0.7, 0.68), nuisance=(0.2, 0.9, 0.5)):
    specs = named_splits("d", {"type": "folder", "split": {"method": "random"}}, {"by": {"d": ["recording"]}})
    named = {"grouped_recording": (summary(grouped), split_frame(4, 20), "g.csv"),
             "nuisance_recording": (summary(nuisance), split_frame(10, 30), "n.csv")}
    return leakage_table({"dataset": "d", "model": model, "probe": "mlp"}, (summary(main), split_frame(4, 12), "m.csv"),
                         named, specs, "random")


def test_the_table_joins_the_test_uar_of_each_split_per_layer():
    frame = leaky_frame()
    assert len(frame) == 9 and list(frame["split"].unique()) == ["main", "grouped_recording", "nuisance_recording"]
    nuisance = frame[frame["task"] == "nuisance"]
    assert nuisance["uar"].tolist() == [0.2, 0.9, 0.5] and (nuisance["n_classes"] == 10).all()
    assert nuisance["chance"].iloc[0] == pytest.approx(0.1) and (nuisance["n_test"] == 30).all()
    assert frame.loc[frame["split"] == "main", "n_test"].eq(12).all()
    gaps = split_gaps(frame)
    assert gaps["gap"].round(3).tolist() == [0.3, 0.1, 0.02]
    with pytest.raises(ValueError, match="m.csv: no test rows"):
        leakage_table({"dataset": "d", "model": "m", "probe": "mlp"},
                      (summary([0.5]).query("split == 'val'"), split_frame(2, 2), "m.csv"), {}, {}, "random")


def test_the_summary_names_the_largest_loss_and_the_best_decoding_layers():
    frame = pd.concat([leaky_frame("a"), leaky_frame("b", main=(0.5, 0.5, 0.5), grouped=(0.5, 0.5, 0.45), nuisance=(0.1, 0.2, 0.95))])
    text = leakage_summary(frame, "d", {"a": "Model A"}, top=2)
    lines = text.splitlines()
    assert lines[0] == "## Leakage on d" and "### By recording" in lines
    loss = lines.index("Largest loss from the random split to the split grouped by recording (test UAR):")
    assert lines[loss + 1] == "- Model A, layer 0: 0.900 -> 0.600 (-0.300)"
    assert lines[loss + 2] == "- Model A, layer 1: 0.800 -> 0.700 (-0.100)"
    decoding = lines.index("Highest decoding of the recording itself (10 values, chance 0.100):")
    assert lines[decoding + 1:decoding + 3] == ["- b, layer 2: UAR 0.950", "- Model A, layer 1: UAR 0.900"]


def test_figure_and_summary_files(tmp_path):
    paths = []
    for model in ("a", "b"):
        path = tmp_path / f"{model}.csv"
        leaky_frame(model).to_csv(path, index=False)
        paths.append(str(path))
    assert read_leakage_tables(paths)["group_column"].tolist()[2:4] == ["", "recording"]  # main: no column
    models = {"a": {"label": "A", "group": "PT"}, "b": {"label": "B", "group": "baseline"}}
    out = [str(tmp_path / "fig.png"), str(tmp_path / "fig.pdf")]
    text = make_leakage(paths, "d", models, out, str(tmp_path / "summary.md"), dpi=50)
    assert (tmp_path / "fig.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "fig.pdf").read_bytes()[:4] == b"%PDF"
    assert (tmp_path / "summary.md").read_text() == text and "- A, layer 0: 0.900 -> 0.600 (-0.300)" in text


def test_config_checks_of_the_leakage_section():
    base = {"datasets": {"calls": {"type": "folder", "root": "r", "labels": "r/l.csv"}},
            "models": {"m": {"source": "logmel"}}, "probes": {"mlp": {"type": "mlp"}}}
    assert validate_config({**base, "leakage": {"by": {"calls": ["group"]}}})["leakage"]["probe"] == "mlp"
    with pytest.raises(ConfigError, match="'leakage.by': 'other' is not a dataset"):
        validate_config({**base, "leakage": {"by": {"other": ["group"]}}})
    with pytest.raises(ConfigError, match="'leakage.models': 'x' is not an enabled model"):
        validate_config({**base, "leakage": {"models": ["x"]}})
    with pytest.raises(ConfigError, match="leakage.probe"):
        validate_config({**base, "leakage": {"probe": "nope"}})
    with pytest.raises(ConfigError, match="splits"):
        validate_config({**base, "datasets": {"calls": {**base["datasets"]["calls"], "splits": {"main": {"method": "random"}}}}})
    with pytest.raises(ConfigError, match="label"):
        validate_config({**base, "leakage": {"by": {"calls": ["label"]}}})


def test_excluded_clips_count_in_neither_classes_nor_test_size_and_splits_take_the_main_seed():
    grouped = split_frame(4, 20)
    dropped = pd.DataFrame({"clip_id": [900, 901, 902], "label": ["rare", "rare", "c0"], "split": "excluded"})
    specs = named_splits("d", {"type": "folder", "split": {"method": "random", "seed": 7}}, {"by": {"d": ["recording"]}})
    assert specs["grouped_recording"]["seed"] == 7 and specs["nuisance_recording"]["seed"] == 7
    frame = leakage_table({"dataset": "d", "model": "m", "probe": "mlp"}, (summary([0.9]), split_frame(4, 12), "m.csv"),
                          {"grouped_recording": (summary([0.6]), pd.concat([grouped, dropped]), "g.csv")}, specs, "random")
    row = frame[frame["split"] == "grouped_recording"].iloc[0]
    assert row["n_classes"] == 4 and row["chance"] == pytest.approx(0.25) and row["n_test"] == 20


def test_leakage_figure_has_one_panel_column_per_model_family_in_config_order(tmp_path):
    import re

    from bioprobe.figures.leakage import plot_leakage

    frame = pd.concat([leaky_frame(m) for m in ("x", "b", "c", "a")], ignore_index=True)
    models = {"a": {"group": "PT", "label": "A"}, "c": {"label": "C"}, "b": {"group": "PT", "label": "B"},
              "unused": {"group": "FT"}}
    plot_leakage(frame, "d", models, [tmp_path / "f.svg"], dpi=50)
    texts = [re.sub(r"<[^>]+>", "", t).strip() for t in re.findall(r"<text[^>]*>(.*?)</text>", (tmp_path / "f.svg").read_text(), re.S)]
    # panel titles: family PT (a and b), then c and x, which have no group; no panel for an unused family
    titles = [t for t in texts if t in {"PT", "c", "x", "a", "b", "FT"}]
    assert titles[:3] == ["PT", "c", "x"] and "FT" not in titles  # then x again: its legend entry (no label)
