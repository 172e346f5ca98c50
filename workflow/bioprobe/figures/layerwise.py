"""Layer-wise test UAR figures: every model per dataset, study figure 1 and study figure 2.

x axis: the layer, 0 labelled "CNN" (the transformer input), 1..12 the transformer layers; y: test
UAR [%] (mean over seeds) with a band (see :func:`bioprobe.figures.data.layer_curves`). Floor
models (baselines) are drawn faint under the curves; a model without transformer layers
(log-mel, MFCC) or a probe over all layers (layer -1) is a horizontal line at the test UAR of
its validation-chosen feature set.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..tables import layer_label
from .data import band_description
from .style import PNG_DPI, ModelStyle, legend_below, save_figure, subplots


MAX_BANDED = 4


def _flat_value(rows: pd.DataFrame) -> float:
    """Test UAR of the validation-best row (ties: lowest layer)."""
    key = rows["val_uar"].fillna(-1.0) if "val_uar" in rows else rows["uar"]
    best = rows.assign(_key=key).sort_values(["_key", "layer"], ascending=[False, True]).iloc[0]
    return float(best["uar"])


def draw_layer_panel(
    ax,
    curves: pd.DataFrame,
    names: Sequence[str],
    styles: Mapping[str, ModelStyle],
    floor: Sequence[str] = (),
    flat: Iterable[str] = (),
    bands: bool = True,
) -> list[str]:
    """Draw the curves of ``names`` (and, faint, of ``floor``) of one dataset and probe on ``ax``.

    ``flat``: models drawn as a horizontal line (no transformer layers); ``bands``: draw the
    bands of the compared models. Returns the models drawn.
    """
    flat = set(flat)
    drawn, lines, max_layer = [], [], 0
    # Floor models are drawn after the compared ones (so the legend lists these first) but below them.
    for name in [*[n for n in names if n not in floor], *floor]:
        rows = curves[curves["model"] == name].sort_values("layer")
        if rows.empty:
            continue
        faint = name in floor
        style = styles[name]
        layered = rows[rows["layer"] >= 0]
        if name in flat or layered.empty:
            lines.append((name, 100 * _flat_value(rows), faint))
            drawn.append(name)
            continue
        x = layered["layer"].to_numpy()
        y, low, high = (100 * layered[c].to_numpy() for c in ("uar", "low", "high"))
        ax.plot(x, y, zorder=2 if faint else 3, **style.line_kwargs(faint))
        if bands and not faint and np.any(high - low > 0):
            ax.fill_between(x, low, high, color=style.color, alpha=0.15, linewidth=0, zorder=1)
        all_layers = rows[rows["layer"] < 0]
        for _, r in all_layers.iterrows():
            ax.axhline(100 * r["uar"], color=style.color, linestyle=(0, (1, 1)), linewidth=0.8,
                       label=f"{style.label} (all layers)")
        max_layer = max(max_layer, int(x.max()))
        drawn.append(name)
    for name, value, faint in lines:  # no layers: a horizontal line, named at its right end
        kw = styles[name].line_kwargs(faint)
        kw.pop("marker")
        ax.axhline(value, zorder=2 if faint else 3, **kw)
        ax.annotate(styles[name].label, (1.0, value), xycoords=("axes fraction", "data"), xytext=(-1, 1),
                    textcoords="offset points", ha="right", va="bottom", fontsize=5, color=kw["color"])
    ticks = list(range(max_layer + 1))
    ax.set_xticks(ticks, [layer_label(t) for t in ticks])
    if max_layer >= 10:  # CNN, 2, 4, ...: room for the labels at one column width
        for label in ax.get_xticklabels()[1::2]:
            label.set_visible(False)
    ax.set_xlim(-0.4, max_layer + 0.4)
    ax.grid(True, axis="y")
    return drawn


def _layer_axes(ax, first_col: bool):
    ax.set_xlabel("layer")
    if first_col:
        ax.set_ylabel("test UAR [%]")


def _note(fig, text: str) -> None:
    fig.text(0.995, 0.995, text, ha="right", va="top", fontsize=5.5, color="#555555")


def plot_layerwise(curves: pd.DataFrame, dataset: str, models: Sequence[str], styles: Mapping[str, ModelStyle],
                   paths, flat: Iterable[str] = (), floor: Sequence[str] = (), dpi: int = PNG_DPI,
                   dataset_labels: Mapping[str, str] | None = None) -> list[str]:
    """Every model on one dataset, one panel per probe. Returns the probes drawn."""
    sub = curves[curves["dataset"] == dataset]
    probes = sorted(sub["probe"].unique())
    if not probes:
        raise ValueError(f"no scores for dataset {dataset!r}: nothing to draw")
    fig, axes = subplots(1, len(probes), columns=2, panel_height=2.6, sharey=True)
    shown = [m for m in models if m not in floor]
    bands = len(shown) <= MAX_BANDED  # more overlapping bands hide the lines
    for i, (ax, probe) in enumerate(zip(axes[0], probes)):
        draw_layer_panel(ax, sub[sub["probe"] == probe], shown, styles, floor=[m for m in floor if m in models], flat=flat,
                         bands=bands)
        ax.set_title(f"{(dataset_labels or {}).get(dataset, dataset)}, probe {probe}")
        _layer_axes(ax, i == 0)
    _note(fig, band_description(sub) if bands else f"mean over seeds; no bands for more than {MAX_BANDED} models")
    legend_below(fig, axes[0])
    save_figure(fig, paths, dpi)
    return probes


def plot_compare(curves: pd.DataFrame, datasets: Sequence[str], compare: Sequence[str], floor: Sequence[str],
                 styles: Mapping[str, ModelStyle], paths, probe: str, flat: Iterable[str] = (), dpi: int = PNG_DPI,
                 dataset_labels: Mapping[str, str] | None = None) -> dict:
    """Study figure 1: the ``compare`` models layer-wise, one panel per dataset side by side.

    Returns ``{dataset: [models drawn]}``.
    """
    sub = curves[curves["probe"] == probe]
    fig, axes = subplots(1, len(datasets), panel_height=2.1)
    drawn = {}
    for i, (ax, dataset) in enumerate(zip(axes[0], datasets)):
        drawn[dataset] = draw_layer_panel(ax, sub[sub["dataset"] == dataset], compare, styles, floor=floor, flat=flat)
        ax.set_title((dataset_labels or {}).get(dataset, dataset))
        _layer_axes(ax, i == 0)
    _note(fig, band_description(sub[sub["model"].isin(compare)]))
    legend_below(fig, axes[0])
    save_figure(fig, paths, dpi)
    return drawn


def plot_fine_tuning(curves: pd.DataFrame, datasets: Sequence[str], fine_tuned: Mapping[str, Sequence[str]],
                     floor: Sequence[str], styles: Mapping[str, ModelStyle], paths, probe: str,
                     flat: Iterable[str] = (), dpi: int = PNG_DPI, dataset_labels: Mapping[str, str] | None = None) -> dict:
    """Study figure 2: each base model against its fine-tuned versions, one panel per (base, dataset).

    Rows are base models, columns datasets. Returns ``{(base, dataset): [models drawn]}``.
    """
    if not fine_tuned:
        raise ValueError("no base model with fine-tuned versions (set figures.fine_tuned, and base: on the fine-tuned models)")
    sub = curves[curves["probe"] == probe]
    fig, axes = subplots(len(fine_tuned), len(datasets), panel_height=1.9)
    drawn = {}
    for r, (base, tuned) in enumerate(fine_tuned.items()):
        for c, dataset in enumerate(datasets):
            ax = axes[r][c]
            drawn[(base, dataset)] = draw_layer_panel(ax, sub[sub["dataset"] == dataset], [base, *tuned], styles,
                                                      floor=floor, flat=flat)
            ax.set_title(f"{styles[base].label} · {(dataset_labels or {}).get(dataset, dataset)}")
            _layer_axes(ax, c == 0)
            if r < len(fine_tuned) - 1:
                ax.set_xlabel("")
    shown = [m for b, t in fine_tuned.items() for m in (b, *t)]
    _note(fig, band_description(sub[sub["model"].isin(shown)]))
    legend_below(fig, [ax for row in axes for ax in row])
    save_figure(fig, paths, dpi)
    return drawn
