"""One function per figure of the workflow: result files and config in, figure files out.

The workflow's scripts call these with ``snakemake.input``/``params``/``output``; they are plain
functions, usable (and tested) without Snakemake. ``models`` and ``fusions`` are the config's
``models:`` and ``fusion:`` sections (only their descriptive keys are read: label, group, source).
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import pandas as pd

from ..fileio import write_csv, write_text
from ..tables import (HANDCRAFTED_SOURCES, PUBLISHED_CSV, best_layer_markdown, best_layers, read_scores,
                      read_seed_mean_cis)
from .comparison import comparison_frame, comparison_latex, comparison_markdown
from .confusion import plot_confusion
from .data import per_class_recall, read_confusion, read_curves
from .layerwise import plot_compare, plot_fine_tuning, plot_layerwise
from .perclass import plot_per_class
from .published import match_published, plot_published_vs_reproduced, read_published
from .style import model_styles


def handcrafted_models(models: Mapping[str, dict]) -> set[str]:
    return {m for m, c in models.items() if (c or {}).get("source") in HANDCRAFTED_SOURCES}


def make_layerwise(scores: Sequence[str], dataset: str, models: Mapping, fusions: Mapping, floor: Sequence[str], out: Sequence[str], dpi: int = 300, dataset_labels: Mapping | None = None):
    """Every model on one dataset (the overview; floor models faint)."""
    return plot_layerwise(read_curves(scores), dataset, list(models), model_styles(models, fusions), out,
                          flat=handcrafted_models(models), floor=floor, dpi=dpi, dataset_labels=dataset_labels)


def make_compare(scores: Sequence[str], datasets: Sequence[str], roles: Mapping, models: Mapping, fusions: Mapping,
                 out: Sequence[str], dpi: int = 300, dataset_labels: Mapping | None = None):
    """Study figure 1."""
    return plot_compare(read_curves(scores), datasets, roles["compare"], roles["floor"], model_styles(models, fusions),
                        out, roles["probe"], flat=handcrafted_models(models), dpi=dpi,
                        dataset_labels=dataset_labels)


def make_fine_tuning(scores: Sequence[str], datasets: Sequence[str], roles: Mapping, models: Mapping, fusions: Mapping,
                     out: Sequence[str], dpi: int = 300, dataset_labels: Mapping | None = None):
    """Study figure 2."""
    return plot_fine_tuning(read_curves(scores), datasets, roles["fine_tuned"], roles["floor"],
                            model_styles(models, fusions), out, roles["probe"], flat=handcrafted_models(models), dpi=dpi,
                        dataset_labels=dataset_labels)


def make_confusion(confusion_csv: str, dataset: str, name: str, models: Mapping, fusions: Mapping, out: Sequence[str],
                   dpi: int = 300, dataset_labels: Mapping | None = None):
    """Study figure 4: one fusion (or model) on one dataset."""
    classes, counts, info = read_confusion(confusion_csv)
    label = model_styles(models, fusions)[name].label if name in {**models, **fusions} else name
    if name in fusions:
        info.pop("layer", None)  # a fusion has no single layer
    return plot_confusion(classes, counts, f"{label} on {(dataset_labels or {}).get(dataset, dataset)}", out, info=info, dpi=dpi)


def make_published(best_csv: str, datasets: Sequence[str], models: Mapping, fusions: Mapping, out: Sequence[str],
                   dpi: int = 300, dataset_labels: Mapping | None = None):
    """Published against reproduced, from the best-layer table."""
    best = pd.read_csv(best_csv)
    return plot_published_vs_reproduced(best, model_styles(models, fusions), out, datasets, dpi=dpi,
                                        dataset_labels=dataset_labels)


def make_per_class(predictions: str, dataset: str, model: str, probe: str, models: Mapping, fusions: Mapping,
                   out: Sequence[str], dpi: int = 300, dataset_labels: Mapping | None = None):
    """Per-class recall against layer for one (dataset, model)."""
    recall, support, best = per_class_recall(predictions)
    label = model_styles(models, fusions)[model].label
    title = f"{label} on {(dataset_labels or {}).get(dataset, dataset)}, probe {probe}"
    return plot_per_class(recall, support, title, out, best_layer=best, handcrafted=model in handcrafted_models(models),
                          dpi=dpi)


def write_tables(
    probe_scores: Iterable[str],
    fusion_scores: Iterable[str],
    models: Mapping[str, dict],
    fusion: Mapping[str, dict],
    datasets: Mapping[str, str],
    best_csv,
    best_md,
    all_scores_csv,
    published_csv=PUBLISHED_CSV,
    comparison: Mapping[str, str] | None = None,
    dataset_labels: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Write the combined scores, the best-layer table (CSV and Markdown) and the comparison table.

    ``datasets`` maps each dataset name to its type; published numbers (``published_csv``, see
    :mod:`bioprobe.figures.published`) are matched by dataset name or type and by model key or
    ``published_as``. ``comparison`` maps ``csv``/``md``/``tex`` to the paths of study figure 3
    (:mod:`bioprobe.figures.comparison`); None writes none. ``dataset_labels`` name its columns.
    """
    paths = list(probe_scores) + list(fusion_scores)
    scores = read_scores(paths)
    write_csv(all_scores_csv, scores)
    best = best_layers(scores, read_seed_mean_cis(paths))
    labels = {name: cfg.get("label", name) for name, cfg in models.items()}
    labels.update({name: f"Fusion ({name})" for name in fusion})
    best.insert(2, "label", best["model"].map(lambda m: labels.get(m, m)))
    best.insert(3, "group", best["model"].map(lambda m: (models.get(m) or {}).get("group", "fusion" if m in fusion else "")))
    best["published_uar"] = match_published(best, read_published(published_csv), models, fusion, datasets)
    # Rows in the config's order: models as listed, then fusions.
    order = {name: i for i, name in enumerate([*models, *fusion])}
    best = best.sort_values(["probe", "dataset"]).sort_values("model", key=lambda m: m.map(order).fillna(len(order)), kind="stable")
    best = best.reset_index(drop=True)
    write_csv(best_csv, best)
    handcrafted = {name for name, cfg in models.items() if cfg.get("source") in HANDCRAFTED_SOURCES}
    write_text(best_md, best_layer_markdown(best, list(datasets), handcrafted))
    if comparison:
        table = comparison_frame(best, handcrafted)
        write_csv(comparison["csv"], table)
        write_text(comparison["md"], comparison_markdown(table, list(datasets), dataset_labels))
        write_text(comparison["tex"], comparison_latex(table, list(datasets), dataset_labels=dataset_labels))
    return best
