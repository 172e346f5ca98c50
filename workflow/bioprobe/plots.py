"""The study's figures: layer-wise UAR per dataset."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from .fileio import atomic_path
from .tables import layer_label, layer_summary


def plot_layerwise(scores: pd.DataFrame, dataset: str, models: Mapping[str, dict], out_path) -> None:
    """Test UAR [%] per layer, one line per model (mean over seeds, band = ± std), one panel per probe.

    Layer 0 is labelled "CNN" (the transformer input); layer-free probes (layer < 0, such as a
    learned weighted sum of all layers) are drawn as dashed horizontal lines.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = layer_summary(scores[scores["dataset"] == dataset])
    test = summary[summary["split"] == "test"]
    probes = sorted(test["probe"].unique()) or ["(none)"]
    fig, axes = plt.subplots(1, len(probes), figsize=(5.5 * len(probes), 4), squeeze=False)
    markers = "os^Dv<>pPX*h"
    for ax, probe in zip(axes[0], probes):
        sub = test[test["probe"] == probe]
        max_layer = 0
        for i, model in enumerate(m for m in models if m in set(sub["model"])):
            rows = sub[sub["model"] == model].sort_values("layer")
            label = models[model].get("label", model)
            layered = rows[rows["layer"] >= 0]
            color = f"C{i % 10}"
            if len(layered):
                x, y, s = layered["layer"].to_numpy(), 100 * layered["uar_mean"].to_numpy(), 100 * layered["uar_std"].to_numpy()
                baseline = models[model].get("group") == "baseline"  # floors: thin dotted lines
                ax.plot(x, y, marker=markers[i % len(markers)], color=color, label=label, markersize=3 if baseline else 4,
                        linewidth=0.9 if baseline else 1.4, linestyle=":" if baseline else "-")
                if np.any(s > 0):
                    ax.fill_between(x, np.clip(y - s, 0, 100), np.clip(y + s, 0, 100), color=color, alpha=0.15, linewidth=0)
                max_layer = max(max_layer, int(x.max()))
            for _, r in rows[rows["layer"] < 0].iterrows():
                ax.axhline(100 * r["uar_mean"], color=color, linestyle="--", linewidth=1, label=f"{label} (all layers)")
        ticks = list(range(max_layer + 1))
        ax.set_xticks(ticks, [layer_label(t) for t in ticks])
        ax.set_xlabel("layer")
        ax.set_ylabel("test UAR [%]")
        ax.set_title(f"{dataset}: probe {probe}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format=str(out_path).rsplit(".", 1)[-1], dpi=150)
    plt.close(fig)
