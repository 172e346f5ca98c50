"""Per-class recall against layer: which calls each layer of a model separates.

One heatmap per (dataset, model): rows are classes sorted by their test support (largest first,
the support in brackets), columns the layers (CNN, 1..12), cells the test recall (mean over
seeds). The layer chosen on validation is outlined.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..tables import layer_label
from .style import PNG_DPI, ONE_COLUMN_IN, TWO_COLUMNS_IN, save_figure, subplots


def plot_per_class(recall: pd.DataFrame, support: pd.Series, title: str, paths, best_layer: int | None = None,
                   handcrafted: bool = False, dpi: int = PNG_DPI) -> dict:
    """Draw the heatmap; returns ``{"classes": [...], "layers": [...]}`` in drawn order."""
    if recall.empty:
        raise ValueError(f"{title}: no classes to draw")
    layers = [int(c) for c in recall.columns]
    n_classes = len(recall)
    wide = len(layers) > 16 or n_classes > 40
    height = max(2.2, 0.11 * n_classes + 1.1)
    fig, axes = subplots(1, 1, columns=2 if wide else 1, panel_height=height - 0.5)
    ax = axes[0][0]
    image = ax.imshow(recall.to_numpy(dtype=float), cmap="viridis", vmin=0, vmax=1, aspect="auto",
                      interpolation="nearest")
    ax.set_xticks(range(len(layers)), [layer_label(x, handcrafted) for x in layers],
                  rotation=90 if handcrafted and len(layers) > 3 else 0)
    ax.set_yticks(range(n_classes), [f"{c} ({int(support[c])})" for c in recall.index])
    ax.tick_params(length=0, labelsize=6 if n_classes <= 16 else 5)
    ax.set_xlabel("feature set" if handcrafted else "layer")
    ax.set_ylabel("class (test clips)")
    for spine in ax.spines.values():
        spine.set_visible(False)
    if best_layer is not None and best_layer in layers:
        col = layers.index(best_layer)
        _outline(ax, col, n_classes)
    bar = fig.colorbar(image, ax=ax, fraction=0.05, pad=0.03)
    bar.set_label("test recall")
    bar.ax.tick_params(labelsize=6)
    ax.set_title(title + ("" if best_layer is None else "\n(outlined: layer chosen on validation)"), fontsize=7)
    fig.tight_layout()
    save_figure(fig, paths, dpi)
    return {"classes": list(recall.index), "layers": layers, "width_in": TWO_COLUMNS_IN if wide else ONE_COLUMN_IN}


def _outline(ax, col: int, n_rows: int) -> None:
    """A white-and-black frame: visible on the light and on the dark end of the colour map."""
    from matplotlib.patches import Rectangle

    for color, width, style in (("white", 2.4, "-"), ("black", 1.0, (0, (2, 1.5)))):
        ax.add_patch(Rectangle((col - 0.5, -0.5), 1, n_rows, fill=False, edgecolor=color, linewidth=width,
                               linestyle=style, clip_on=False))


def recall_summary(recall: pd.DataFrame) -> np.ndarray:
    """Mean recall per layer (the UAR of the layer, when every class has test clips)."""
    return np.nanmean(recall.to_numpy(dtype=float), axis=0)
