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
