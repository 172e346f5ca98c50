"""Score tables: all scores in one tidy frame, and the best-layer table of the study (written by
:func:`bioprobe.figures.make.write_tables`).

Scores are read from the probes' and fusions' ``scores.csv`` files (tidy: one row per
dataset, model, layer, probe, seed and split, ``uar`` in [0, 1]). The best layer of a model is
chosen on validation UAR (mean over seeds) and reported with its test UAR; the layer that is
best on test (what a table of "the best layer on test" shows) is given beside it, marked as
chosen on test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd


PUBLISHED_CSV = Path(__file__).resolve().parents[2] / "resources" / "published" / "sarkar2025_best_layer.csv"
REQUIRED = ("dataset", "model", "layer", "probe", "seed", "split", "uar")


def read_scores(paths: Iterable[str]) -> pd.DataFrame:
    """Concatenate scores.csv files, checking that each has the tidy columns."""
    frames = []
    for path in paths:
        frame = pd.read_csv(path)
        missing = [c for c in REQUIRED if c not in frame.columns]
        if missing:
            raise ValueError(f"{path}: scores file lacks columns {missing}")
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=list(REQUIRED))
    return pd.concat(frames, ignore_index=True)


def layer_summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean and std of UAR over seeds per (dataset, model, probe, layer, split)."""
    keys = ["dataset", "model", "probe", "layer", "split"]
    agg = scores.groupby(keys, sort=True)["uar"].agg(uar_mean="mean", uar_std="std", n_seeds="count").reset_index()
    agg["uar_std"] = agg["uar_std"].fillna(0.0)
    for col in ("ci_low", "ci_high"):
        if col in scores.columns:
            agg = agg.merge(scores.groupby(keys)[col].mean().rename(col).reset_index(), on=keys, how="left")
    return agg


def read_seed_mean_cis(score_paths: Iterable[str]) -> pd.DataFrame | None:
    """Bootstrap CIs of the seed-mean UAR from the ``summary.csv`` beside each ``scores.csv``.

    Returns None when no summary exists (then per-seed CIs are averaged, an approximation).
    """
    frames = []
    for path in score_paths:
        summary_path = Path(path).with_name("summary.csv")
        if summary_path.is_file():
            frame = pd.read_csv(summary_path)
            if {"ci_low", "ci_high"} <= set(frame.columns):
                frames.append(frame[["dataset", "model", "probe", "layer", "split", "ci_low", "ci_high"]])
    return pd.concat(frames, ignore_index=True) if frames else None


def best_layers(scores: pd.DataFrame, seed_mean_cis: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per (dataset, model, probe): the validation-best layer and its test UAR, and the test-best layer.

    ``seed_mean_cis`` (from :func:`read_seed_mean_cis`) supplies the CI of the seed-mean test
    UAR; without it, the per-seed CIs are averaged.
    """
    summary = layer_summary(scores)
    if seed_mean_cis is not None:
        keys = ["dataset", "model", "probe", "layer", "split"]
        summary = summary.drop(columns=["ci_low", "ci_high"], errors="ignore").merge(seed_mean_cis, on=keys, how="left")
    val = summary[summary["split"] == "val"]
    test = summary[summary["split"] == "test"].set_index(["dataset", "model", "probe", "layer"])
    rows = []
    for (dataset, model, probe), group in val.groupby(["dataset", "model", "probe"], sort=True):
        # Ties go to the earlier layer: deterministic, and the cheaper layer to compute.
        best = group.sort_values(["uar_mean", "layer"], ascending=[False, True]).iloc[0]
        layer = int(best["layer"])
        t = test.loc[(dataset, model, probe, layer)] if (dataset, model, probe, layer) in test.index else None
        tests = test.loc[(dataset, model, probe)] if (dataset, model, probe) in test.index.droplevel(3) else None
        oracle = tests["uar_mean"].idxmax() if tests is not None and len(tests) else np.nan
        rows.append(
            {
                "dataset": dataset,
                "model": model,
                "probe": probe,
                "best_layer": layer,
                "val_uar": best["uar_mean"],
                "test_uar": t["uar_mean"] if t is not None else np.nan,
                "test_uar_std": t["uar_std"] if t is not None else np.nan,
                "n_seeds": int(t["n_seeds"]) if t is not None else 0,
                "test_ci_low": t.get("ci_low", np.nan) if t is not None else np.nan,
                "test_ci_high": t.get("ci_high", np.nan) if t is not None else np.nan,
                "test_best_layer": oracle,
                "test_best_uar": tests["uar_mean"].max() if tests is not None and len(tests) else np.nan,
            }
        )
    return pd.DataFrame(rows)


# Sources without a transformer: their "layers" are feature sets, not a CNN and blocks.
HANDCRAFTED_SOURCES = ("logmel", "mfcc")


def layer_label(layer, handcrafted: bool = False) -> str:
    """Layer 0 of a transformer model is its input ("CNN"); -1 marks all-layer probes and fusions."""
    layer = int(layer)
    if layer < 0:
        return "all"
    return f"features {layer}" if handcrafted else ("CNN" if layer == 0 else str(layer))


def best_layer_markdown(best: pd.DataFrame, datasets: list[str], handcrafted: set[str] = frozenset()) -> str:
    """One Markdown table per probe: models as rows, datasets as columns, test UAR [%]."""
    out = [
        "# Best layer per model: test UAR [%]",
        "",
        "Layer chosen on validation UAR (mean over seeds); cell: test UAR mean ± std over seeds "
        "[95% bootstrap CI of the seed mean, resampling test clips] (layer; CNN = layer 0, the transformer input, or for AVES with `layer0: study` the projected CNN features: docs/models.md). `published`: the study's number "
        "(best layer on test). The study does not define its Fusion row; ours are defined in "
        "docs/probes.md.",
        "",
    ]
    # A "published" column only for datasets the study reported on.
    published = {d for d in datasets if np.isfinite(best.loc[best["dataset"] == d, "published_uar"]).any()}
    for probe, group in best.groupby("probe", sort=True):
        out += [f"## Probe `{probe}`", ""]
        header = ["Model"] + [c for d in datasets for c in ((d, f"{d} published") if d in published else (d,))]
        out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for model, rows in group.groupby("model", sort=False):
            cells = [str(rows["label"].iloc[0])]
            for d in datasets:
                r = rows[rows["dataset"] == d]
                if r.empty:
                    cells += ["", ""] if d in published else [""]
                    continue
                r = r.iloc[0]
                cell = f"{100 * r.test_uar:.2f} ± {100 * r.test_uar_std:.2f}"
                if np.isfinite(r.test_ci_low) and np.isfinite(r.test_ci_high):
                    cell += f" [{100 * r.test_ci_low:.1f}, {100 * r.test_ci_high:.1f}]"
                cell += f" ({layer_label(r.best_layer, model in handcrafted)})"
                cells.append(cell)
                if d in published:
                    cells.append("" if not np.isfinite(r.published_uar) else f"{r.published_uar:.2f}")
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)
