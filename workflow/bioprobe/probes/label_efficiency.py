"""Label efficiency: the test UAR of every layer's probe trained on k labelled clips per class.

For each k of the ``label_efficiency:`` section (e.g. 1, 2, 4, ..., 64 and ``all``) and each of
``draws`` seeded draws, the training clips are ``min(k, available)`` clips of every class drawn
from the train split; the probe of every layer is trained on them with the vectorised trainer
(all layers x all draws of one k in one stacked computation: the draws have equal sizes, each
group trains and early-stops on its own draw) and tested on the **whole, fixed test split**.

Draws (:func:`draw_rows`):

- draw ``d`` shuffles each class's train clips (and val clips) once with a generator seeded by
  ``(seed, d)``, independently of k, and takes the first ``min(k, n_c)`` of each class: the
  draws are **nested**, the k=2 draw of index d contains its k=1 draw;
- validation (early stopping, best epoch) is subsampled **in the same proportion**
  (``validation: proportional``): class c keeps ``round(n_val_c * min(k, n_c) / n_c)`` of its
  val clips, at least one, from the same nested shuffle; ``validation: full`` keeps every val
  clip (the labelled budget is then larger than k per class);
- ``k: all`` takes every train and val clip; its draws differ only in the probes'
  initialisation and batch order.

Each draw trains one probe per layer, seeded by :func:`~bioprobe.probes.train.group_seed` of
``(draw_seed(seed, d), layer)``; the probe entry's ``seeds`` are not used. Features are
z-scored with the mean and std of the *whole* train split: these statistics need no labels,
and unlabelled recordings are what a user with few labels has plenty of.

Output, one CSV per (dataset, model or fusion, probe): ``dataset, model, probe, k, draw,
layer, uar, val_uar, epoch, n_train, n_val, n_test`` (``uar`` is the test UAR, ``k`` an integer
or ``all``).
"""

from __future__ import annotations

import logging

import numpy as np

from .config import SPLITS, resolve_probe_config
from .data import ProbeData, load_probe_data, zscore_inplace
from .train import group_seed, predict_logits, train_stacked, uar_per_group

LOG = logging.getLogger(__name__)

#: The value of ``k`` that takes every labelled clip.
ALL = "all"
#: Defaults of the ``label_efficiency:`` section.
LABEL_EFFICIENCY_DEFAULTS = {
    "probe": "mlp",
    "k": [1, 2, 4, 8, 16, 32, 64, ALL],
    "draws": 5,
    "seed": 0,
    "validation": "proportional",
    "fusion": True,
}
#: Probe types label efficiency can train (per-layer, trained).
TRAINED_PER_LAYER = ("mlp", "linear")
COLUMNS = ["dataset", "model", "probe", "k", "draw", "layer", "uar", "val_uar", "epoch", "n_train", "n_val", "n_test"]
#: Keys of a probe entry label efficiency does not use: its draws replace the seeds, it reports
#: no confidence intervals. Left out of the rule's tracked params, so changing them re-runs nothing.
UNUSED_PROBE_KEYS = ("seeds", "n_boot", "ci_level", "bootstrap_seed")


def used_probe_settings(probe_cfg: dict) -> dict:
    """The keys of a ``probes:`` entry that label efficiency uses (all but :data:`UNUSED_PROBE_KEYS`)."""
    return {k: v for k, v in probe_cfg.items() if k not in UNUSED_PROBE_KEYS}


def resolve_label_efficiency_config(cfg: dict | None) -> dict:
    """The ``label_efficiency:`` section with defaults filled in, or ``ValueError`` naming the key."""
    where = "label_efficiency"
    cfg = {**LABEL_EFFICIENCY_DEFAULTS, **(cfg or {})}
    unknown = set(cfg) - set(LABEL_EFFICIENCY_DEFAULTS)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(LABEL_EFFICIENCY_DEFAULTS)}")
    ks = cfg["k"]
    if not isinstance(ks, list) or not ks or not all(k == ALL or (isinstance(k, int) and not isinstance(k, bool) and k >= 1) for k in ks):
        raise ValueError(f"{where}.k: must be a non-empty list of integers >= 1 or 'all', got {ks!r}")
    if len(set(map(str, ks))) != len(ks):
        raise ValueError(f"{where}.k: repeated value in {ks}")
    for key, minimum in (("draws", 1), ("seed", 0)):
        value = cfg[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ValueError(f"{where}.{key}: must be an integer >= {minimum}, got {value!r}")
    if cfg["validation"] not in ("proportional", "full"):
        raise ValueError(f"{where}.validation: must be proportional or full, got {cfg['validation']!r}")
    if not isinstance(cfg["fusion"], bool):
        raise ValueError(f"{where}.fusion: must be true or false, got {cfg['fusion']!r}")
    cfg["k"] = sorted(ks, key=lambda k: float("inf") if k == ALL else k)
    return cfg


def draw_seed(seed: int, draw: int) -> int:
    """The seed of draw ``draw``: it shuffles the clips and seeds that draw's probes."""
    return int(np.random.SeedSequence([int(seed), int(draw)]).generate_state(1, dtype=np.uint64)[0] >> 1)


def _val_count(n_val: int, taken: int, available: int, validation: str) -> int:
    if validation == "full" or n_val == 0 or available == 0 or taken >= available:
        return n_val
    return min(n_val, max(1, int(np.floor(n_val * taken / available + 0.5))))


def draw_rows(labels, split, k, draw: int, seed: int, validation: str = "proportional") -> tuple[np.ndarray, np.ndarray]:
    """Train and val clip indices (sorted) of draw ``draw`` with ``k`` clips per class (or ``all``).

    Nested: the shuffles depend on ``(seed, draw)`` and the class only, never on ``k``, so a
    larger k keeps every clip of a smaller one (for train and, with ``proportional``, for val).
    """
    labels = np.asarray(labels)
    split = np.asarray(split)
    rng = np.random.default_rng(draw_seed(seed, draw))
    train, val = [], []
    for c in np.unique(labels):  # class order, so every class's shuffle is the same for every k
        tr = rng.permutation(np.flatnonzero((split == "train") & (labels == c)))
        va = rng.permutation(np.flatnonzero((split == "val") & (labels == c)))
        taken = tr.size if k == ALL else min(int(k), tr.size)
        train.append(tr[:taken])
        val.append(va[: _val_count(va.size, taken, tr.size, validation)])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def fit_label_efficiency(data: ProbeData, probe_cfg: dict, le_cfg: dict, device: str = "cpu", log=None) -> list[dict]:
    """Train every layer on every (k, draw) of ``le_cfg``; one row per (k, draw, layer).

    ``probe_cfg`` is a resolved ``mlp`` or ``linear`` probe config. ``data.features`` is z-scored
    in place with the whole train split's statistics.
    """
    import torch

    if probe_cfg["type"] not in TRAINED_PER_LAYER:
        raise ValueError(f"label efficiency trains per-layer probes ({', '.join(TRAINED_PER_LAYER)}), not {probe_cfg['type']!r}")
    train, _val, test = (data.indices(s) for s in SPLITS)
    zscore_inplace(data.features, train)
    features = torch.from_numpy(data.features).to(device)
    labels = torch.from_numpy(data.labels).to(device)
    test_rows = torch.from_numpy(test).to(device)
    y_test = data.labels[test]
    n_classes = len(data.classes)
    layers = list(data.layer_ids)
    columns = list(range(len(layers)))
    draws = range(le_cfg["draws"])
    rows = []
    for k in le_cfg["k"]:
        drawn = [draw_rows(data.labels, data.split, k, d, le_cfg["seed"], le_cfg["validation"]) for d in draws]
        sizes = {(tr.size, va.size) for tr, va in drawn}
        if len(sizes) != 1:
            raise RuntimeError(f"label efficiency k={k}: draws of unequal sizes {sorted(sizes)}")
        train_rows = torch.from_numpy(np.stack([tr for tr, _va in drawn for _c in columns])).to(device)  # [G, n_k]
        val_rows = torch.from_numpy(np.stack([va for _tr, va in drawn for _c in columns])).to(device)
        group_layer = torch.tensor([c for _d in draws for c in columns], device=device)
        seeds = [group_seed(draw_seed(le_cfg["seed"], d), layer) for d in draws for layer in layers]
        model, trained = train_stacked(features, labels, train_rows, val_rows, group_layer, seeds, probe_cfg, n_classes, None, log)
        test_pred = predict_logits(model, trained.tensors, features, test_rows, group_layer, False).argmax(-1).cpu().numpy()
        val_pred = predict_logits(model, trained.tensors, features, val_rows, group_layer, False).argmax(-1).cpu().numpy()
        test_uar = uar_per_group(y_test, test_pred, n_classes)
        val_uar = uar_per_group(data.labels[val_rows.cpu().numpy()], val_pred, n_classes)
        n_train, n_val = sizes.pop()
        for g, (d, layer) in enumerate((d, layer) for d in draws for layer in layers):
            rows.append({"k": k, "draw": d, "layer": layer, "uar": float(test_uar[g]), "val_uar": float(val_uar[g]),
                         "epoch": int(trained.epoch[g]), "n_train": int(n_train), "n_val": int(n_val), "n_test": int(test.size)})
        LOG.info("label efficiency k=%s: %d train / %d val clips per draw, best mean test UAR %.4f", k, n_train, n_val,
                 max(np.mean(test_uar[[i * len(layers) + c for i in draws]]) for c in columns))
    return rows


def label_efficiency_table(data: ProbeData, ids: dict, probe_name: str, probe_cfg: dict, le_cfg: dict,
                           device: str = "cpu", log=None) -> "pandas.DataFrame":  # noqa: F821
    """:func:`fit_label_efficiency` as a frame with the :data:`COLUMNS` (``ids``: dataset, model)."""
    import pandas as pd

    cfg = resolve_probe_config(probe_name, probe_cfg)
    rows = fit_label_efficiency(data, cfg, le_cfg, device, log)
    frame = pd.DataFrame(rows)
    frame.insert(0, "probe", probe_name)
    frame.insert(0, "model", ids["model"])
    frame.insert(0, "dataset", ids["dataset"])
    return frame[COLUMNS]


def write_label_efficiency(frame, out_csv) -> None:
    from ..fileio import write_csv

    write_csv(out_csv, frame)


def run_label_efficiency_job(embeddings_h5, manifest_csv, out_csv, dataset: str, model: str, probe_name: str,
                             probe_cfg: dict, le_cfg: dict | None, threads: int | None = None, device: str = "cpu") -> None:
    """What the ``label_efficiency`` rule calls for one (dataset, model, probe): writes ``out_csv``."""
    from .job import TorchSettings, resolve_device

    le_cfg = resolve_label_efficiency_config(le_cfg)
    probe_layers = resolve_probe_config(probe_name, probe_cfg)["layers"]
    data = load_probe_data(embeddings_h5, manifest_csv, probe_layers)
    with TorchSettings(threads):
        frame = label_efficiency_table(data, {"dataset": dataset, "model": model}, probe_name, probe_cfg, le_cfg,
                                       resolve_device(device))
    write_label_efficiency(frame, out_csv)


def read_label_efficiency(paths) -> "pandas.DataFrame":  # noqa: F821
    """Concatenate label-efficiency CSVs, checking their columns; ``k`` stays ``int`` or ``'all'``."""
    import pandas as pd

    frames = []
    for path in paths:
        frame = pd.read_csv(path, dtype={"k": str, "model": str, "dataset": str, "probe": str})
        missing = set(COLUMNS) - set(frame.columns)
        if missing:
            raise ValueError(f"{path}: not a label-efficiency file, missing column(s) {', '.join(sorted(missing))}")
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    out["k"] = [ALL if k == ALL else int(k) for k in out["k"]]
    return out
