"""The probe job: same seed same result whatever the embedding file order, and named errors for mismatched embeddings."""

import h5py
import numpy as np
import pandas as pd
import pytest

from bioprobe.probes.config import resolve_probe_config
from bioprobe.probes.job import run_probe_job
from bioprobe.probes.train import fit_probe
from bioprobe.store import write_embeddings

from .toy import probe_data


def test_same_seed_same_result_and_embedding_order_does_not_matter(dataset_files, tmp_path):
    root, features, labels, split = dataset_files
    cfg = {"type": "mlp", "epochs": 3, "n_boot": 0}
    run_probe_job(root / "emb.h5", root / "manifest.csv", tmp_path / "a", "d", "m", "mlp", cfg, threads=1)
    run_probe_job(root / "emb.h5", root / "manifest.csv", tmp_path / "b", "d", "m", "mlp", cfg, threads=1)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a/scores.csv"), pd.read_csv(tmp_path / "b/scores.csv"))
    # the shuffled embedding file gives the same result as the manifest-ordered features
    direct = fit_probe(probe_data(features, labels, split, [0, 1, 2]), resolve_probe_config("mlp", cfg))
    with h5py.File(tmp_path / "a/predictions.h5", "r") as h5:
        posteriors = h5["test/posteriors"][:]
    np.testing.assert_allclose(posteriors, direct.posteriors["test"], atol=1e-5)


def test_mismatched_embeddings_are_named(dataset_files, tmp_path):
    root, features, labels, split = dataset_files
    write_embeddings(tmp_path / "short.h5", features[:10], [f"clip{i:04d}" for i in range(10)], {})
    with pytest.raises(ValueError, match=r"short\.h5.*have no embedding"):
        run_probe_job(tmp_path / "short.h5", root / "manifest.csv", tmp_path / "out", "d", "m", "mlp", {"type": "mlp"})
    assert not (tmp_path / "out" / "scores.csv").exists()
