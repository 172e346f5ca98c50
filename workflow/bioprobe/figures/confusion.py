"""Study figure 4: the confusion matrix of a fusion (or any probe) on one dataset.

Row-normalised (each row is the recall of its true class), class names on both axes. With at most
``MAX_ANNOTATED`` classes the figure is one column wide and every cell shows its count; with more
(Watkins: 32 species) it is two columns wide and the counts are left out.
"""

from __future__ import annotations

import numpy as np

from ..tables import layer_label
from .style import PNG_DPI, ONE_COLUMN_IN, TWO_COLUMNS_IN, save_figure, subplots

MAX_ANNOTATED = 12


def row_normalise(counts: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (recall per true class); an empty row stays 0."""
    counts = np.asarray(counts, dtype=float)
    sums = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, sums, out=np.zeros_like(counts), where=sums > 0)


def plot_confusion(classes: list[str], counts: np.ndarray, title: str, paths, info: dict | None = None, dpi: int = PNG_DPI) -> dict:
    """Draw one confusion matrix; returns what was drawn (``annotated``, ``width_in``)."""
    n = len(classes)
    if counts.shape != (n, n):
        raise ValueError(f"confusion matrix has shape {counts.shape}, expected ({n}, {n}) for {n} classes")
    annotated = n <= MAX_ANNOTATED
    columns = 1 if annotated else 2
    side = (ONE_COLUMN_IN if annotated else TWO_COLUMNS_IN) * 0.82
    fig, axes = subplots(1, 1, columns=columns, panel_height=side)
    ax = axes[0][0]
    recall = row_normalise(counts)
    image = ax.imshow(recall, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    long_names = max(map(len, classes)) > 3
    ax.set_xticks(range(n), classes, rotation=(45 if annotated else 90) if long_names else 0,
                  ha="right" if long_names and annotated else "center", rotation_mode="anchor" if annotated else "default")
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.tick_params(length=0, labelsize=6.5 if annotated else 5.5)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if annotated:
        for i in range(n):
            for j in range(n):
                if counts[i, j]:
                    ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=6 if n <= 8 else 5,
                            color="black" if recall[i, j] > 0.6 else "white")
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
    bar.set_label("recall (row-normalised)")
    bar.ax.tick_params(labelsize=6)
    info = info or {}
    subtitle = []
    if "layer" in info and int(info["layer"]) >= 0:
        subtitle.append(f"layer {layer_label(info['layer'])}")
    if "n_seeds" in info:
        subtitle.append(_seeds(int(info["n_seeds"]), annotated))
    total = int(np.asarray(counts).sum())
    subtitle.append(f"{total} test predictions")
    ax.set_title(title + "\n" + ", ".join(subtitle), fontsize=7)
    fig.tight_layout()
    save_figure(fig, paths, dpi)
    return {"annotated": annotated, "width_in": ONE_COLUMN_IN if annotated else TWO_COLUMNS_IN}


def _seeds(n: int, annotated: bool) -> str:
    seeds = "1 seed" if n == 1 else f"{n} seeds"
    return f"counts summed over {seeds}" if annotated and n > 1 else seeds
