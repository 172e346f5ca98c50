"""Classification metrics of the probes, in plain numpy.

UAR (unweighted average recall) is the study's metric: the mean over classes of each class's
recall. It follows scikit-learn's ``recall_score(y_true, y_pred, average="macro")`` exactly:
the classes averaged over are those present in the truth *or* the predictions of the evaluated
set; a class that is predicted but absent from the truth has recall 0 (sklearn's
``zero_division`` default), which lowers the average.

The bootstrap helpers evaluate UAR on many resamples at once (no Python loop over resamples),
which is what makes 1000-resample confidence intervals per layer and seed cheap.
"""

from __future__ import annotations

import numpy as np


def _as_label_array(values, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class indices, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} holds a negative class index ({arr.min()})")
    return arr.astype(np.int64, copy=False)


def _check_pair(y_true, y_pred):
    y_true = _as_label_array(y_true, "y_true")
    y_pred = _as_label_array(y_pred, "y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {y_true.shape[0]} vs {y_pred.shape[0]}")
    if y_true.size == 0:
        raise ValueError("cannot compute a recall on an empty set of clips")
    return y_true, y_pred


def per_class_recall(y_true, y_pred, n_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(recall [C], present [C] bool)`` for class indices ``0..C-1``.

    ``present`` marks the classes that occur in the truth or the predictions; the recall of a
    class absent from the truth is 0.
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    n_classes = int(max(y_true.max(), y_pred.max()) + 1) if n_classes is None else int(n_classes)
    support = np.bincount(y_true, minlength=n_classes)
    predicted = np.bincount(y_pred, minlength=n_classes)
    hits = np.bincount(y_true[y_true == y_pred], minlength=n_classes)
    if support.shape[0] > n_classes or predicted.shape[0] > n_classes:
        raise ValueError(f"class index out of range for n_classes={n_classes}")
    recall = np.divide(hits, support, out=np.zeros(n_classes, dtype=np.float64), where=support > 0)
    return recall, (support > 0) | (predicted > 0)


def uar(y_true, y_pred) -> float:
    """Unweighted average recall (macro recall), as ``sklearn.metrics.recall_score(average="macro")``."""
    recall, present = per_class_recall(y_true, y_pred)
    return float(recall[present].mean())


def confusion_counts(y_true, y_pred, n_classes: int) -> np.ndarray:
    """Return the confusion matrix ``[C_true, C_pred]`` of counts."""
    y_true, y_pred = _check_pair(y_true, y_pred)
    flat = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    if flat.shape[0] > n_classes * n_classes:
        raise ValueError(f"class index out of range for n_classes={n_classes}")
    return flat.reshape(n_classes, n_classes)


def bootstrap_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    """Return ``[n_boot, n]`` indices drawn with replacement from ``0..n-1`` (seeded)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(n_boot, n), dtype=np.int64)


def uar_of_resamples(y_true, y_pred, indices: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    """UAR of each resample: ``indices [B, m]`` pick clips of ``y_true``/``y_pred`` -> ``[B]``.

    Per resample the classes averaged over are those present in that resample's truth or
    predictions, exactly as :func:`uar` on the resampled arrays.
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    n_classes = int(max(y_true.max(), y_pred.max()) + 1) if n_classes is None else int(n_classes)
    indices = np.asarray(indices, dtype=np.int64)
    if indices.ndim != 2:
        raise ValueError(f"indices must be [n_resamples, m], got shape {indices.shape}")
    n_boot = indices.shape[0]
    t = y_true[indices]  # [B, m]
    p = y_pred[indices]  # [B, m]
    row = np.arange(n_boot, dtype=np.int64)[:, None] * n_classes
    size = n_boot * n_classes
    support = np.bincount((row + t).ravel(), minlength=size).reshape(n_boot, n_classes)
    predicted = np.bincount((row + p).ravel(), minlength=size).reshape(n_boot, n_classes)
    hits = np.bincount((row + t)[t == p], minlength=size).reshape(n_boot, n_classes)
    recall = np.divide(hits, support, out=np.zeros((n_boot, n_classes)), where=support > 0)
    present = (support > 0) | (predicted > 0)
    return (recall * present).sum(axis=1) / present.sum(axis=1)


def percentile_interval(samples: np.ndarray, level: float = 0.95, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return the two-sided percentile interval ``(low, high)`` of ``samples`` along ``axis``."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must lie in (0, 1), got {level}")
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(samples, [alpha, 1.0 - alpha], axis=axis)
    return low, high


def bootstrap_uar_ci(y_true, y_pred, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of UAR, resampling clips with replacement."""
    y_true, y_pred = _check_pair(y_true, y_pred)
    samples = uar_of_resamples(y_true, y_pred, bootstrap_indices(y_true.shape[0], n_boot, seed))
    low, high = percentile_interval(samples, level)
    return float(low), float(high)
