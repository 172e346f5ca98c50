"""Published numbers: reading them, matching them to our models, and the published-vs-reproduced figure.

The published-numbers file (``figures.published`` in the config; the study's is
``resources/published/sarkar2025_best_layer.csv``) has the columns ``dataset, model, uar``
(UAR in %), and may hold ``#`` comment lines. A row applies to a dataset whose config key or
``type`` equals its ``dataset``, and to the model whose ``published_as:`` (or, without one, whose
key) equals its ``model``: never by label, so renaming a model for a figure changes no match.
A fusion matches a row with its own key, else the row ``fusion`` (the study's single, undefined
"Fusion" row, shown for reference).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .style import PNG_DPI, ModelStyle, legend_below, save_figure, subplots

STUDY_FUSION_KEY = "fusion"


def read_published(path: str | Path) -> pd.DataFrame:
    """The published-numbers file, checked: columns ``dataset, model, uar``, UAR in [0, 100]."""
    try:
        frame = pd.read_csv(path, comment="#", skipinitialspace=True)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{path}: published-numbers file not found (config figures.published)") from err
    missing = {"dataset", "model", "uar"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: published-numbers file lacks columns {sorted(missing)} (needs dataset, model, uar)")
    frame = frame.assign(dataset=frame["dataset"].astype(str).str.strip(), model=frame["model"].astype(str).str.strip(),
                         uar=pd.to_numeric(frame["uar"], errors="coerce"))
    bad = frame[~frame["uar"].between(0, 100)]  # NaN (empty or not a number) included
    if len(bad):
        raise ValueError(f"{path}: UAR must be in % (0-100); row(s) {bad.index.tolist()} are not")
    dupes = frame[frame.duplicated(["dataset", "model"], keep=False)]
    if len(dupes):
        raise ValueError(f"{path}: more than one number for {sorted(set(zip(dupes['dataset'], dupes['model'])))}")
    if len(frame) and (frame["uar"] <= 1).all() and (frame["uar"] > 0).any():
        # fractions (0.642 for 64.2 %) would pass the range check and show every difference ~+50 points
        raise ValueError(f"{path}: every UAR is at most 1: these look like fractions; give them in % (64.2, not 0.642)")
    return frame


def published_key(name: str, models: Mapping[str, dict]) -> str:
    """The key a model's published numbers are filed under: ``published_as`` or the model's key."""
    return str((models.get(name) or {}).get("published_as") or name)


def match_published(
    rows: pd.DataFrame,
    published: pd.DataFrame,
    models: Mapping[str, dict],
    fusions: Mapping[str, dict],
    dataset_types: Mapping[str, str],
) -> pd.Series:
    """Published UAR [%] for each (``dataset``, ``model``) row of ``rows``; NaN where none."""
    table = {(r.dataset, r.model): float(r.uar) for r in published.itertuples()}

    def lookup(dataset: str, model: str) -> float:
        keys = [published_key(model, models)] if model in models else [model, STUDY_FUSION_KEY] if model in fusions else [model]
        for d in (dataset, dataset_types.get(dataset)):
            for k in keys:
                if (d, k) in table:
                    return table[(d, k)]
        return np.nan

    return pd.Series([lookup(d, m) for d, m in zip(rows["dataset"], rows["model"])], index=rows.index, dtype=float)


def plot_published_vs_reproduced(best: pd.DataFrame, styles: Mapping[str, ModelStyle], paths,
                                 datasets: Sequence[str] | None = None, dpi: int = PNG_DPI,
                                 dataset_labels: Mapping[str, str] | None = None) -> dict:
    """Ours against published, per model and dataset; one panel per dataset with published numbers.

    ``best`` is the best-layer table (``best_layer.csv``): ``test_uar`` at the layer chosen on
    validation with its CI (``test_ci_low``/``test_ci_high``) as error bars, ``test_best_uar``
    (the best layer on test, as the study chose) as an open marker, ``published_uar`` on x.
    Returns ``{dataset: [models drawn]}``.
    """
    rows = best[np.isfinite(best["published_uar"])]
    datasets = [d for d in (datasets or list(dict.fromkeys(best["dataset"]))) if d in set(rows["dataset"])]
    fig, axes = subplots(1, max(1, len(datasets)), panel_height=2.3)
    drawn = {}
    if not datasets:
        ax = axes[0][0]
        ax.text(0.5, 0.5, "no published numbers for these datasets and models", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
    for i, (ax, dataset) in enumerate(zip(axes[0], datasets)):
        sub = rows[rows["dataset"] == dataset]
        values = [sub["published_uar"].to_numpy()]
        drawn[dataset] = []
        for r in sub.itertuples():
            style = styles.get(r.model) or ModelStyle(r.model, "", "#000000", "o", "-")
            y = 100 * r.test_uar
            low, high = 100 * getattr(r, "test_ci_low", np.nan), 100 * getattr(r, "test_ci_high", np.nan)
            yerr = [[y - low], [high - y]] if np.isfinite(low) and np.isfinite(high) else None
            ax.errorbar(r.published_uar, y, yerr=yerr, color=style.color, marker=style.marker, markersize=4,
                        linestyle="none", elinewidth=0.8, capsize=1.5, label=style.label, zorder=3)
            if np.isfinite(getattr(r, "test_best_uar", np.nan)):
                ax.plot(r.published_uar, 100 * r.test_best_uar, marker=style.marker, markersize=4, linestyle="none",
                        markerfacecolor="none", markeredgecolor=style.color, markeredgewidth=0.7, zorder=2)
                values.append([100 * r.test_best_uar])
            values.append([v for v in (y, low, high) if np.isfinite(v)])
            drawn[dataset].append(r.model)
        flat = np.concatenate([np.ravel(v) for v in values])
        lo, hi = float(np.min(flat)), float(np.max(flat))
        pad = max(1.0, 0.08 * (hi - lo))
        lims = (lo - pad, hi + pad)
        ax.plot(lims, lims, color="#444444", linewidth=0.7, linestyle="--", zorder=1)
        ax.set_xlim(lims)
        ax.set_ylim(lims)
        ax.set_aspect("equal", adjustable="box")
        ax.set_title((dataset_labels or {}).get(dataset, dataset))
        ax.set_xlabel("published UAR [%]")
        if i == 0:
            ax.set_ylabel("reproduced test UAR [%]")
        ax.grid(True)
    from matplotlib.lines import Line2D

    keys = [
        Line2D([], [], color="#444444", marker="o", linestyle="none", markersize=4, label="layer chosen on validation (95% CI)"),
        Line2D([], [], color="#444444", marker="o", linestyle="none", markersize=4, markerfacecolor="none",
               label="best layer on test"),
        Line2D([], [], color="#444444", linestyle="--", linewidth=0.7, label="y = x"),
    ]
    legend_below(fig, axes[0], extra=keys if datasets else ())
    save_figure(fig, paths, dpi)
    return drawn

