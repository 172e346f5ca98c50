"""One style for every figure: sizes, fonts, colours and the way each model is drawn.

* Colour by model family (the model's ``group`` in the config: PT, PT+FT, baseline, fusion...),
  from the Okabe-Ito palette (safe for the common colour-vision deficiencies), at most 8 colours;
  baselines are grey. Within a family, models differ by marker and line style.
* A model's style depends only on the config (its group and its rank within the group), never
  on which models a figure happens to show, so a model looks the same in every figure.
* Sizes for a paper: one column is 3.4 in wide, two columns 7.0 in; fonts of 7-8 pt.
* Every figure is written in each configured format (vector PDF/SVG, PNG at ``dpi``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ..fileio import atomic_path

ONE_COLUMN_IN = 3.4
TWO_COLUMNS_IN = 7.0
PNG_DPI = 300

# Okabe & Ito (2008), "Color Universal Design", in an order where neighbours contrast well.
OKABE_ITO = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#f0e442")
BASELINE_GREY = "#8c8c8c"
BASELINE_GROUP = "baseline"
FUSION_GROUP = "fusion"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
# Within a family, models also differ in shade: 0 keeps the colour, < 0 mixes in black, > 0 white.
SHADES = (0.0, -0.4, 0.4, -0.65, 0.6)
LINESTYLES = ("-", "--", "-.", ":")

RC = {
    "font.size": 7.5,
    "axes.titlesize": 7.5,
    "axes.labelsize": 7.5,
    "xtick.labelsize": 6.5,
    "ytick.labelsize": 6.5,
    "legend.fontsize": 6.5,
    "legend.frameon": False,
    "axes.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "lines.linewidth": 1.2,
    "lines.markersize": 3.5,
    "grid.linewidth": 0.4,
    "grid.alpha": 0.35,
    "pdf.fonttype": 42,  # TrueType in the PDF: text stays text (editable, searchable)
    "svg.fonttype": "none",
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
}


def shade(color: str, amount: float) -> str:
    """``color`` mixed with black (``amount`` < 0) or white (> 0), as a hex string."""
    from matplotlib.colors import to_hex, to_rgb

    rgb = to_rgb(color)
    target = 0.0 if amount < 0 else 1.0
    return to_hex(tuple(c + abs(amount) * (target - c) for c in rgb))


@dataclass(frozen=True)
class ModelStyle:
    """How one model (or fusion) is drawn everywhere."""

    label: str
    group: str
    color: str
    marker: str
    linestyle: str

    def line_kwargs(self, faint: bool = False) -> dict:
        return {
            "color": self.color,
            "marker": self.marker,
            "linestyle": self.linestyle,
            "label": self.label,
            "linewidth": 0.7 if faint else 1.2,
            "markersize": 2.5 if faint else 3.5,
            "alpha": 0.45 if faint else 1.0,
        }


def group_of(name: str, models: Mapping[str, dict], fusions: Mapping[str, dict] = {}) -> str:
    if name in models:
        return str((models[name] or {}).get("group") or name)
    return FUSION_GROUP if name in fusions else name


def model_styles(models: Mapping[str, dict], fusions: Mapping[str, dict] = {}) -> dict[str, ModelStyle]:
    """The style of every model and fusion of the config (fusions form the group "fusion").

    Groups take colours in the order they first appear in ``models:`` (then fusions); the
    group ``baseline`` is grey. More than 8 coloured groups re-use colours, with a warning. The
    n-th model of a group gets the n-th marker, line style and shade of its group's colour.
    """
    names = [*models, *fusions]
    groups: list[str] = []
    for name in names:
        g = group_of(name, models, fusions)
        if g not in groups:
            groups.append(g)
    coloured = [g for g in groups if g != BASELINE_GROUP]
    if len(coloured) > len(OKABE_ITO):
        warnings.warn(f"{len(coloured)} model groups but {len(OKABE_ITO)} colours: colours repeat", stacklevel=2)
    colours = {g: OKABE_ITO[i % len(OKABE_ITO)] for i, g in enumerate(coloured)}
    colours[BASELINE_GROUP] = BASELINE_GREY
    rank: dict[str, int] = {}
    styles = {}
    for name in names:
        g = group_of(name, models, fusions)
        i = rank.get(g, 0)
        rank[g] = i + 1
        label = (models.get(name) or {}).get("label", name) if name in models else f"Fusion ({name})"
        styles[name] = ModelStyle(
            label=str(label),
            group=g,
            # grey floors: darker shades only, faint lines must stay visible
            color=shade(colours[g], -abs(SHADES[i % len(SHADES)]) if g == BASELINE_GROUP else SHADES[i % len(SHADES)]),
            marker=MARKERS[i % len(MARKERS)],
            linestyle=LINESTYLES[i % len(LINESTYLES)] if g != BASELINE_GROUP else ":",
        )
    return styles


def figure_size(n_rows: int, n_cols: int, columns: int | None = None, panel_height: float = 1.9) -> tuple[float, float]:
    """Width of one column (3.4 in) for a single panel, two columns (7.0 in) for several."""
    columns = columns or (1 if n_cols == 1 else 2)
    width = ONE_COLUMN_IN if columns == 1 else TWO_COLUMNS_IN
    return width, panel_height * n_rows + 0.5


def subplots(n_rows: int, n_cols: int, columns: int | None = None, panel_height: float = 1.9, **kwargs):
    """A figure in the house style (``matplotlib`` with the Agg backend, ``RC`` applied)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(RC)
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=figure_size(n_rows, n_cols, columns, panel_height), squeeze=False, **kwargs
    )
    return fig, axes


def save_figure(fig, paths: Iterable[str | Path], dpi: int = PNG_DPI) -> None:
    """Write ``fig`` to every path (format from the suffix: pdf, png, svg), atomically, then close it."""
    import matplotlib.pyplot as plt

    for path in paths:
        fmt = str(path).rsplit(".", 1)[-1].lower()
        if fmt not in ("pdf", "png", "svg"):
            raise ValueError(f"{path}: figure format {fmt!r} is not one of pdf, png, svg")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata={"Date": None} if fmt == "pdf" else None)
    plt.close(fig)


def legend_below(fig, axes: Sequence, ncol: int | None = None, extra: Sequence = ()) -> None:
    """One legend for the whole figure, below the panels, without duplicate labels.

    ``extra``: artists (legend proxies) appended after the models, such as a key to markers.
    """
    seen: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    for handle in extra:
        seen.setdefault(handle.get_label(), handle)
    if not seen:
        return
    longest = max(len(label) for label in seen)
    per_row = max(1, int(fig.get_figwidth() * 72 / (6.5 * 0.55 * longest + 40)))  # 6.5 pt text
    ncol = ncol or min(len(seen), per_row)
    fig.legend(list(seen.values()), list(seen), loc="lower center", ncol=ncol, bbox_to_anchor=(0.5, 0.0),
               handlelength=2.4, columnspacing=1.2)
    rows = -(-len(seen) // ncol)
    fig.tight_layout(rect=(0, min(0.45, (0.16 + 0.11 * rows) / fig.get_figheight()), 1, 1))
