"""Statistics over probe results: paired bootstrap tests between models and Holm correction.

The study's two questions are comparisons of models: does pre-training on animal sounds beat
pre-training on speech (AVES-bio vs HuBERT, WavLM, W2V2), and does ASR fine-tuning help
(e.g. W2V2-100h vs W2V2)? Each comparison here is between the two models' *best layers*
(highest mean validation UAR over seeds, chosen on validation only) on the *same test clips*:

- statistic: ``diff = UAR_a - UAR_b`` where each UAR is the mean over the probe's seeds;
- paired bootstrap: test clips are resampled with replacement (``n_boot`` times, seeded); one
  resample is applied to both models and all seeds, so the pairing is kept;
- confidence interval: percentile interval of the resampled differences;
- p-value (two-sided, H0: no difference): the resampled differences are centred on the
  observed one to mimic H0, ``p = (1 + #{|d*_b - diff| >= |diff|}) / (n_boot + 1)``;
- ``p_holm``: Holm's step-down adjustment over all comparisons of one (dataset, probe).
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np

from .metrics import bootstrap_indices, percentile_interval, uar_of_resamples


def seed_mean_uar_of_resamples(y_true, y_pred_seeds: np.ndarray, indices: np.ndarray, n_classes: int) -> np.ndarray:
    """Mean over seeds of UAR per resample: ``y_pred_seeds [S, n]``, ``indices [B, n]`` -> ``[B]``."""
    return np.mean([uar_of_resamples(y_true, pred, indices, n_classes) for pred in y_pred_seeds], axis=0)


def paired_bootstrap(
    y_true,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    n_classes: int | None = None,
) -> dict:
    """Paired bootstrap comparison of two classifiers on the same clips.

    ``pred_a [S_a, n]`` and ``pred_b [S_b, n]`` are predicted class indices per seed (a 1-D
    array is one seed). Returns ``uar_a``, ``uar_b`` (seed means), ``diff``, ``ci_low``,
    ``ci_high`` and ``p_value`` (see the module docstring).
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    pred_a = np.atleast_2d(np.asarray(pred_a, dtype=np.int64))
    pred_b = np.atleast_2d(np.asarray(pred_b, dtype=np.int64))
    if pred_a.shape[1] != y_true.shape[0] or pred_b.shape[1] != y_true.shape[0]:
        raise ValueError(f"predictions must cover the same {y_true.shape[0]} clips as y_true, got {pred_a.shape} and {pred_b.shape}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if n_classes is None:
        n_classes = int(max(y_true.max(), pred_a.max(), pred_b.max()) + 1)
    whole = np.arange(y_true.shape[0])[None, :]
    uar_a = float(seed_mean_uar_of_resamples(y_true, pred_a, whole, n_classes)[0])
    uar_b = float(seed_mean_uar_of_resamples(y_true, pred_b, whole, n_classes)[0])
    diff = uar_a - uar_b
    indices = bootstrap_indices(y_true.shape[0], n_boot, seed)
    boot = seed_mean_uar_of_resamples(y_true, pred_a, indices, n_classes) - seed_mean_uar_of_resamples(y_true, pred_b, indices, n_classes)
    low, high = percentile_interval(boot, level)
    extreme = np.count_nonzero(np.abs(boot - diff) >= abs(diff) - 1e-12)
    return {
        "uar_a": uar_a,
        "uar_b": uar_b,
        "diff": diff,
        "ci_low": float(low),
        "ci_high": float(high),
        "p_value": float((1 + extreme) / (n_boot + 1)),
    }


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (monotone, capped at 1), in the input order."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.shape[0]
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def comparison_pairs(models: list[str], models_cfg: dict) -> list[tuple[str, str, str]]:
    """All unordered model pairs as ``(kind, model_a, model_b)``.

    A fine-tuned model and its ``base`` give ``("finetuned_vs_base", fine_tuned, base)``, so that
    ``diff > 0`` means fine-tuning helped; every other pair is ``("model_pair", a, b)`` in the
    order of ``models``.
    """
    pairs = []
    for a, b in combinations(models, 2):
        base_a = (models_cfg.get(a) or {}).get("base")
        base_b = (models_cfg.get(b) or {}).get("base")
        if base_a == b:
            pairs.append(("finetuned_vs_base", a, b))
        elif base_b == a:
            pairs.append(("finetuned_vs_base", b, a))
        else:
            pairs.append(("model_pair", a, b))
    return pairs


def _best_test_predictions(probe_dir) -> dict:
    """Best layer (mean validation UAR) of one probe job and its test predictions ``[S, n]``."""
    from .probes import best_layer, read_predictions, read_scores

    probe_dir = Path(probe_dir)
    scores = read_scores(probe_dir / "scores.csv")
    layer = best_layer(scores)
    pred = read_predictions(probe_dir / "predictions.h5")
    if layer not in pred["layers"]:
        raise ValueError(f"{probe_dir}: best layer {layer} of scores.csv is missing from predictions.h5")
    column = pred["layers"].index(layer)
    return {
        "layer": layer,
        "y_pred": pred["test"]["y_pred"][:, column, :],  # [S, n_test]
        "y_true": pred["test"]["y_true"],
        "clip_id": pred["test"]["clip_id"],
        "classes": pred["classes"],
        "seeds": pred["seeds"],
        "source": str(probe_dir),
    }


def run_comparisons(
    dataset: str,
    models_cfg: dict,
    probe_dirs: dict,
    out_csv,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> None:
    """Paired bootstrap tests between the best layers of every pair of models, per probe.

    ``probe_dirs`` maps ``(model, probe)`` to a probe job's output folder (scores.csv +
    predictions.h5). ``models_cfg`` is config.yaml's ``models:`` (``base:`` marks fine-tuned
    models). Writes ``out_csv`` with one row per (probe, pair): dataset, probe, kind, model_a,
    layer_a, model_b, layer_b, uar_a, uar_b, diff, ci_low, ci_high, p_value, p_holm, n_test,
    n_boot, seeds_a, seeds_b, label_a, label_b.
    """
    import pandas as pd

    from .fileio import write_csv

    columns = ["dataset", "probe", "kind", "model_a", "layer_a", "model_b", "layer_b", "uar_a", "uar_b", "diff",
               "ci_low", "ci_high", "p_value", "p_holm", "n_test", "n_boot", "seeds_a", "seeds_b", "label_a", "label_b"]
    rows = []
    probes = list(dict.fromkeys(probe for _model, probe in probe_dirs))
    model_order = list(models_cfg) + [m for m, _p in probe_dirs if m not in models_cfg]
    for probe in probes:
        models = [m for m in dict.fromkeys(model_order) if (m, probe) in probe_dirs]
        best = {m: _best_test_predictions(probe_dirs[(m, probe)]) for m in models}
        family = []
        for kind, a, b in comparison_pairs(models, models_cfg):
            ra, rb = best[a], best[b]
            if ra["clip_id"] != rb["clip_id"] or not np.array_equal(ra["y_true"], rb["y_true"]):
                raise ValueError(f"{ra['source']} and {rb['source']}: test clips differ; both must come from the same manifest")
            if ra["classes"] != rb["classes"]:
                raise ValueError(f"{ra['source']} and {rb['source']}: class lists differ")
            result = paired_bootstrap(ra["y_true"], ra["y_pred"], rb["y_pred"], n_boot, seed, level, len(ra["classes"]))
            family.append({
                "dataset": dataset, "probe": probe, "kind": kind,
                "model_a": a, "layer_a": ra["layer"], "model_b": b, "layer_b": rb["layer"], **result,
                "n_test": len(ra["clip_id"]), "n_boot": n_boot,
                "seeds_a": " ".join(map(str, ra["seeds"])), "seeds_b": " ".join(map(str, rb["seeds"])),
                "label_a": (models_cfg.get(a) or {}).get("label", a), "label_b": (models_cfg.get(b) or {}).get("label", b),
            })
        for row, adjusted in zip(family, holm([r["p_value"] for r in family])):
            row["p_holm"] = adjusted
        rows.extend(family)
    write_csv(out_csv, pd.DataFrame(rows, columns=columns))
