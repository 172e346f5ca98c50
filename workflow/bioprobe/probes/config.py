"""Probe configuration: the probe types, the study's protocol, and the defaults and checks that
turn a ``probes:`` entry of config.yaml into a complete probe configuration
(:func:`resolve_probe_config`)."""

from __future__ import annotations

import math

#: The ``layer`` value of results that use all layers at once (weighted_sum, fusion).
ALL_LAYERS = -1

#: The manifest splits, in order.
SPLITS = ("train", "val", "test")
#: The values of a probe entry's ``type``.
PROBE_TYPES = ("mlp", "linear", "weighted_sum", "knn")

#: The study's probe (REFERENCE.md section 1); every key may be overridden in config.yaml.
STUDY_PROTOCOL = {
    "hidden_sizes": [128, 64, 32],
    "epochs": 30,
    "lr": 1e-3,
    "batch_size": 16,
    "patience": 10,  # early stopping on validation UAR; null disables early stopping
    "lr_factor": 0.1,  # ReduceLROnPlateau on validation loss
    "lr_patience": 10,
    "weight_decay": 0.0,
}

#: Defaults of every probe type (bootstrap CIs, layer subset).
COMMON_DEFAULTS = {"n_boot": 1000, "ci_level": 0.95, "bootstrap_seed": 0, "layers": None}
#: Defaults of the trained probe types (mlp, linear, weighted_sum).
TRAINED_DEFAULTS = {"protocol": "study", "evaluate": "best", "seeds": [42], **STUDY_PROTOCOL}
#: Defaults of the knn probe.
KNN_DEFAULTS = {"k": 10, "metric": "euclidean", "weights": "uniform"}

#: The keys a probe entry of each type may hold (``workflow/schemas/probes.schema.yaml`` lists
#: the same keys).
ALLOWED_KEYS = {
    "mlp": {"type", *COMMON_DEFAULTS, *TRAINED_DEFAULTS},
    "weighted_sum": {"type", *COMMON_DEFAULTS, *TRAINED_DEFAULTS},
    "linear": {"type", *COMMON_DEFAULTS, *(set(TRAINED_DEFAULTS) - {"hidden_sizes"})},
    "knn": {"type", *COMMON_DEFAULTS, *KNN_DEFAULTS},
}


def resolve_probe_config(probe_name: str, probe_cfg: dict) -> dict:
    """Return the probe entry with every default filled in, or raise ``ValueError`` naming the problem."""
    where = f"probes.{probe_name}"
    if not isinstance(probe_cfg, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(probe_cfg).__name__}")
    probe_type = probe_cfg.get("type")
    if probe_type not in PROBE_TYPES:
        raise ValueError(f"{where}.type: must be one of {', '.join(PROBE_TYPES)}, got {probe_type!r}")
    unknown = set(probe_cfg) - ALLOWED_KEYS[probe_type]
    if unknown:
        raise ValueError(f"{where}: unknown key(s) for type {probe_type}: {', '.join(sorted(unknown))}")
    defaults = dict(COMMON_DEFAULTS)
    defaults.update(KNN_DEFAULTS if probe_type == "knn" else TRAINED_DEFAULTS)
    cfg = {**defaults, **probe_cfg}
    if probe_type == "linear":
        cfg["hidden_sizes"] = []
    if probe_type == "knn":
        cfg["seeds"] = [0]  # deterministic: one result, recorded as seed 0
        _check_int(cfg, "k", where, minimum=1)
        _check_choice(cfg, "metric", ("euclidean", "cosine"), where)
        _check_choice(cfg, "weights", ("uniform", "distance"), where)
    else:
        _check_choice(cfg, "protocol", ("study",), where)
        _check_choice(cfg, "evaluate", ("best", "last"), where)
        seeds = cfg["seeds"]
        if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
            raise ValueError(f"{where}.seeds: must be a non-empty list of non-negative integers, got {seeds!r}")
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"{where}.seeds: repeated seed in {seeds}")
        hidden = cfg["hidden_sizes"]
        if not isinstance(hidden, list) or not all(isinstance(h, int) and h > 0 for h in hidden):
            raise ValueError(f"{where}.hidden_sizes: must be a list of positive integers, got {hidden!r}")
        _check_int(cfg, "epochs", where, minimum=1)
        _check_int(cfg, "batch_size", where, minimum=1)
        _check_int(cfg, "lr_patience", where, minimum=0)
        if cfg["patience"] is not None:
            _check_int(cfg, "patience", where, minimum=1)
        _check_number(cfg, "lr", where, low=0.0, low_open=True)
        _check_number(cfg, "lr_factor", where, low=0.0, high=1.0, low_open=True)
        _check_number(cfg, "weight_decay", where, low=0.0)
    _check_int(cfg, "n_boot", where, minimum=0)
    _check_int(cfg, "bootstrap_seed", where, minimum=0)
    _check_number(cfg, "ci_level", where, low=0.0, high=1.0, low_open=True, high_open=True)
    layers = cfg["layers"]
    if layers is not None and (not isinstance(layers, list) or not layers or not all(isinstance(x, int) and x >= 0 for x in layers)):
        raise ValueError(f"{where}.layers: must be null (all layers) or a non-empty list of layer indices, got {layers!r}")
    cfg["type"] = probe_type
    return cfg


def _check_choice(cfg, key, allowed, where):
    if cfg[key] not in allowed:
        raise ValueError(f"{where}.{key}: must be one of {', '.join(map(str, allowed))}, got {cfg[key]!r}")


def _check_int(cfg, key, where, minimum):
    value = cfg[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{where}.{key}: must be an integer >= {minimum}, got {value!r}")


def _check_number(cfg, key, where, low=None, high=None, low_open=False, high_open=False):
    value = cfg[key]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        bounds = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{where}.{key}: must be a number in {bounds}, got {value!r}")
