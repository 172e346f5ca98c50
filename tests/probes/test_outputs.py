"""The files of a probe job: complete and consistent outputs, and no scores.csv after a crash while writing."""

import h5py
import pandas as pd
import pytest

from bioprobe.probes import outputs
from bioprobe.probes.job import run_probe_job

from .toy import N_CLASSES, N_LAYERS


def test_run_probe_job_writes_complete_outputs(dataset_files, tmp_path):
    root, features, labels, split = dataset_files
    cfg = {"type": "mlp", "epochs": 4, "seeds": [5, 6], "n_boot": 100}
    out = tmp_path / "probe"
    run_probe_job(root / "emb.h5", root / "manifest.csv", out, "toyset", "toy", "mlp", cfg, threads=1)
    scores = pd.read_csv(out / "scores.csv")
    assert len(scores) == 2 * N_LAYERS * 2  # seeds x layers x (val, test)
    assert set(scores.columns) >= {"dataset", "model", "layer", "probe", "seed", "split", "uar", "epoch", "ci_low", "ci_high"}
    assert (scores.ci_low <= scores.uar).all() and (scores.uar <= scores.ci_high).all()
    assert scores.dataset.unique().tolist() == ["toyset"] and scores.probe.unique().tolist() == ["mlp"]
    n_test = int((split == "test").sum())
    with h5py.File(out / "predictions.h5", "r") as h5:
        assert [c.decode() for c in h5["classes"][:]] == ["egg", "phee", "trill", "twitter"]  # sorted labels
        assert h5["test/posteriors"].shape == (2, N_LAYERS, n_test, N_CLASSES)
        assert h5["test/y_pred"].shape == (2, N_LAYERS, n_test)
        test_ids = [c.decode() for c in h5["test/clip_id"][:]]
        best = int(h5.attrs["best_layer"])
    manifest = pd.read_csv(root / "manifest.csv")
    assert test_ids == manifest.loc[manifest.split == "test", "clip_id"].tolist()
    confusion = pd.read_csv(out / "confusion.csv")
    assert confusion["count"].sum() == 2 * n_test and confusion.layer.unique().tolist() == [best]
    summary = pd.read_csv(out / "summary.csv")
    assert summary.query("is_best").layer.unique().tolist() == [best]
    assert not list(out.glob(".*part*"))  # no temporary files left


def test_a_crash_while_writing_leaves_no_scores(dataset_files, tmp_path, monkeypatch):
    root, features, labels, split = dataset_files

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(outputs, "confusion_table", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        run_probe_job(root / "emb.h5", root / "manifest.csv", tmp_path / "out", "d", "m", "knn", {"type": "knn"})
    assert not (tmp_path / "out" / "scores.csv").exists()
    assert not [p for p in (tmp_path / "out").iterdir() if ".part" in p.name]


def hand_made_result():
    """Two seeds, three layers, 3 classes; posteriors chosen so the UARs are known by hand.

    val (6 clips, 2 per class): layers 0 and 1 tie at UAR 1 (mean over seeds), layer 2 is worse;
    test (6 clips): layer 2 is perfect, layers 0 and 1 are not, so choosing on test would differ.
    Seed 1 of layer 0 on val misses both clips of class 2 (UAR 2/3): its seed std is known.
    """
    import numpy as np

    from bioprobe.probes import ProbeData, ProbeResult

    labels = np.array([0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2, 0, 1, 2])
    split = np.array(["val"] * 6 + ["test"] * 6 + ["train"] * 3)
    data = ProbeData(np.zeros((15, 3, 1), np.float32), labels, split, [f"c{i}" for i in range(15)], ["a", "b", "c"], [0, 1, 2])
    eye = np.eye(3, dtype=np.float32)
    y = np.array([0, 0, 1, 1, 2, 2])
    wrong = (y + 1) % 3
    val_pred = np.stack([
        np.stack([y, y, wrong]),                              # seed 0: layers 0, 1 perfect; layer 2 all wrong
        np.stack([np.array([0, 0, 1, 1, 0, 0]), y, y]),       # seed 1: layer 0 misses class 2 -> recalls 1, 1, 0
    ])
    test_pred = np.stack([np.stack([wrong, wrong, y])] * 2)
    result = ProbeResult([0, 1, 2], [1, 2], {"val": eye[val_pred], "test": eye[test_pred]},
                         {"val": np.arange(6), "test": np.arange(6, 12), "train": np.arange(12, 15)}, np.ones((2, 3)))
    return data, result


def test_best_layer_is_chosen_on_validation_with_ties_to_the_lowest_and_seed_std_is_unbiased():
    import numpy as np

    data, result = hand_made_result()
    cfg = {"n_boot": 0, "ci_level": 0.95, "bootstrap_seed": 0}
    scores, summary, best = outputs.score_tables(data, result, {"dataset": "d", "model": "m", "probe": "p"}, cfg)
    # val UAR means: layer 0 (1 + 2/3) / 2 = 0.833, layer 1 1.0, layer 2 (0 + 1) / 2 = 0.5
    val = summary[summary.split == "val"].set_index("layer")
    np.testing.assert_allclose(val.uar_mean, [5 / 6, 1.0, 0.5])
    assert best == 1 and val.is_best.tolist() == [False, True, False]
    # seed std of layer 0 on val: values 1 and 2/3, unbiased std = |1 - 2/3| / sqrt(2)
    assert val.uar_std[0] == pytest.approx((1 / 3) / np.sqrt(2))
    # a tie on validation goes to the lowest layer: make layer 0 perfect for both seeds
    result.posteriors["val"][1, 0] = result.posteriors["val"][1, 1]
    _, summary, best = outputs.score_tables(data, result, {"dataset": "d", "model": "m", "probe": "p"}, cfg)
    assert best == 0 and summary.query("split == 'test'").is_best.tolist() == [True, False, False]


def test_confusion_rows_are_true_labels_summed_over_seeds():
    data, result = hand_made_result()
    table = outputs.confusion_table(data, result, 2, {"dataset": "d", "model": "m", "probe": "p"})
    counts = table.set_index(["true_label", "predicted_label"])["count"]
    assert counts[("a", "a")] == 4 and counts[("b", "b")] == 4 and counts.sum() == 12  # test layer 2 is perfect
    table = outputs.confusion_table(data, result, 0, {"dataset": "d", "model": "m", "probe": "p"})
    counts = table.set_index(["true_label", "predicted_label"])["count"]
    # layer 0 on test predicts (y + 1) % 3: true a -> predicted b, twice per seed
    assert counts[("a", "b")] == 4 and counts[("b", "a")] == 0 and counts[("c", "a")] == 4


def test_seed_mean_ci_resamples_the_clips_jointly_with_the_configured_seed():
    import warnings

    import numpy as np
    from sklearn.metrics import recall_score

    from bioprobe.probes import ProbeData, ProbeResult

    rng = np.random.default_rng(1)
    n = 60
    labels = np.concatenate([rng.integers(0, 3, n), rng.integers(0, 3, n)])
    split = np.array(["val"] * n + ["test"] * n)
    data = ProbeData(np.zeros((2 * n, 1, 1), np.float32), labels, split, [f"c{i}" for i in range(2 * n)], ["a", "b", "c"], [0])
    preds = {s: np.where(rng.random((2, 1, n)) < 0.6, labels[rows], rng.integers(0, 3, (2, 1, n)))
             for s, rows in (("val", np.arange(n)), ("test", np.arange(n, 2 * n)))}
    eye = np.eye(3, dtype=np.float32)
    result = ProbeResult([0], [1, 2], {s: eye[p] for s, p in preds.items()},
                         {"val": np.arange(n), "test": np.arange(n, 2 * n), "train": np.arange(0)}, np.ones((2, 1)))
    ids = {"dataset": "d", "model": "m", "probe": "p"}
    _, summary, _ = outputs.score_tables(data, result, ids, {"n_boot": 300, "ci_level": 0.9, "bootstrap_seed": 5})
    y = labels[:n]
    idx = np.random.default_rng(5).integers(0, n, size=(300, n))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        boots = [np.mean([recall_score(y[i], preds["val"][s, 0][i], average="macro") for s in range(2)]) for i in idx]
    val = summary[summary.split == "val"].iloc[0]
    assert (val.ci_low, val.ci_high) == pytest.approx((np.quantile(boots, 0.05), np.quantile(boots, 0.95)), abs=1e-12)
    _, other, _ = outputs.score_tables(data, result, ids, {"n_boot": 300, "ci_level": 0.9, "bootstrap_seed": 0})
    assert (other.ci_low.iloc[0], other.ci_high.iloc[0]) != (val.ci_low, val.ci_high)  # the seed matters
