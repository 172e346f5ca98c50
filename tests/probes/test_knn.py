"""The knn probe equals scikit-learn on z-scored features."""

import numpy as np

from bioprobe.probes.config import resolve_probe_config
from bioprobe.probes.train import fit_probe

from .toy import probe_data, synthetic


def test_knn_matches_sklearn_on_zscored_features():
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler

    features, labels, split = synthetic()
    cfg = resolve_probe_config("knn", {"type": "knn", "k": 7})
    result = fit_probe(probe_data(features, labels, split, [1, 2]), cfg)
    train, test = split == "train", split == "test"
    for column, layer in enumerate([1, 2]):
        scaler = StandardScaler().fit(features[train, layer])
        knn = KNeighborsClassifier(n_neighbors=7).fit(scaler.transform(features[train, layer]), labels[train])
        expected = knn.predict_proba(scaler.transform(features[test, layer]))
        np.testing.assert_allclose(result.posteriors["test"][0, column], expected, atol=1e-5)
