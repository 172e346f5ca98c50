"""Label efficiency: seeded, nested draws; per-group rows in the trainer equal training each draw
alone; the output table and its reader."""

import numpy as np
import pytest
import torch

from bioprobe.probes.config import resolve_probe_config
from bioprobe.probes.label_efficiency import (
    ALL,
    COLUMNS,
    draw_rows,
    draw_seed,
    fit_label_efficiency,
    read_label_efficiency,
    resolve_label_efficiency_config,
    run_label_efficiency_job,
    used_probe_settings,
)
from bioprobe.probes.train import group_seed, predict_logits, train_stacked

from .toy import probe_data, synthetic


def _per_class(rows, labels):
    return np.bincount(labels[rows], minlength=labels.max() + 1)


def test_draws_are_seeded_nested_and_take_min_k_per_class():
    _features, labels, split = synthetic()
    n_train = _per_class(np.flatnonzero(split == "train"), labels)
    n_val = _per_class(np.flatnonzero(split == "val"), labels)
    ks = [1, 2, 4, 8, 16, 32, 64, ALL]
    for draw in range(3):
        previous = (set(), set())
        for k in ks:
            train, val = draw_rows(labels, split, k, draw, seed=7)
            assert set(split[train]) == {"train"} and set(split[val]) == {"val"}
            expected = n_train if k == ALL else np.minimum(k, n_train)
            np.testing.assert_array_equal(_per_class(train, labels), expected)
            # validation in the same proportion per class, at least one clip, all of it at k = all
            val_counts = _per_class(val, labels)
            np.testing.assert_array_equal(val_counts, np.minimum(n_val, np.maximum(1, np.floor(n_val * expected / n_train + 0.5))))
            assert previous[0] <= set(train) and previous[1] <= set(val), f"draw {draw}, k={k} is not nested"
            previous = (set(train), set(val))
            again = draw_rows(labels, split, k, draw, seed=7)
            np.testing.assert_array_equal(again[0], train)  # seeded
            np.testing.assert_array_equal(again[1], val)
        assert previous[0] == set(np.flatnonzero(split == "train"))
    one = [set(draw_rows(labels, split, 4, d, seed=7)[0]) for d in range(3)]
    assert one[0] != one[1] and one[1] != one[2]  # draws differ
    assert set(draw_rows(labels, split, 4, 0, seed=8)[0]) != one[0]  # so do seeds
    full_val = draw_rows(labels, split, 1, 0, seed=7, validation="full")[1]
    np.testing.assert_array_equal(full_val, np.flatnonzero(split == "val"))
    assert draw_seed(0, 1) != draw_seed(1, 0)


def test_config_defaults_and_errors():
    cfg = resolve_label_efficiency_config({"k": [ALL, 4, 1], "draws": 5})
    assert cfg["k"] == [1, 4, ALL] and cfg["validation"] == "proportional" and cfg["probe"] == "mlp"
    for bad, match in (({"k": [0]}, "label_efficiency.k"), ({"draws": 0}, "label_efficiency.draws"),
                       ({"validation": "half"}, "label_efficiency.validation"), ({"kk": 1}, "unknown key")):
        with pytest.raises(ValueError, match=match):
            resolve_label_efficiency_config(bad)


def test_per_group_rows_equal_training_each_draw_alone():
    torch.set_num_threads(1)
    features, labels, split = synthetic()
    data = probe_data(features, labels, split, [0, 1, 2])
    feats, labs = torch.from_numpy(data.features), torch.from_numpy(labels)
    cfg = resolve_probe_config("mlp", {"type": "mlp", "epochs": 6, "patience": 2, "lr_patience": 1})
    draws = [draw_rows(labels, split, 8, d, seed=1) for d in range(2)]
    layer_of_group = [2, 1]
    seeds = [group_seed(d + 10, layer) for d, layer in enumerate(layer_of_group)]
    test = torch.from_numpy(np.flatnonzero(split == "test"))
    model, trained = train_stacked(feats, labs, torch.from_numpy(np.stack([tr for tr, _ in draws])),
                                   torch.from_numpy(np.stack([va for _, va in draws])), torch.tensor(layer_of_group),
                                   seeds, cfg, 4)
    together = predict_logits(model, trained.tensors, feats, test, torch.tensor(layer_of_group), False)
    for g, (tr, va) in enumerate(draws):
        m, alone = train_stacked(feats, labs, torch.from_numpy(tr), torch.from_numpy(va), torch.tensor([layer_of_group[g]]),
                                 [seeds[g]], cfg, 4)
        single = predict_logits(m, alone.tensors, feats, test, torch.tensor([layer_of_group[g]]), False)
        torch.testing.assert_close(together[g], single[0], atol=1e-5, rtol=1e-5)
        assert trained.epoch[g] == alone.epoch[0] and trained.epochs_run[g] == alone.epochs_run[0]
        np.testing.assert_allclose(trained.history["val_uar"][:, g], alone.history["val_uar"][:, 0])


def test_fit_label_efficiency_rows_and_learning_curve():
    features, labels, split = synthetic()
    data = probe_data(features, labels, split, [0, 1, 2])
    cfg = resolve_probe_config("mlp", {"type": "mlp", "epochs": 8})
    le = resolve_label_efficiency_config({"k": [1, 4, ALL], "draws": 3})
    rows = fit_label_efficiency(data, cfg, le)
    assert len(rows) == 3 * 3 * 3
    n_test = int((split == "test").sum())
    assert {r["n_test"] for r in rows} == {n_test}
    assert all(0.0 <= r["uar"] <= 1.0 and 1 <= r["epoch"] <= 8 for r in rows)
    assert {r["n_train"] for r in rows if r["k"] == 1} == {4}
    mean = {(k, layer): np.mean([r["uar"] for r in rows if r["k"] == k and r["layer"] == layer]) for k in le["k"] for layer in range(3)}
    assert mean[(ALL, 2)] > 0.9 and mean[(ALL, 0)] < 0.45  # strong layer vs noise layer
    assert mean[(ALL, 2)] > mean[(1, 2)]  # more labels help the informative layer
    with pytest.raises(ValueError, match="per-layer probes"):
        fit_label_efficiency(data, resolve_probe_config("k", {"type": "knn"}), le)


def test_job_writes_a_table_the_reader_reads(dataset_files, tmp_path):
    root, _features, _labels, split = dataset_files
    out = tmp_path / "le" / "toy" / "mlp.csv"
    run_label_efficiency_job(root / "emb.h5", root / "manifest.csv", out, "d", "toy", "mlp",
                             {"type": "mlp", "epochs": 3}, {"k": [2, ALL], "draws": 2}, threads=1)
    table = read_label_efficiency([out])
    assert list(table.columns) == COLUMNS
    assert len(table) == 2 * 2 * 3 and set(table["k"]) == {2, ALL}
    assert set(table["n_test"]) == {int((split == "test").sum())}
    assert (table["dataset"] == "d").all() and (table["model"] == "toy").all()


def test_the_probe_seeds_and_ci_settings_are_not_used():
    entry = {"type": "mlp", "seeds": [1, 2], "epochs": 4, "n_boot": 10, "ci_level": 0.9, "bootstrap_seed": 3}
    assert used_probe_settings(entry) == {"type": "mlp", "epochs": 4}
    features, labels, split = synthetic()
    le = resolve_label_efficiency_config({"k": [2], "draws": 2})
    rows = [fit_label_efficiency(probe_data(features, labels, split, [1]), resolve_probe_config("m", e), le)
            for e in (entry, used_probe_settings(entry))]
    assert rows[0] == rows[1]


def test_each_row_equals_its_draw_and_layer_trained_alone_on_train_zscored_features():
    """Reference: z-score with train-split statistics (numpy), train the draw's probe of one layer
    alone with its own seed on its own rows, and score the whole test split with scikit-learn."""
    import warnings

    from sklearn.metrics import recall_score

    torch.set_num_threads(1)
    features, labels, split = synthetic(n=240)
    cfg = resolve_probe_config("mlp", {"type": "mlp", "epochs": 4})
    le = resolve_label_efficiency_config({"k": [4], "draws": 2, "seed": 3})
    rows = fit_label_efficiency(probe_data(features, labels, split, [0, 1, 2]), cfg, le)
    train = split == "train"
    mean, std = features[train].astype(np.float64).mean(0), features[train].astype(np.float64).std(0)
    z = torch.from_numpy(((features - mean) / np.where(std == 0, 1, std)).astype(np.float32))
    test = np.flatnonzero(split == "test")
    for row in rows:
        tr, va = draw_rows(labels, split, 4, row["draw"], seed=3)
        model, alone = train_stacked(z, torch.from_numpy(labels), torch.from_numpy(tr), torch.from_numpy(va),
                                     torch.tensor([row["layer"]]), [group_seed(draw_seed(3, row["draw"]), row["layer"])], cfg, 4)
        pred = predict_logits(model, alone.tensors, z, torch.from_numpy(test), torch.tensor([row["layer"]]), False).argmax(-1)[0]
        val_pred = predict_logits(model, alone.tensors, z, torch.from_numpy(va), torch.tensor([row["layer"]]), False).argmax(-1)[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert row["uar"] == pytest.approx(recall_score(labels[test], pred.numpy(), average="macro")), row
            assert row["val_uar"] == pytest.approx(recall_score(labels[va], val_pred.numpy(), average="macro")), row
        assert row["epoch"] == alone.epoch[0] and row["n_train"] == tr.size and row["n_val"] == va.size
