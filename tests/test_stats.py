"""Paired bootstrap comparisons between models' best layers, Holm's correction, comparisons.csv."""

import numpy as np
import pandas as pd
import pytest

from bioprobe import metrics, stats
from bioprobe.probes import ProbeData, ProbeResult, resolve_probe_config, write_probe_outputs


def noisy_predictions(y_true, accuracy, rng, n_classes):
    wrong = rng.integers(0, n_classes, y_true.shape[0])
    return np.where(rng.random(y_true.shape[0]) < accuracy, y_true, wrong)


def test_paired_bootstrap_equals_explicit_loop():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 120)
    a = np.stack([noisy_predictions(y, 0.7, rng, 5) for _ in range(2)])  # 2 seeds
    b = noisy_predictions(y, 0.6, rng, 5)[None]
    out = stats.paired_bootstrap(y, a, b, n_boot=200, seed=4, n_classes=5)
    idx = metrics.bootstrap_indices(120, 200, 4)
    diffs = np.array([np.mean([metrics.uar(y[i], s[i]) for s in a]) - metrics.uar(y[i], b[0][i]) for i in idx])
    observed = np.mean([metrics.uar(y, s) for s in a]) - metrics.uar(y, b[0])
    assert out["diff"] == pytest.approx(observed)
    assert out["ci_low"] == pytest.approx(np.quantile(diffs, 0.025))
    assert out["ci_high"] == pytest.approx(np.quantile(diffs, 0.975))
    assert out["p_value"] == pytest.approx((1 + np.sum(np.abs(diffs - observed) >= abs(observed) - 1e-12)) / 201)


def test_paired_bootstrap_identical_and_clearly_different():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 300)
    same = noisy_predictions(y, 0.6, rng, 4)
    tie = stats.paired_bootstrap(y, same, same, n_boot=300)
    assert tie["diff"] == 0 and tie["p_value"] == 1.0 and tie["ci_low"] == tie["ci_high"] == 0
    better = stats.paired_bootstrap(y, noisy_predictions(y, 0.95, rng, 4), noisy_predictions(y, 0.4, rng, 4), n_boot=300)
    assert better["diff"] > 0.3 and better["ci_low"] > 0 and better["p_value"] < 0.01


def test_paired_bootstrap_false_positive_rate_is_controlled():
    """Two equally good, independent classifiers: p < 0.05 in about 5% of repetitions."""
    rng = np.random.default_rng(2)
    rejections = 0
    for _ in range(60):
        y = rng.integers(0, 3, 150)
        out = stats.paired_bootstrap(y, noisy_predictions(y, 0.6, rng, 3), noisy_predictions(y, 0.6, rng, 3), n_boot=200, seed=1)
        rejections += out["p_value"] < 0.05
    assert rejections <= 9  # expected ~3; binomial(60, 0.05) exceeds 9 with probability < 0.2%


def test_holm():
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    np.testing.assert_allclose(stats.holm([0.5, 0.9]), [1.0, 1.0])
    assert stats.holm([]).shape == (0,)


def test_pairs_orient_fine_tuned_against_base():
    cfg = {"w2v2": {}, "aves": {}, "w2v2_100h": {"base": "w2v2"}}
    pairs = stats.comparison_pairs(["aves", "w2v2", "w2v2_100h"], cfg)
    assert pairs == [("model_pair", "aves", "w2v2"), ("model_pair", "aves", "w2v2_100h"), ("finetuned_vs_base", "w2v2_100h", "w2v2")]


def write_fake_probe(out_dir, model, y_true, predictions_by_layer, val_uars, split_ids, classes):
    """A probe job folder from given test predictions (one seed) via the real writers."""
    n_layers = len(predictions_by_layer)
    n_classes = len(classes)
    test_rows, val_rows = split_ids
    labels = np.zeros(test_rows.max() + val_rows.max() + 2, dtype=np.int64)
    labels[test_rows] = y_true
    split = np.array(["train"] * labels.shape[0], dtype=object)
    split[test_rows], split[val_rows] = "test", "val"
    data = ProbeData(np.zeros((labels.shape[0], n_layers, 1), np.float32), labels, split.astype(str),
                           [f"c{i}" for i in range(labels.shape[0])], classes, list(range(n_layers)))
    eye = np.eye(n_classes, dtype=np.float32)
    post_test = np.stack([eye[p] for p in predictions_by_layer])[None]
    # validation predictions tuned so that layer UARs are val_uars (correct on a fraction of clips)
    y_val = labels[val_rows]
    post_val = []
    for u in val_uars:
        pred = y_val.copy()
        pred[int(u * len(pred)):] = (y_val[int(u * len(pred)):] + 1) % n_classes
        post_val.append(eye[pred])
    result = ProbeResult(list(range(n_layers)), [42], {"test": post_test, "val": np.stack(post_val)[None]},
                               {"train": np.flatnonzero(split == "train"), "val": val_rows, "test": test_rows},
                               np.ones((1, n_layers)))
    cfg = resolve_probe_config("mlp", {"type": "mlp", "n_boot": 50})
    write_probe_outputs(out_dir, data, result, {"dataset": "d", "model": model, "probe": "mlp"}, cfg)


def test_run_comparisons_uses_best_validation_layers(tmp_path):
    rng = np.random.default_rng(3)
    n_test, classes = 200, ["a", "b", "c"]
    test_rows, val_rows = np.arange(0, 200), np.arange(200, 300)
    y = rng.integers(0, 3, n_test)
    good, poor = noisy_predictions(y, 0.9, rng, 3), noisy_predictions(y, 0.5, rng, 3)
    # model "base": layer 1 is best on validation; model "ft": layer 0 is best
    write_fake_probe(tmp_path / "base", "base", y, [poor, good], [0.5, 0.8], (test_rows, val_rows), classes)
    write_fake_probe(tmp_path / "ft", "ft", y, [poor, good], [0.9, 0.6], (test_rows, val_rows), classes)
    models_cfg = {"base": {"label": "Base"}, "ft": {"label": "FT", "base": "base"}}
    out = tmp_path / "comparisons.csv"
    stats.run_comparisons("d", models_cfg, {("base", "mlp"): tmp_path / "base", ("ft", "mlp"): tmp_path / "ft"}, out, n_boot=300)
    table = pd.read_csv(out)
    assert len(table) == 1
    row = table.iloc[0]
    assert (row.kind, row.model_a, row.layer_a, row.model_b, row.layer_b) == ("finetuned_vs_base", "ft", 0, "base", 1)
    assert row["diff"] == pytest.approx(metrics.uar(y, poor) - metrics.uar(y, good))
    assert row["diff"] < 0 and row.ci_high < 0 and row.p_value < 0.01 and row.p_holm == row.p_value
    assert (row.label_a, row.label_b) == ("FT", "Base")


def test_run_comparisons_rejects_different_test_clips(tmp_path):
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 50)
    write_fake_probe(tmp_path / "a", "a", y, [y], [0.5], (np.arange(50), np.arange(50, 60)), ["x", "y"])
    write_fake_probe(tmp_path / "b", "b", y, [y], [0.5], (np.arange(10, 60), np.arange(0, 10)), ["x", "y"])
    with pytest.raises(ValueError, match="test clips differ"):
        stats.run_comparisons("d", {}, {("a", "mlp"): tmp_path / "a", ("b", "mlp"): tmp_path / "b"}, tmp_path / "c.csv")
    assert not (tmp_path / "c.csv").exists()


def test_holm_keeps_input_order_and_caps_at_one():
    # sorted 0.01, 0.03, 0.04 -> 3*0.01, 2*0.03, max(0.06, 1*0.04); mapped back to input order
    np.testing.assert_allclose(stats.holm([0.04, 0.01, 0.03]), [0.06, 0.03, 0.06])
    # 2*0.6 = 1.2 and 1*0.7 -> both capped at 1
    np.testing.assert_allclose(stats.holm([0.7, 0.6]), [1.0, 1.0])


def test_pairs_orient_fine_tuned_first_in_the_model_list():
    cfg = {"w2v2_100h": {"base": "w2v2"}, "w2v2": {}}
    assert stats.comparison_pairs(["w2v2_100h", "w2v2"], cfg) == [("finetuned_vs_base", "w2v2_100h", "w2v2")]


def write_seeded_probe(out_dir, model, y_test, test_by_seed, n_classes=3):
    """A one-layer probe job folder whose test predictions per seed are given (val all correct)."""
    n = y_test.shape[0]
    labels = np.concatenate([y_test, np.arange(n_classes)])
    split = np.array(["test"] * n + ["val"] * n_classes)
    data = ProbeData(np.zeros((labels.shape[0], 1, 1), np.float32), labels, split, [f"c{i}" for i in range(labels.shape[0])],
                     [f"k{c}" for c in range(n_classes)], [0])
    eye = np.eye(n_classes, dtype=np.float32)
    seeds = list(range(len(test_by_seed)))
    posteriors = {"test": np.stack([eye[p][None] for p in test_by_seed]),
                  "val": np.stack([eye[np.arange(n_classes)][None]] * len(seeds))}
    result = ProbeResult([0], seeds, posteriors, {"test": np.arange(n), "val": np.arange(n, n + n_classes), "train": np.arange(0)},
                         np.ones((len(seeds), 1)))
    write_probe_outputs(out_dir, data, result, {"dataset": "d", "model": model, "probe": "p"},
                        resolve_probe_config("p", {"type": "mlp", "n_boot": 10}))


def test_run_comparisons_averages_seeds_and_corrects_within_each_probe(tmp_path):
    from sklearn.metrics import recall_score

    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 300)
    preds = {(m, p): [noisy_predictions(y, acc, rng, 3) for acc in accs]
             for (m, p), accs in {("a", "mlp"): (0.9, 0.6), ("b", "mlp"): (0.4, 0.5),
                                  ("a", "knn"): (0.8, 0.85), ("b", "knn"): (0.5, 0.45)}.items()}
    dirs = {}
    for (model, probe), by_seed in preds.items():
        dirs[(model, probe)] = tmp_path / model / probe
        write_seeded_probe(dirs[(model, probe)], model, y, by_seed)
    out = tmp_path / "comparisons.csv"
    stats.run_comparisons("d", {}, dirs, out, n_boot=200)
    table = pd.read_csv(out).set_index("probe")
    for probe in ("mlp", "knn"):
        row = table.loc[probe]
        seed_mean = {m: np.mean([recall_score(y, p, average="macro") for p in preds[(m, probe)]]) for m in ("a", "b")}
        assert row.uar_a == pytest.approx(seed_mean["a"]) and row.uar_b == pytest.approx(seed_mean["b"])
        # one comparison per probe: Holm over a family of one leaves the p-value as it is
        assert row.p_value == pytest.approx(1 / 201) and row.p_holm == row.p_value
