"""The leakage figure of a dataset and its text summary (bioprobe.leakage).

One row of panels per identifier column (recording, caller, dog), one panel per model family
(the models' ``group:``). In each panel, per model: the target's test UAR per layer under the
dataset's own split (solid) and under the split grouped by the column (dashed), on the left
axis; the UAR of decoding the column itself (dotted) on the right axis. Thin grey lines mark
chance on each axis. A solid line well above its dashed line is a layer that scores partly by
recognising the recording or the animal; a high dotted line is a layer that knows it.
"""

from __future__ import annotations

import logging
from typing import Mapping, Sequence

from ..fileio import write_text
from ..leakage import MAIN, NUISANCE, leakage_summary
from .style import legend_below, model_styles, save_figure, subplots

LOG = logging.getLogger(__name__)


def read_leakage_tables(paths: Sequence[str]):
    """The leakage ``scores.csv`` files of one dataset, concatenated."""
    import pandas as pd

    frames = [pd.read_csv(p, keep_default_na=False, na_values=[""]) for p in paths]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if not frame.empty:
        frame["group_column"] = frame["group_column"].fillna("").astype(str)
    return frame


def _families(models: Mapping[str, dict], present: Sequence[str]) -> list[tuple[str, list[str]]]:
    families: dict[str, list[str]] = {}
    for name in list(models) + sorted(set(present) - set(models)):
        if name in present:
            families.setdefault(str((models.get(name) or {}).get("group") or name), []).append(name)
    return list(families.items())


def plot_leakage(frame, dataset: str, models: Mapping[str, dict], out: Sequence[str], dpi: int = 300) -> None:
    """Draw the leakage figure of ``dataset`` from its concatenated leakage tables into every path of ``out``."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    columns = sorted({c for c in frame["group_column"] if c})
    if not columns:
        raise ValueError(f"{dataset}: the leakage tables hold no grouped or nuisance split")
    styles = model_styles({m: models.get(m, {}) for m in dict.fromkeys(list(models) + list(frame["model"]))})
    families = _families(models, list(dict.fromkeys(frame["model"])))
    fig, axes = subplots(len(columns), len(families), columns=2 if len(families) > 1 else 1, panel_height=2.2,
                         sharex=True, sharey=True)
    main_method = frame.loc[frame["split"] == MAIN, "method"].iloc[0]
    twins = []
    for r, column in enumerate(columns):
        grouped = frame[(frame["group_column"] == column) & (frame["task"] == "target")]
        nuisance = frame[(frame["group_column"] == column) & (frame["task"] == NUISANCE)]
        for c, (family, names) in enumerate(families):
            ax = axes[r][c]
            twin = ax.twinx()
            twins.append(twin)
            for name in names:
                style = styles[name]
                kw = {"color": style.color, "marker": style.marker, "markersize": 3, "linewidth": 1.2}
                main = frame[(frame["model"] == name) & (frame["split"] == MAIN)].sort_values("layer")
                ax.plot(main["layer"], 100 * main["uar"], linestyle="-", label=style.label, **kw)
                sub = grouped[grouped["model"] == name].sort_values("layer")
                ax.plot(sub["layer"], 100 * sub["uar"], linestyle="--", **kw)
                nui = nuisance[nuisance["model"] == name].sort_values("layer")
                twin.plot(nui["layer"], 100 * nui["uar"], linestyle=":", alpha=0.8, markerfacecolor="none",
                          **{**kw, "markersize": 2.5})
            target_chance = frame.loc[frame["task"] == "target", "chance"]
            if len(target_chance):
                ax.axhline(100 * float(target_chance.iloc[0]), color="#bbbbbb", linewidth=0.6, zorder=0)
            if len(nuisance):
                twin.axhline(100 * float(nuisance["chance"].iloc[0]), color="#bbbbbb", linewidth=0.6, linestyle=":", zorder=0)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            twin.set_ylim(0, 100)
            ax.set_ylim(0, 100)
            if r == 0:
                ax.set_title(family)
            if c == 0:
                ax.set_ylabel(f"target UAR [%]\n(by {column})")
            if c == len(families) - 1:
                twin.set_ylabel(f"decoding {column}: UAR [%]")
            else:
                twin.set_yticklabels([])
            if r == len(columns) - 1:
                ax.set_xlabel("layer")
    key = [Line2D([], [], color="#444444", linestyle="-", label=f"target, {main_method} split"),
           Line2D([], [], color="#444444", linestyle="--", label="target, split grouped by the column"),
           Line2D([], [], color="#444444", linestyle=":", label="decoding the column (right axis)")]
    fig.suptitle(f"Leakage per layer: {dataset}")
    legend_below(fig, [a for row in axes for a in row], extra=key)
    save_figure(fig, out, dpi=dpi)


def make_leakage(tables: Sequence[str], dataset: str, models: Mapping[str, dict], out: Sequence[str],
                 summary_out: str, dpi: int = 300) -> str:
    """The leakage figure and ``summary.md`` of one dataset from its tables; returns the summary text (also logged)."""
    frame = read_leakage_tables(tables)
    plot_leakage(frame, dataset, models, out, dpi=dpi)
    labels = {m: str((models.get(m) or {}).get("label", m)) for m in set(frame["model"])}
    text = leakage_summary(frame, dataset, labels)
    write_text(summary_out, text)
    for line in text.splitlines():
        if line.strip():
            LOG.info("%s", line)
    return text
