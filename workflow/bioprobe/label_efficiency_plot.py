"""The label-efficiency figure of a dataset: the best layer's test UAR against k labelled clips per
class, per model (and fusion), and which layer is best at each k.

At each k the best layer of a model is the one with the highest mean *validation* UAR over the
draws (ties: the lowest layer), as everywhere in bioprobe; its test UAR is shown as the mean
over draws with a band of one standard deviation.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from .fileio import atomic_path
from .probes.label_efficiency import ALL
from .tables import layer_label




def best_layer_by_k(table: pd.DataFrame) -> pd.DataFrame:
    """Per (model, probe, k): the validation-best layer and its test UAR over draws.

    Columns: ``model, probe, k, layer, uar_mean, uar_std, val_uar_mean, n_draws, n_train``.
    """
    rows = []
    for (model, probe, k), sub in table.groupby(["model", "probe", table["k"].astype(str)], sort=False):
        by_layer = sub.groupby("layer").agg(val=("val_uar", "mean"), uar=("uar", "mean"), sd=("uar", "std"),
                                            n=("draw", "nunique"), n_train=("n_train", "first")).sort_index()
        layer = int(by_layer["val"].idxmax())  # first maximum: the lowest layer on ties
        best = by_layer.loc[layer]
        rows.append({"model": model, "probe": probe, "k": ALL if k == ALL else int(k), "layer": layer,
                     "uar_mean": float(best["uar"]), "uar_std": float(best["sd"]) if best["n"] > 1 else np.nan,
                     "val_uar_mean": float(best["val"]), "n_draws": int(best["n"]), "n_train": int(best["n_train"])})
    return pd.DataFrame(rows, columns=["model", "probe", "k", "layer", "uar_mean", "uar_std", "val_uar_mean", "n_draws", "n_train"])


def _k_positions(ks) -> dict:
    """x position of each k: log2(k), and 'all' one step right of the largest k."""
    numeric = sorted(k for k in ks if k != ALL)
    pos = {k: float(np.log2(k)) for k in numeric}
    if ALL in set(ks):
        pos[ALL] = (max(pos.values()) + 1.0) if pos else 0.0
    return pos


def plot_label_efficiency(table: pd.DataFrame, dataset: str, models: Mapping[str, dict], out_path) -> None:
    """Two panels: (a) best layer's test UAR [%] against k per model, (b) the best layer at each k."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = best_layer_by_k(table[table["dataset"] == dataset])
    pos = _k_positions(list(best["k"]))
    order = [m for m in models if m in set(best["model"])] + sorted(set(best["model"]) - set(models))
    fig, (ax_uar, ax_layer) = plt.subplots(1, 2, figsize=(11, 4))
    markers = "os^Dv<>pPX*h"
    for i, model in enumerate(order):
        rows = best[best["model"] == model].assign(x=lambda f: f["k"].map(pos)).sort_values("x")
        label = (models.get(model) or {}).get("label", model)
        color = f"C{i % 10}"
        x, y, s = rows["x"].to_numpy(), 100 * rows["uar_mean"].to_numpy(), 100 * rows["uar_std"].fillna(0).to_numpy()
        fused = (rows["layer"] < 0).all()
        ax_uar.plot(x, y, marker=markers[i % len(markers)], color=color, label=label + (" (fusion)" if fused else ""),
                    linestyle="--" if fused else "-", linewidth=1.3, markersize=4)
        ax_uar.fill_between(x, np.clip(y - s, 0, 100), np.clip(y + s, 0, 100), color=color, alpha=0.12, linewidth=0)
        if not fused:
            offset = (i - (len(order) - 1) / 2) * 0.06  # side by side where models agree
            ax_layer.plot(x + offset, rows["layer"], marker=markers[i % len(markers)], color=color, label=label,
                          linewidth=1, markersize=5)
    ticks = sorted(pos, key=pos.get)
    for ax in (ax_uar, ax_layer):
        ax.set_xticks([pos[k] for k in ticks], [str(k) for k in ticks])
        ax.set_xlabel("labelled training clips per class (k)")
        ax.grid(alpha=0.3)
    ax_uar.set_ylabel("test UAR [%] of the best layer (val)")
    ax_uar.set_title(f"{dataset}: label efficiency")
    ax_uar.legend(fontsize=7, loc="lower right")
    layers = sorted(set(best.loc[best["layer"] >= 0, "layer"]))
    if layers:
        span = range(min(layers), max(layers) + 1)
        ax_layer.set_yticks(list(span), [layer_label(v) for v in span])
    ax_layer.set_ylabel("best layer (highest mean val UAR)")
    ax_layer.set_title(f"{dataset}: which layer is best at each k")
    ax_layer.legend(fontsize=7, loc="best")
    fig.tight_layout()
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format=str(out_path).rsplit(".", 1)[-1], dpi=150)
    plt.close(fig)
