"""The cheapest good layer: the earliest layer as good as the best, by a paired equivalence test.

Per (dataset, model), for one probe entry (``cheapest_layer.probe``):

1. the **best layer** is the one with the highest mean *validation* UAR over seeds (as
   everywhere in bioprobe; the test split chooses nothing);
2. every layer is compared with it on the **same test clips** by the paired bootstrap of
   :func:`bioprobe.stats.paired_bootstrap` (seed-mean test UAR, one resample for both layers);
3. a layer is **equivalent** to the best when the ``level`` (95 %) percentile interval of the
   difference lies inside ``[-delta, +delta]`` (``delta`` = 0.01, one UAR point): failing to
   find a difference is not equivalence, so a wide interval around 0 (few test clips, noisy
   layers) is *not* equivalent (:func:`equivalence`);
4. the **cheapest layer** is the earliest equivalent layer (the best layer is equivalent to
   itself, so there always is one), reported with the share of the full model's compute that
   running the model only up to it costs (:mod:`bioprobe.flops`, for the dataset's mean clip
   duration) and the share of transformer blocks it needs.

``results/{dataset}/cheapest_layer.csv`` holds one row per model; the tables rule gathers all
datasets into ``results/tables/cheapest_layer.csv`` and ``.md`` (with the models' labels).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping

import numpy as np

from .stats import paired_bootstrap

#: Defaults of the ``cheapest_layer:`` section.
CHEAPEST_DEFAULTS = {"probe": "mlp", "delta": 0.01, "level": 0.95, "n_boot": 1000, "seed": 0}
COLUMNS = ["dataset", "model", "label", "probe", "best_layer", "best_val_uar", "best_test_uar", "cheapest_layer",
           "cheapest_test_uar", "diff", "ci_low", "ci_high", "delta", "level", "n_boot", "n_test", "equivalent_layers",
           "n_blocks", "blocks_fraction", "compute_fraction", "clip_seconds"]


def equivalence(y_true, pred_a, pred_b, delta: float = 0.01, n_boot: int = 1000, seed: int = 0, level: float = 0.95,
                n_classes: int | None = None) -> dict:
    """Is classifier a as good as b within ``delta`` UAR? Paired bootstrap on the same clips.

    ``pred_a [S_a, n]`` and ``pred_b [S_b, n]`` are predicted classes per seed. Returns the
    fields of :func:`~bioprobe.stats.paired_bootstrap` (``diff = UAR_a - UAR_b``, its
    ``ci_low``/``ci_high`` at ``level``, ``p_value`` for "no difference") plus ``delta`` and
    ``equivalent``: ``-delta <= ci_low`` and ``ci_high <= delta``.
    """
    if not (isinstance(delta, (int, float)) and delta > 0):
        raise ValueError(f"delta must be a number > 0 (in UAR units: 0.01 = one point), got {delta!r}")
    result = paired_bootstrap(y_true, pred_a, pred_b, n_boot, seed, level, n_classes)
    result["delta"] = float(delta)
    result["equivalent"] = bool(-delta <= result["ci_low"] and result["ci_high"] <= delta)
    return result


def resolve_cheapest_config(cfg: Mapping | None) -> dict:
    """The ``cheapest_layer:`` section with defaults, or ``ValueError`` naming the key."""
    cfg = {**CHEAPEST_DEFAULTS, **(cfg or {})}
    unknown = set(cfg) - set(CHEAPEST_DEFAULTS)
    if unknown:
        raise ValueError(f"cheapest_layer: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(CHEAPEST_DEFAULTS)}")
    if not (isinstance(cfg["delta"], (int, float)) and 0 < cfg["delta"] < 1):
        raise ValueError(f"cheapest_layer.delta: must be in (0, 1) (UAR units, 0.01 = one point), got {cfg['delta']!r}")
    if not (isinstance(cfg["level"], float) and 0 < cfg["level"] < 1):
        raise ValueError(f"cheapest_layer.level: must be in (0, 1), got {cfg['level']!r}")
    for key, minimum in (("n_boot", 1), ("seed", 0)):
        if not isinstance(cfg[key], int) or isinstance(cfg[key], bool) or cfg[key] < minimum:
            raise ValueError(f"cheapest_layer.{key}: must be an integer >= {minimum}, got {cfg[key]!r}")
    return cfg


def layer_equivalences(probe_dir, cfg: Mapping) -> tuple[int, list[dict]]:
    """The best layer of a probe job and every layer's equivalence test against it."""
    from .probes import ALL_LAYERS, best_layer, read_predictions, read_scores

    probe_dir = Path(probe_dir)
    scores = read_scores(probe_dir / "scores.csv")
    best = best_layer(scores)
    if best == ALL_LAYERS:
        raise ValueError(f"{probe_dir}: the probe has no per-layer results (layer -1); the cheapest layer needs a per-layer probe")
    pred = read_predictions(probe_dir / "predictions.h5")
    if best not in pred["layers"]:
        raise ValueError(f"{probe_dir}: best layer {best} of scores.csv is missing from predictions.h5")
    y_pred, y_true = pred["test"]["y_pred"], pred["test"]["y_true"]  # [S, L, n], [n]
    reference = y_pred[:, pred["layers"].index(best), :]
    val = scores[scores["split"] == "val"].groupby("layer")["uar"].mean()
    tests = []
    for column, layer in sorted(enumerate(pred["layers"]), key=lambda item: item[1]):
        result = equivalence(y_true, y_pred[:, column, :], reference, cfg["delta"], cfg["n_boot"], cfg["seed"], cfg["level"],
                             len(pred["classes"]))
        tests.append({"layer": int(layer), "val_uar": float(val.get(layer, np.nan)), "n_test": int(y_true.shape[0]), **result})
    return best, tests


def model_architecture(name: str, mcfg: Mapping, cache_dir) -> dict | None:
    """The :mod:`bioprobe.flops` architecture of a model entry (through its weight lock), or None
    for handcrafted features (``logmel``, ``mfcc``). ``mcfg`` is self-contained (``of:`` inlined)."""
    from .flops import aves_architecture, hf_architecture
    from .models import check_source, resolve_architecture
    from .weights import lock_path, locked_file, read_lock

    source = check_source(name, mcfg)
    if source in ("logmel", "mfcc"):
        return None
    kind = resolve_architecture(name, mcfg)["source"] if source == "random_init" else source
    lock = read_lock(name, cache_dir)
    if lock is None:
        raise ValueError(f"{lock_path(name, cache_dir)}: no weight lock for model {name!r}; run the fetch_weights rule first")
    key = "config" if kind == "aves" else "config.json"
    path = locked_file(lock, key, cache_dir)
    try:
        config = json.loads(Path(path).read_text())
        return aves_architecture(config) if kind == "aves" else hf_architecture(config)
    except (ValueError, OSError) as err:
        raise ValueError(f"{path}: cannot read the architecture of model {name!r}: {err}") from err


def mean_clip_seconds(embeddings_h5) -> float:
    """Mean clip duration of an embedding file (its ``audio_seconds`` / clips), else 1 s."""
    import h5py

    with h5py.File(embeddings_h5, "r") as h5:
        seconds = h5.attrs.get("audio_seconds")
        n_clips = h5["clip_id"].shape[0]
    return float(seconds) / n_clips if seconds is not None and n_clips else 1.0


def cheapest_row(dataset: str, model: str, probe: str, probe_dir, cfg: Mapping, arch: Mapping | None,
                 clip_seconds: float = 1.0, label: str | None = None) -> dict:
    """One row of cheapest_layer.csv (see :data:`COLUMNS`)."""
    from .flops import compute_fraction

    best, tests = layer_equivalences(probe_dir, cfg)
    by_layer = {t["layer"]: t for t in tests}
    equivalent = [t["layer"] for t in tests if t["equivalent"]]
    cheapest = min(equivalent)  # the best layer is always equivalent to itself
    chosen = by_layer[cheapest]
    n_blocks = arch["n_blocks"] if arch else math.nan
    return {
        "dataset": dataset, "model": model, "label": label or model, "probe": probe,
        "best_layer": best, "best_val_uar": by_layer[best]["val_uar"], "best_test_uar": by_layer[best]["uar_b"],
        "cheapest_layer": cheapest, "cheapest_test_uar": chosen["uar_a"],
        "diff": chosen["diff"], "ci_low": chosen["ci_low"], "ci_high": chosen["ci_high"],
        "delta": cfg["delta"], "level": cfg["level"], "n_boot": cfg["n_boot"], "n_test": chosen["n_test"],
        "equivalent_layers": " ".join(map(str, equivalent)),
        "n_blocks": n_blocks,
        "blocks_fraction": cheapest / arch["n_blocks"] if arch else math.nan,
        "compute_fraction": compute_fraction(arch, cheapest, clip_seconds) if arch else math.nan,
        "clip_seconds": clip_seconds,
    }


def run_cheapest_layer(dataset: str, rule_entries: Mapping, probe_dirs: Mapping, embeddings: Mapping,
                       cache_dir, cfg: Mapping | None, out_csv) -> None:
    """What the ``cheapest_layer`` rule calls: one row per model of ``probe_dirs`` into ``out_csv``.

    ``rule_entries`` is each model's self-contained entry (:func:`bioprobe.models.rule_params`),
    ``probe_dirs`` and ``embeddings`` each model's probe folder and embedding file. The
    ``label`` column holds the model's key; :func:`write_cheapest_tables` puts the labels in
    (renaming a model re-draws the table without re-running the tests).
    """
    import pandas as pd

    from .fileio import write_csv

    cfg = resolve_cheapest_config(cfg)
    rows = []
    for model, probe_dir in probe_dirs.items():
        arch = model_architecture(model, rule_entries[model], cache_dir)
        rows.append(cheapest_row(dataset, model, cfg["probe"], probe_dir, cfg, arch, mean_clip_seconds(embeddings[model])))
    write_csv(out_csv, pd.DataFrame(rows, columns=COLUMNS))


def write_cheapest_tables(paths, out_csv, out_md, models: Mapping | None = None) -> None:
    """Gather the datasets' cheapest_layer.csv into one CSV and a Markdown table (UAR in %);
    ``models`` (the ``models:`` section) gives the labels."""
    import pandas as pd

    from .fileio import atomic_path, write_csv

    frames = [pd.read_csv(p) for p in paths]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    missing = set(COLUMNS) - set(table.columns)
    if missing:
        raise ValueError(f"{', '.join(map(str, paths))}: not cheapest-layer files, missing {', '.join(sorted(missing))}")
    table["label"] = [(models or {}).get(m, {}).get("label", m) for m in table["model"]]
    write_csv(out_csv, table[COLUMNS])
    lines = ["| dataset | model | best layer (val) | test UAR | cheapest layer | test UAR | diff [95% CI] | compute |",
             "|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        compute = "" if pd.isna(r.compute_fraction) else f"{100 * r.compute_fraction:.0f}%"
        lines.append(f"| {r.dataset} | {r.label} | {r.best_layer} | {100 * r.best_test_uar:.2f} | {r.cheapest_layer} | "
                     f"{100 * r.cheapest_test_uar:.2f} | {100 * r.diff:+.2f} [{100 * r.ci_low:+.2f}, {100 * r.ci_high:+.2f}] | {compute} |")
    deltas = ", ".join(f"{100 * d:g}" for d in (sorted(set(table["delta"])) if len(table) else [CHEAPEST_DEFAULTS["delta"]]))
    levels = ", ".join(f"{100 * v:g}%" for v in (sorted(set(table["level"])) if len(table) else [CHEAPEST_DEFAULTS["level"]]))
    lines += ["", f"Cheapest layer: the earliest layer whose paired bootstrap {levels} interval of the test-UAR difference to the "
                  f"validation-best layer lies inside ±{deltas} UAR point{'' if deltas == '1' else 's'}; compute: share of "
                  "the full model's operations needed to run it up to that layer."]
    with atomic_path(out_md) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
