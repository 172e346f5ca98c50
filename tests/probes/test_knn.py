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


def test_knn_distance_weights_and_cosine_metric_match_sklearn():
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler

    features, labels, split = synthetic(n=200)
    train, test = split == "train", split == "test"
    scaler = StandardScaler().fit(features[train, 1])
    x_train, x_test = scaler.transform(features[train, 1]), scaler.transform(features[test, 1])
    for options in ({"weights": "distance"}, {"metric": "cosine"}):
        cfg = resolve_probe_config("knn", {"type": "knn", "k": 5, **options})
        result = fit_probe(probe_data(features, labels, split, [1]), cfg)
        knn = KNeighborsClassifier(n_neighbors=5, algorithm="brute", **options).fit(x_train, labels[train])
        np.testing.assert_allclose(result.posteriors["test"][0, 0], knn.predict_proba(x_test), atol=1e-5, err_msg=str(options))
