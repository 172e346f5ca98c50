"""The files of a probe job and their readers: score and summary tables (UAR with bootstrap
CIs), ``confusion.csv``, ``history.csv``, ``predictions.h5`` (:func:`write_probe_outputs`,
:func:`read_predictions`), ``scores.csv`` (:func:`read_scores`) and the best layer of a job
(:func:`best_layer`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..metrics import bootstrap_indices, percentile_interval, uar_of_resamples
from .data import ProbeData, ProbeResult

def predicted_labels(posteriors: np.ndarray) -> np.ndarray:
    """Argmax class (ties -> lowest class index) of ``[..., C]`` posteriors."""
    return posteriors.argmax(axis=-1)


def score_tables(data: ProbeData, result: ProbeResult, ids: dict, cfg: dict):
    """Return ``(scores, summary)`` DataFrames of a probe result.

    ``scores``: one row per (seed, layer, split) with uar, epoch and a bootstrap CI of that
    seed's UAR. ``summary``: one row per (layer, split) with mean/std over seeds and a bootstrap
    CI of the seed-mean UAR (clips resampled jointly for all seeds); ``is_best`` marks the
    layer with the highest mean validation UAR (ties -> lowest layer).
    """
    import pandas as pd

    n_classes = len(data.classes)
    score_rows, summary_rows = [], []
    uar_mean_val = None
    per_split = {}
    for split in ("val", "test"):
        y_true = data.labels[result.rows[split]]
        boot = bootstrap_indices(y_true.shape[0], max(cfg["n_boot"], 1), cfg["bootstrap_seed"])
        preds = predicted_labels(result.posteriors[split])  # [S, L, n]
        uars = np.empty(preds.shape[:2])
        boots = np.empty((*preds.shape[:2], boot.shape[0]))
        full = np.arange(y_true.shape[0])[None, :]
        for s in range(preds.shape[0]):
            for li in range(preds.shape[1]):
                uars[s, li] = uar_of_resamples(y_true, preds[s, li], full, n_classes)[0]
                boots[s, li] = uar_of_resamples(y_true, preds[s, li], boot, n_classes)
        per_split[split] = (uars, boots)
        if split == "val":
            uar_mean_val = uars.mean(axis=0)
    best_column = int(np.argmax(uar_mean_val))  # first maximum = lowest layer among ties
    for split, (uars, boots) in per_split.items():
        use_ci = cfg["n_boot"] > 0
        low, high = percentile_interval(boots, cfg["ci_level"], axis=-1)
        mean_low, mean_high = percentile_interval(boots.mean(axis=0), cfg["ci_level"], axis=-1)
        for li, layer in enumerate(result.layers):
            for s, seed in enumerate(result.seeds):
                score_rows.append({
                    "dataset": ids["dataset"], "model": ids["model"], "layer": layer, "probe": ids["probe"],
                    "seed": seed, "split": split, "uar": uars[s, li],
                    "epoch": result.epoch[s, li],
                    "ci_low": low[s, li] if use_ci else np.nan, "ci_high": high[s, li] if use_ci else np.nan,
                    "n_clips": result.rows[split].shape[0],
                })
            summary_rows.append({
                "dataset": ids["dataset"], "model": ids["model"], "layer": layer, "probe": ids["probe"],
                "split": split, "uar_mean": uars[:, li].mean(),
                "uar_std": uars[:, li].std(ddof=1) if uars.shape[0] > 1 else np.nan,
                "n_seeds": uars.shape[0],
                "ci_low": mean_low[li] if use_ci else np.nan, "ci_high": mean_high[li] if use_ci else np.nan,
                "is_best": li == best_column,
            })
    scores = pd.DataFrame(score_rows)
    scores["epoch"] = scores["epoch"].astype("Int64") if scores["epoch"].notna().all() else scores["epoch"]
    return scores, pd.DataFrame(summary_rows), best_column


def confusion_table(data: ProbeData, result: ProbeResult, column: int, ids: dict):
    """Tidy confusion counts of layer column ``column`` on the test split, summed over seeds."""
    import pandas as pd

    from ..metrics import confusion_counts

    n_classes = len(data.classes)
    y_true = data.labels[result.rows["test"]]
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    for s in range(len(result.seeds)):
        counts += confusion_counts(y_true, predicted_labels(result.posteriors["test"][s, column]), n_classes)
    true_idx, pred_idx = np.meshgrid(np.arange(n_classes), np.arange(n_classes), indexing="ij")
    return pd.DataFrame({
        "dataset": ids["dataset"], "model": ids["model"], "probe": ids["probe"], "layer": result.layers[column],
        "true_label": np.asarray(data.classes, dtype=object)[true_idx.ravel()],
        "predicted_label": np.asarray(data.classes, dtype=object)[pred_idx.ravel()],
        "count": counts.ravel(), "n_seeds": len(result.seeds),
    })


def write_predictions(path, data: ProbeData, result: ProbeResult, ids: dict, cfg: dict, best_column: int, extra_attrs=None) -> None:
    """Write ``predictions.h5`` atomically.

    Layout::

        /classes            [C] class names (index = class id)
        /layers             [L] layer of each column (-1 = all layers / fused)
        /seeds              [S]
        /epoch              [S, L] epoch of the evaluated weights (NaN for knn)
        /{val,test}/clip_id [n]  /{val,test}/y_true [n]
        /{val,test}/y_pred  [S, L, n] int16   /{val,test}/posteriors [S, L, n, C] float32
        /mix_weights        [S, L_in] (weighted_sum only)
        attrs: dataset, model, probe, probe_config (JSON), best_layer, ...
    """
    import h5py

    from ..fileio import atomic_path
    from ..store import STR, set_attrs

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.create_dataset("classes", data=np.asarray(data.classes, dtype=object), dtype=STR)
        h5.create_dataset("layers", data=np.asarray(result.layers, dtype=np.int64))
        h5.create_dataset("seeds", data=np.asarray(result.seeds, dtype=np.int64))
        h5.create_dataset("epoch", data=result.epoch)
        for split in ("val", "test"):
            grp = h5.create_group(split)
            rows = result.rows[split]
            grp.create_dataset("clip_id", data=np.asarray([data.clip_ids[i] for i in rows], dtype=object), dtype=STR)
            grp.create_dataset("y_true", data=data.labels[rows].astype(np.int16))
            grp.create_dataset("y_pred", data=predicted_labels(result.posteriors[split]).astype(np.int16))
            grp.create_dataset("posteriors", data=result.posteriors[split].astype(np.float32), compression="gzip", shuffle=True)
        if "mix_weights" in result.extra:
            h5.create_dataset("mix_weights", data=result.extra["mix_weights"])
        set_attrs(h5, {
            **ids, "probe_config": cfg, "best_layer": int(result.layers[best_column]),
            "embedding_source": data.source.get("embeddings", ""), **(extra_attrs or {}),
        })


def read_predictions(path) -> dict:
    """Read a ``predictions.h5`` written by :func:`write_predictions` into plain numpy arrays."""
    import h5py

    from ..store import get_attrs

    path = Path(path)
    out = {}
    try:
        with h5py.File(path, "r") as h5:
            out["classes"] = [c.decode() if isinstance(c, bytes) else c for c in h5["classes"][:]]
            out["layers"] = h5["layers"][:].tolist()
            out["seeds"] = h5["seeds"][:].tolist()
            out["epoch"] = h5["epoch"][:]
            for split in ("val", "test"):
                grp = h5[split]
                out[split] = {
                    "clip_id": [c.decode() if isinstance(c, bytes) else c for c in grp["clip_id"][:]],
                    "y_true": grp["y_true"][:].astype(np.int64),
                    "y_pred": grp["y_pred"][:].astype(np.int64),
                    "posteriors": grp["posteriors"][:],
                }
            if "mix_weights" in h5:
                out["mix_weights"] = h5["mix_weights"][:]
            out["attrs"] = get_attrs(h5)
    except (KeyError, OSError) as err:
        raise ValueError(f"{path}: not a bioprobe predictions file ({err})") from err
    return out


def write_probe_outputs(out_dir, data: ProbeData, result: ProbeResult, ids: dict, cfg: dict, extra_attrs=None) -> None:
    """Write predictions.h5, confusion.csv, summary.csv, history.csv and (last) scores.csv."""
    import pandas as pd

    from ..fileio import pause_after_first_write, write_csv

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scores, summary, best_column = score_tables(data, result, ids, cfg)
    write_predictions(out_dir / "predictions.h5", data, result, ids, cfg, best_column, extra_attrs)
    pause_after_first_write("probe")  # test hook: predictions.h5 is in place, scores.csv is not
    write_csv(out_dir / "confusion.csv", confusion_table(data, result, best_column, ids))
    write_csv(out_dir / "summary.csv", summary)
    history = result.extra.get("history")
    if history is not None:
        n_seeds, n_layers = len(result.seeds), len(result.layers)
        frames = []
        for key, values in history.items():
            epochs = values.shape[0]
            frames.append(pd.DataFrame({
                "epoch": np.repeat(np.arange(1, epochs + 1), n_seeds * n_layers),
                "seed": np.tile(np.repeat(result.seeds, n_layers), epochs),
                "layer": np.tile(np.tile(result.layers, n_seeds), epochs),
                "metric": key, "value": values.ravel(),
            }))
        hist = pd.concat(frames).dropna(subset=["value"])
        write_csv(out_dir / "history.csv", hist)
    write_csv(out_dir / "scores.csv", scores)


def read_scores(path) -> "pandas.DataFrame":  # noqa: F821
    """Read a scores.csv and check its columns."""
    import pandas as pd

    frame = pd.read_csv(path)
    missing = {"dataset", "model", "layer", "probe", "seed", "split", "uar"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: not a bioprobe scores file (missing {', '.join(sorted(missing))})")
    return frame


def best_layer(scores) -> int:
    """The layer with the highest mean validation UAR over seeds (ties -> lowest layer)."""
    val = scores[scores["split"] == "val"]
    if val.empty:
        raise ValueError("scores hold no validation rows; cannot choose a best layer")
    means = val.groupby("layer")["uar"].mean().sort_index()
    return int(means.idxmax())
