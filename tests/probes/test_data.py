"""Probe data: train-split z-scoring, reading a layer subset in order, and named errors for bad embeddings."""

import numpy as np
import pytest

from bioprobe.probes.data import load_probe_data, zscore_inplace
from bioprobe.store import write_embeddings

from .toy import N_CLIPS


def test_zscore_uses_train_statistics_and_centres_constant_dimensions():
    rng = np.random.default_rng(0)
    features = (rng.normal(size=(500, 3, 7)) * 4 + 250).astype(np.float32)
    features[:, 1, 2] = 3.0  # constant
    train = np.sort(rng.choice(500, 300, replace=False))
    reference = features.astype(np.float64)
    mean, std = reference[train].mean(0), reference[train].std(0)
    std[std == 0] = 1.0
    got_mean, got_std = zscore_inplace(features, train, chunk=64)  # several chunks
    np.testing.assert_allclose(got_mean, mean, rtol=1e-12)
    np.testing.assert_allclose(got_std, std, rtol=1e-10)
    np.testing.assert_allclose(features, (reference - mean) / std, atol=2e-5)
    assert np.all(features[:, 1, 2] == 0.0)


def test_layer_subset_is_read_in_the_asked_order(dataset_files, tmp_path):
    root, features, labels, split = dataset_files
    data = load_probe_data(root / "emb.h5", root / "manifest.csv", layers=[2, 0])
    np.testing.assert_array_equal(data.features, features[:, [2, 0]])
    assert data.layer_ids == [2, 0]
    with pytest.raises(ValueError, match=r"emb\.h5: has 3 layers"):
        load_probe_data(root / "emb.h5", root / "manifest.csv", layers=[5])


def test_non_finite_features_are_named(dataset_files, tmp_path):
    root, features, labels, split = dataset_files
    broken = features.copy()
    broken[7, 1, 3] = np.nan
    write_embeddings(tmp_path / "nan.h5", broken, [f"clip{i:04d}" for i in range(N_CLIPS)], {})
    with pytest.raises(ValueError, match=r"nan\.h5: non-finite features for 1 clip.*clip0007"):
        load_probe_data(tmp_path / "nan.h5", root / "manifest.csv")


def test_excluded_clips_are_ignored_and_extra_embeddings_allowed(dataset_files, tmp_path):
    import pandas as pd

    root, features, labels, split = dataset_files
    table = pd.read_csv(root / "manifest.csv", keep_default_na=False)
    table = table.drop(columns=["path", "start", "end"])
    excluded = np.zeros(N_CLIPS, dtype=bool)
    excluded[::7] = True
    excluded |= (table["label"] == "egg").to_numpy()  # a whole class excluded (e.g. drop_codes)
    table.loc[excluded, "split"] = "excluded"
    table.loc[excluded, "label"] = "dropped code"  # an excluded clip's label is not a class
    table.to_csv(tmp_path / "split.csv", index=False)
    data = load_probe_data(root / "emb.h5", tmp_path / "split.csv")  # the embeddings hold every clip
    assert data.clip_ids == [c for c, e in zip(table["clip_id"], excluded) if not e]
    assert data.classes == ["phee", "trill", "twitter"]
    np.testing.assert_array_equal(data.features, features[~excluded])
    assert set(data.split) == {"train", "val", "test"}
    # a used clip without an embedding is still an error
    write_embeddings(tmp_path / "short.h5", features[1:], [f"clip{i:04d}" for i in range(1, N_CLIPS)], {})
    table.loc[0, "split"] = "train"
    table.to_csv(tmp_path / "split.csv", index=False)
    with pytest.raises(ValueError, match=r"short\.h5: 1 clip\(s\) of the split file have no embedding.*clip0000"):
        load_probe_data(tmp_path / "short.h5", tmp_path / "split.csv")
