"""UAR and its bootstrap helpers against scikit-learn's macro recall."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import confusion_matrix, recall_score

from bioprobe import metrics


def sklearn_uar(y_true, y_pred):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return recall_score(y_true, y_pred, average="macro")


def test_uar_matches_sklearn_on_random_cases():
    rng = np.random.default_rng(0)
    for case in range(150):
        n_classes = rng.integers(1, 12)
        n = rng.integers(1, 60)
        y_true = rng.integers(0, n_classes, n)
        # predictions sometimes use classes absent from the truth (they count as recall 0)
        y_pred = np.where(rng.random(n) < 0.5, y_true, rng.integers(0, n_classes + 2, n))
        assert metrics.uar(y_true, y_pred) == pytest.approx(sklearn_uar(y_true, y_pred), abs=1e-12), case


def test_uar_predicted_but_absent_class_counts_zero():
    # classes 0 and 1 in the truth, recall 1 and 0.5; class 2 only predicted -> recall 0
    y_true = [0, 0, 1, 1]
    y_pred = [0, 0, 1, 2]
    assert metrics.uar(y_true, y_pred) == pytest.approx((1.0 + 0.5 + 0.0) / 3)


def test_resampled_uar_equals_uar_of_each_resample():
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 6, 80)
    y_pred = np.where(rng.random(80) < 0.6, y_true, rng.integers(0, 7, 80))
    idx = metrics.bootstrap_indices(80, 50, seed=3)
    fast = metrics.uar_of_resamples(y_true, y_pred, idx)
    slow = [sklearn_uar(y_true[i], y_pred[i]) for i in idx]
    np.testing.assert_allclose(fast, slow, atol=1e-12)


def test_bootstrap_ci_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(2)
    y_true = rng.integers(0, 4, 400)
    y_pred = np.where(rng.random(400) < 0.7, y_true, rng.integers(0, 4, 400))
    low, high = metrics.bootstrap_uar_ci(y_true, y_pred, n_boot=500, seed=7)
    assert (low, high) == metrics.bootstrap_uar_ci(y_true, y_pred, n_boot=500, seed=7)
    assert low < metrics.uar(y_true, y_pred) < high
    assert 0.02 < high - low < 0.2  # about 4 standard errors of a proportion over 100 clips per class


def test_confusion_counts_matches_sklearn():
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 5, 100)
    y_pred = rng.integers(0, 5, 100)
    np.testing.assert_array_equal(metrics.confusion_counts(y_true, y_pred, 5), confusion_matrix(y_true, y_pred, labels=range(5)))


@pytest.mark.parametrize(
    "y_true, y_pred, message",
    [([0, 1], [0], "differ in length"), ([], [], "empty"), ([0.5, 1.0], [0, 1], "integer"), ([-1, 0], [0, 0], "negative")],
)
def test_bad_input_is_named(y_true, y_pred, message):
    with pytest.raises(ValueError, match=message):
        metrics.uar(np.asarray(y_true), np.asarray(y_pred))


def test_bootstrap_indices_draw_every_clip_uniformly_and_follow_the_seed():
    idx = metrics.bootstrap_indices(4, 2000, seed=0)
    assert idx.shape == (2000, 4)
    counts = np.bincount(idx.ravel(), minlength=5)
    # 8000 draws over 4 clips: 2000 each, standard deviation ~39; no index outside 0..3
    assert counts[4] == 0 and counts[:4].min() > 1800 and counts[:4].max() < 2200
    assert not np.array_equal(metrics.bootstrap_indices(50, 10, seed=1), metrics.bootstrap_indices(50, 10, seed=2))


def test_bootstrap_ci_uses_its_seed_and_the_two_sided_percentiles():
    rng = np.random.default_rng(5)
    y_true = rng.integers(0, 3, 60)
    y_pred = np.where(rng.random(60) < 0.6, y_true, rng.integers(0, 3, 60))
    intervals = []
    for seed in (7, 8):
        samples = [sklearn_uar(y_true[i], y_pred[i]) for i in np.random.default_rng(seed).integers(0, 60, size=(200, 60))]
        expected = (np.quantile(samples, 0.025), np.quantile(samples, 0.975))
        intervals.append(metrics.bootstrap_uar_ci(y_true, y_pred, n_boot=200, seed=seed))
        assert intervals[-1] == pytest.approx(expected, abs=1e-12)
    assert intervals[0] != intervals[1]
