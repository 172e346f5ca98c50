"""Study figure 3, the comparison table: Markdown, LaTeX (booktabs) and CSV.

Per model (rows, config order: models, then fusions) and dataset (columns): the test UAR [%] at
the layer chosen on validation (mean over seeds), its 95% bootstrap CI and the layer. Per dataset
and probe, the best row by that test UAR is bold and the second underlined (ties share a rank,
over every row of the table, baselines and fusions included). Beside each cell, where the study
reported one: the published number (the study's best layer on test) and our difference (ours
minus published, in points).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..tables import layer_label

COLUMNS = ["probe", "dataset", "model", "label", "group", "test_uar", "test_ci_low", "test_ci_high", "layer",
           "layer_label", "rank", "published_uar", "difference"]

TEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def comparison_frame(best: pd.DataFrame, handcrafted: set[str] = frozenset()) -> pd.DataFrame:
    """The table in tidy form, all in %: one row per (probe, dataset, model), in ``best``'s row order.

    ``best`` is the best-layer table (:func:`bioprobe.figures.make.write_tables`): ``test_uar`` in
    [0, 1] at ``best_layer``, ``test_ci_low``/``high``, ``published_uar`` in % (NaN if none).
    ``rank`` is 1 for the best test UAR of its (probe, dataset), 2 for the second, ...
    """
    out = pd.DataFrame({
        "probe": best["probe"], "dataset": best["dataset"], "model": best["model"],
        "label": best.get("label", best["model"]), "group": best.get("group", ""),
        "test_uar": 100 * best["test_uar"], "test_ci_low": 100 * best["test_ci_low"],
        "test_ci_high": 100 * best["test_ci_high"], "layer": best["best_layer"].astype(int),
    })
    out["layer_label"] = [layer_label(x, m in handcrafted) for x, m in zip(out["layer"], out["model"])]
    out["rank"] = out.groupby(["probe", "dataset"])["test_uar"].rank(method="min", ascending=False).astype("Int64")
    out["published_uar"] = best["published_uar"].astype(float)
    out["difference"] = out["test_uar"] - out["published_uar"]
    return out[COLUMNS].reset_index(drop=True)


def _fmt(x: float, digits: int = 1) -> str:
    return "" if not np.isfinite(x) else f"{x:.{digits}f}"


def _signed(x: float) -> str:
    return "" if not np.isfinite(x) else f"{x:+.1f}".replace("-", "−")


def _published_datasets(table: pd.DataFrame, datasets: Sequence[str]) -> list[str]:
    return [d for d in datasets if np.isfinite(table.loc[table["dataset"] == d, "published_uar"]).any()]



def _row_cells(rows, datasets, published, escape, best, second, ci, signed) -> list[str]:
    """One model's cells of the comparison table; ``best``/``second``/``ci`` are format strings
    of the output language (Markdown or LaTeX), ``escape`` quotes text, ``signed`` writes a difference."""
    cells = [escape(rows["group"].iloc[0] or ""), escape(rows["label"].iloc[0])]
    for d in datasets:
        r = rows[rows["dataset"] == d]
        if r.empty:
            cells += ["", "", ""] if d in published else [""]
            continue
        r = r.iloc[0]
        value = _fmt(r.test_uar)
        value = best.format(value) if r["rank"] == 1 else second.format(value) if r["rank"] == 2 else value
        if np.isfinite(r.test_ci_low):
            value += ci.format(_fmt(r.test_ci_low), _fmt(r.test_ci_high))
        cells.append(f"{value} ({escape(r.layer_label)})")
        if d in published:
            cells += [_fmt(r.published_uar, 2), signed(r.difference)]
    return cells

def comparison_markdown(table: pd.DataFrame, datasets: Sequence[str], dataset_labels: Mapping[str, str] | None = None) -> str:
    """One Markdown table per probe; bold ``**x**`` for the best, ``<u>x</u>`` for the second."""
    out = [
        "# Comparison table: test UAR [%] at the layer chosen on validation",
        "",
        "Cell: test UAR (mean over seeds) [95% bootstrap CI of the seed mean] (layer; CNN = transformer input). "
        "Per dataset, **bold** is the best and <u>underlined</u> the second-best test UAR of the column (ties "
        "share a rank; every row counts). `published`: the study's number (its best layer on test); "
        "`Δ`: ours minus published, in points. The study does not define its Fusion; ours are in docs/probes.md.",
        "",
    ]
    published = _published_datasets(table, datasets)
    for probe, group in table.groupby("probe", sort=True):
        out += [f"## Probe `{probe}`", ""]
        names = {d: (dataset_labels or {}).get(d, d) for d in datasets}
        header = ["Group", "Model"] + [c for d in datasets for c in ((names[d], "published", "Δ") if d in published else (names[d],))]
        out += ["| " + " | ".join(header) + " |", "|" + "---|" * 2 + "--:|" * (len(header) - 2)]
        for model, rows in group.groupby("model", sort=False):
            cells = _row_cells(rows, datasets, published, str, "**{}**", "<u>{}</u>", " [{}, {}]", _signed)
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def tex_escape(text: str) -> str:
    return "".join(TEX_SPECIALS.get(ch, ch) for ch in str(text))


def comparison_latex(table: pd.DataFrame, datasets: Sequence[str], caption: str | None = None,
                     dataset_labels: Mapping[str, str] | None = None) -> str:
    """A ``table*`` per probe with booktabs rules; needs ``\\usepackage{booktabs}`` only.

    Bold is ``\\textbf``, second ``\\underline``; the CI is in ``\\scriptsize``.
    """
    published = _published_datasets(table, datasets)
    caption = caption or (
        "Test UAR [\\%] at the layer chosen on validation (mean over seeds), 95\\% bootstrap CI and layer "
        "(CNN: transformer input). Per dataset the best test UAR is in bold, the second underlined. "
        "Pub.: the published number (best layer on test); $\\Delta$: ours minus published."
    )
    parts = ["% Generated by bioprobe (study figure 3). Needs \\usepackage{booktabs}.", ""]
    for probe, group in table.groupby("probe", sort=True):
        spec = "ll" + "".join("rrr" if d in published else "r" for d in datasets)
        head1 = ["", ""]
        head2 = ["Group", "Model"]
        rules = []
        col = 3
        for d in datasets:
            width = 3 if d in published else 1
            head1.append(f"\\multicolumn{{{width}}}{{c}}{{{tex_escape((dataset_labels or {}).get(d, d))}}}")
            rules.append(f"\\cmidrule(lr){{{col}-{col + width - 1}}}")
            head2 += ["UAR [CI] (layer)", "Pub.", "$\\Delta$"] if d in published else ["UAR [CI] (layer)"]
            col += width
        lines = [
            "\\begin{table*}[t]",
            "\\centering",
            "\\small",
            f"\\caption{{{caption} Probe: {tex_escape(probe)}.}}",
            f"\\label{{tab:comparison-{tex_escape(probe)}}}",
            f"\\begin{{tabular}}{{{spec}}}",
            "\\toprule",
            " & ".join(head1) + " \\\\",
            "".join(rules),
            " & ".join(head2) + " \\\\",
            "\\midrule",
        ]
        for model, rows in group.groupby("model", sort=False):
            cells = _row_cells(rows, datasets, published, tex_escape, "\\textbf{{{}}}", "\\underline{{{}}}",
                               "\\,{{\\scriptsize[{}, {}]}}", lambda d: "" if not np.isfinite(d) else f"${d:+.1f}$")
            lines.append(" & ".join(cells) + " \\\\")
        lines += ["\\bottomrule", "\\end{tabular}", "\\end{table*}", ""]
        parts += lines
    return "\n".join(parts)
