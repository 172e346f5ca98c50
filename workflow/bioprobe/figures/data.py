"""Reading the pipeline's result files for figures: layer curves, confusion counts, per-class recall.

Only the files are read (``scores.csv``, ``confusion.csv``, ``predictions.h5``), with pandas and
h5py: figures do not depend on the code that trained the probes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from ..tables import read_scores

CURVE_KEYS = ["dataset", "model", "probe", "layer"]


def layer_curves(scores: pd.DataFrame) -> pd.DataFrame:
    """Test UAR per (dataset, model, probe, layer) with the band a figure draws around it.

    Columns: ``uar`` (mean over seeds), ``low``/``high`` (the band), ``band`` (``seeds``: mean
    ± one standard deviation over the seeds, when there are several; ``bootstrap``: the bootstrap
    CI of ``scores.csv`` for a single seed; ``none``), ``n_seeds``, and ``val_uar`` (mean
    validation UAR, which decides the best layer). All in [0, 1].
    """
    if scores.empty:
        return pd.DataFrame(columns=[*CURVE_KEYS, "uar", "low", "high", "band", "n_seeds", "val_uar"])
    test = scores[scores["split"] == "test"]
    agg = test.groupby(CURVE_KEYS, sort=True)["uar"].agg(uar="mean", std="std", n_seeds="count").reset_index()
    if "ci_low" in test.columns:
        cis = test.groupby(CURVE_KEYS)[["ci_low", "ci_high"]].mean().reset_index()
        agg = agg.merge(cis, on=CURVE_KEYS, how="left")
    else:
        agg["ci_low"] = agg["ci_high"] = np.nan
    several = agg["n_seeds"] > 1
    has_ci = agg["ci_low"].notna() & agg["ci_high"].notna()
    agg["low"] = np.where(several, agg["uar"] - agg["std"].fillna(0), np.where(has_ci, agg["ci_low"], agg["uar"]))
    agg["high"] = np.where(several, agg["uar"] + agg["std"].fillna(0), np.where(has_ci, agg["ci_high"], agg["uar"]))
    agg["low"], agg["high"] = agg["low"].clip(0, 1), agg["high"].clip(0, 1)
    agg["band"] = np.where(several, "seeds", np.where(has_ci, "bootstrap", "none"))
    val = scores[scores["split"] == "val"].groupby(CURVE_KEYS)["uar"].mean().rename("val_uar").reset_index()
    agg = agg.merge(val, on=CURVE_KEYS, how="left")
    return agg.drop(columns=["std", "ci_low", "ci_high"])


def read_curves(paths: Iterable[str | Path]) -> pd.DataFrame:
    return layer_curves(read_scores(paths))


def band_description(curves: pd.DataFrame) -> str:
    """What the bands of ``curves`` are, for a caption or a figure note."""
    kinds = set(curves["band"]) - {"none"}
    if kinds == {"seeds"}:
        n = sorted(set(curves.loc[curves["band"] == "seeds", "n_seeds"]))
        return f"band: ± 1 std over {'/'.join(map(str, n))} seeds"
    if kinds == {"bootstrap"}:
        return "band: 95% bootstrap CI over test clips (one seed)"
    if kinds:
        return "band: ± 1 std over seeds, or the bootstrap CI where one seed"
    return "no band (no seeds or CI to draw one from)"


def read_confusion(path: str | Path) -> tuple[list[str], np.ndarray, dict]:
    """Classes (in file order), the count matrix [true, predicted], and ``layer``/``n_seeds``/``model``."""
    frame = pd.read_csv(path)
    need = {"true_label", "predicted_label", "count"}
    if not need <= set(frame.columns):
        raise ValueError(f"{path}: confusion file lacks columns {sorted(need - set(frame.columns))}")
    classes = list(dict.fromkeys([*frame["true_label"].astype(str), *frame["predicted_label"].astype(str)]))
    matrix = (
        frame.assign(true_label=frame["true_label"].astype(str), predicted_label=frame["predicted_label"].astype(str))
        .pivot_table(index="true_label", columns="predicted_label", values="count", aggfunc="sum", fill_value=0)
        .reindex(index=classes, columns=classes, fill_value=0)
        .to_numpy()
    )
    info = {k: frame[k].iloc[0] for k in ("model", "layer", "n_seeds", "dataset", "probe") if k in frame.columns and len(frame)}
    return classes, matrix, info


def per_class_recall(path: str | Path) -> tuple[pd.DataFrame, pd.Series, int | None]:
    """Test recall per class and layer (mean over seeds) from a ``predictions.h5``.

    Returns (recall [classes x layers] with classes sorted by test support, largest first, and
    the layers as columns; the test support of each class; the layer chosen on validation, from
    the file's ``best_layer`` attribute, or None). Layer -1 (all layers) is kept if present.
    """
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            classes = [c.decode() if isinstance(c, bytes) else str(c) for c in h5["classes"][:]]
            layers = [int(x) for x in h5["layers"][:]]
            y_true = h5["test/y_true"][:].astype(np.int64)
            y_pred = h5["test/y_pred"][:].astype(np.int64)  # [seeds, layers, clips]
            best = h5.attrs.get("best_layer")
    except (KeyError, OSError) as err:
        raise ValueError(f"{path}: not a predictions file with test predictions ({err})") from err
    if y_pred.ndim != 3 or y_pred.shape[1] != len(layers) or y_pred.shape[2] != len(y_true):
        raise ValueError(f"{path}: test/y_pred has shape {y_pred.shape}, expected [seeds, {len(layers)}, {len(y_true)}]")
    support = np.bincount(y_true, minlength=len(classes))
    recall = np.full((len(classes), len(layers)), np.nan)
    for c in range(len(classes)):
        mask = y_true == c
        if mask.any():
            recall[c] = (y_pred[:, :, mask] == c).mean(axis=(0, 2))
    order = sorted(range(len(classes)), key=lambda c: (-support[c], classes[c]))
    frame = pd.DataFrame(recall[order], index=[classes[c] for c in order], columns=layers)
    best = None if best is None else int(best)
    return frame, pd.Series(support[order], index=frame.index, name="support"), best
