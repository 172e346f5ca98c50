"""Split rules (random as the authors', stratified, grouped) and the leakage report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import random_split

from bioprobe import splits
from bioprobe.splits import SplitError, assign_splits, leakage_report


def manifest(n_per_class=(40, 30, 20, 10), groups_per_class=8, seed=0) -> pd.DataFrame:
    """A synthetic manifest: classes of given sizes, groups (individuals) shared across classes."""
    rng = np.random.default_rng(seed)
    rows = []
    for c, n in enumerate(n_per_class):
        for i in range(n):
            rows.append({"clip_id": f"c{c}-{i}", "path": f"{c}/{i}.wav", "start": np.nan, "end": np.nan,
                         "label": f"class{c}", "group": f"ind{rng.integers(groups_per_class)}",
                         "recording": f"rec{i % 5}"})
    order = rng.permutation(len(rows))
    return pd.DataFrame([rows[i] for i in order]).reset_index(drop=True)


def test_random_rule_is_torch_random_split_with_seed_42():
    n = 1697  # Watkins
    assert splits.random_split_sizes(n, (0.7, 0.2, 0.1)) == [1187, 339, 171]
    torch.manual_seed(123)  # the global RNG must not matter
    expected = random_split(list(range(n)), [1187, 339, 171], generator=torch.Generator().manual_seed(42))
    got = splits.random_split_indices(n, (0.7, 0.2, 0.1), seed=42)
    assert got == [list(subset.indices) for subset in expected]

    df = manifest()
    out = assign_splits(df, method="random", seed=42)
    idx = splits.random_split_indices(len(df), (0.7, 0.2, 0.1), 42)
    for name, rows in zip(splits.SPLITS, idx):
        assert sorted(np.flatnonzero(out["split"].to_numpy() == name).tolist()) == sorted(rows)


def test_random_rule_keeps_rare_classes_but_reports_their_absence():
    df = manifest(n_per_class=(50, 50, 1))
    out = assign_splits(df, method="random")
    assert len(out) == len(df) and out.attrs["dropped_classes"] == {}
    report = leakage_report(out)
    missing = [s for s, labels in report["classes_missing_from_split"].items() if "class2" in labels]
    assert len(missing) == 2  # one clip can only be in one split
    dropped = assign_splits(df, method="random", drop_small_classes=True)
    assert "class2" not in set(dropped["label"]) and "class2" in dropped.attrs["dropped_classes"]


@pytest.mark.parametrize("method", ["random", "stratified", "grouped"])
def test_splits_are_identical_across_runs_and_depend_on_seed(method):
    df = manifest()
    a = assign_splits(df, method=method, seed=7)["split"].tolist()
    b = assign_splits(df.copy(), method=method, seed=7)["split"].tolist()
    c = assign_splits(df, method=method, seed=8)["split"].tolist()
    assert a == b
    assert a != c
    assert set(a) == {"train", "val", "test"}


def test_stratified_keeps_class_proportions():
    df = manifest(n_per_class=(40, 30, 20, 10))
    out = assign_splits(df, method="stratified", ratios=(0.7, 0.2, 0.1), seed=1)
    counts = out.groupby(["label", "split"]).size().unstack(fill_value=0)
    assert counts.loc["class0"].to_dict() == {"test": 4, "train": 28, "val": 8}
    assert counts.loc["class3"].to_dict() == {"test": 1, "train": 7, "val": 2}
    assert out["clip_id"].tolist() == df["clip_id"].tolist()  # row order kept
    assert splits.allocate(3, (0.7, 0.2, 0.1)) == [1, 1, 1]
    assert splits.allocate(5, (0.7, 0.2, 0.1)) == [3, 1, 1]
    assert splits.allocate(10, (0.8, 0.0, 0.2)) == [8, 0, 2]


def test_too_small_class_is_an_error_naming_it_unless_dropped():
    df = manifest(n_per_class=(30, 30, 2))
    with pytest.raises(SplitError, match=r"'class2': 2 clip\(s\), needs at least 3.*drop_small_classes"):
        assign_splits(df, method="stratified")
    out = assign_splits(df, method="stratified", drop_small_classes=True)
    assert set(out["label"]) == {"class0", "class1"}
    report = leakage_report(out)
    assert report["dropped_classes"] == {"class2": "2 clip(s), needs at least 3"}


def test_grouped_split_is_disjoint_by_group_and_roughly_proportional():
    rng = np.random.default_rng(0)
    rows = [{"label": f"class{c}", "group": f"rec{g}"} for g in range(60) for c in range(4)
            for _ in range(rng.integers(1, 6))]
    df = pd.DataFrame(rows)
    out = assign_splits(df, method="grouped", ratios=(0.7, 0.2, 0.1), seed=42)
    assert out.groupby("group")["split"].nunique().max() == 1
    fractions = out["split"].value_counts(normalize=True)
    assert fractions["train"] == pytest.approx(0.7, abs=0.05)
    assert fractions["val"] == pytest.approx(0.2, abs=0.05)
    assert fractions["test"] == pytest.approx(0.1, abs=0.05)
    per_class = out.groupby(["label", "split"]).size().unstack(fill_value=0)
    assert (per_class > 0).all().all()
    report = leakage_report(out)
    assert report["ids"]["group"]["n_crossing_splits"] == 0
    assert report["ids"]["group"]["fraction_test_clips_sharing_with_train"] == 0.0


def test_grouped_by_another_column_and_class_in_too_few_groups():
    df = manifest(n_per_class=(40, 40, 40), groups_per_class=10)
    out = assign_splits(df, method="grouped", group_column="recording")
    assert out.groupby("recording")["split"].nunique().max() == 1
    # "rare" is recorded from only two individuals: it cannot reach all three splits.
    rare = pd.DataFrame({"label": ["rare"] * 6, "group": ["a", "a", "a", "b", "b", "b"]})
    df2 = pd.concat([manifest(), rare], ignore_index=True)
    with pytest.raises(SplitError, match=r"'rare': 2 group value\(s\), needs at least 3"):
        assign_splits(df2, method="grouped")
    out2 = assign_splits(df2, method="grouped", drop_small_classes=True)
    assert "rare" not in set(out2["label"]) and set(out2["label"]) == set(manifest()["label"])
    with pytest.raises(SplitError, match="no column 'dog'"):
        assign_splits(df, method="grouped", group_column="dog")


def test_leakage_report_counts_ids_crossing_splits():
    df = pd.DataFrame({
        "clip_id": list("abcdef"), "path": list("abcdef"), "start": np.nan, "end": np.nan,
        "label": ["x", "y", "x", "y", "x", "y"],
        "group": ["g1", "g1", "g2", "g3", "g3", "g4"],
        "caller": ["m1", "m1", "m1", "m2", "m2", "m2"],
        "split": ["train", "test", "train", "val", "test", "test"],
    })
    report = leakage_report(df)
    assert set(report["ids"]) == {"group", "caller"}
    group = report["ids"]["group"]
    assert group["n_values"] == 4 and group["n_crossing_splits"] == 2 and group["examples"] == ["g1", "g3"]
    assert group["shared_between"] == {"train-val": 0, "train-test": 1, "val-test": 1}
    assert group["test_clips_sharing_with_train"] == 1  # clip b (g1)
    caller = report["ids"]["caller"]
    assert caller["n_crossing_splits"] == 2 and caller["test_clips_sharing_with_train"] == 1
    assert report["n_clips"] == {"train": 2, "val": 1, "test": 3, "total": 6}
    assert report["classes_missing_from_split"] == {"train": ["y"], "val": ["x"], "test": []}
    json.dumps(report)  # serialisable


def test_bad_settings_are_refused():
    df = manifest()
    with pytest.raises(SplitError, match="unknown split method 'kfold'"):
        assign_splits(df, method="kfold")
    with pytest.raises(SplitError, match="summing to 1"):
        assign_splits(df, ratios=(0.5, 0.2, 0.2))
    with pytest.raises(SplitError, match="summing to 1"):
        assign_splits(df, ratios=(0.7, 0.3))


def test_predefined_split_is_kept_and_checked():
    df = manifest(n_per_class=(6, 6))
    df["split"] = (["train", "train", "val", "test"] * 3)
    out = assign_splits(df, method="predefined")
    assert out["split"].tolist() == df["split"].tolist()
    with pytest.raises(SplitError, match="set split method 'predefined'"):
        assign_splits(df, method="stratified")
    df.loc[3, "split"] = "holdout"
    with pytest.raises(SplitError, match=r"\['holdout'\] in rows \[3\]"):
        assign_splits(df, method="predefined")
    df.loc[3, "split"] = "train"
    df.loc[df["label"] == "class1", "split"] = "train"
    kept = assign_splits(df, method="predefined", drop_small_classes=True)
    assert set(kept["label"]) == {"class0"} and kept.attrs["dropped_classes"] == {"class1": "in 1 of the 3 given splits"}


def test_grouped_split_reaches_a_small_test_split_with_few_groups():
    # 4 equal groups at 0.7/0.2/0.1: the ratio-weighted coverage bonus never sends a group to
    # test (each is 25 % of the clips); the unweighted second round does (2/1/1)
    df = pd.DataFrame([{"label": f"k{c}", "ind": f"i{g}"} for g in range(4) for c in range(4) for _ in range(6)])
    out = assign_splits(df, "grouped", (0.7, 0.2, 0.1), 42, False, "ind")
    per_group = out.groupby("ind")["split"].first()
    assert sorted(per_group.value_counts().to_dict().items()) == [("test", 1), ("train", 2), ("val", 1)]
    assert out.groupby("ind")["split"].nunique().max() == 1


def test_a_class_of_exactly_one_clip_or_group_per_split_is_kept():
    # 3 clips (stratified) or 3 groups (grouped) can fill train, val and test: not "too small"
    df = manifest(n_per_class=(30, 30, 3))
    out = assign_splits(df, method="stratified", seed=3)
    assert sorted(out.loc[out["label"] == "class2", "split"]) == ["test", "train", "val"]
    assert out.attrs["dropped_classes"] == {}
    three = pd.DataFrame({"label": ["a"] * 6 + ["b"] * 4, "group": ["g1", "g1", "g2", "g2", "g3", "g3", "h1", "h1", "h2", "h2"]})
    assert splits.small_classes(three, "grouped", (0.7, 0.2, 0.1)) == {"b": "2 group value(s), needs at least 3"}
    assert splits.small_classes(three, "stratified", (0.7, 0.2, 0.1)) == {}


def test_grouped_split_refuses_empty_group_values():
    df = manifest()
    df.loc[5, "group"] = ""
    with pytest.raises(SplitError, match=r"column 'group' is empty in rows \[5\]"):
        assign_splits(df, method="grouped")
    df.loc[5, "group"] = None
    with pytest.raises(SplitError, match=r"column 'group' is empty in rows \[5\]"):
        assign_splits(df, method="grouped")


def test_leakage_fraction_is_over_test_clips():
    # 4 test clips, 1 of them (g1) shares its group with a train clip -> 1/4, not 1/7 of all clips
    df = pd.DataFrame({"label": ["x"] * 7, "group": ["g1", "g2", "g3", "g1", "g4", "g5", "g6"],
                       "split": ["train", "train", "val", "test", "test", "test", "test"]})
    group = leakage_report(df)["ids"]["group"]
    assert group["test_clips_sharing_with_train"] == 1
    assert group["fraction_test_clips_sharing_with_train"] == 0.25
    assert group["fraction_crossing_splits"] == round(1 / 6, 6)
