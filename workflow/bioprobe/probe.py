"""Layer-wise probes: train one classifier per layer of a model's pooled embeddings.

One job trains *all* layers (and all seeds) of one (dataset, model, probe) together as one
vectorised computation: the parameters of the G = layers x seeds probes are stacked along a
leading group axis and every step is a batched matrix product (``torch.baddbmm``). Each group
keeps its own initialisation, batch order, Adam state, learning-rate schedule and early stopping,
so a group's result does not depend on which other groups were trained beside it: training
layer ``l`` alone (``layers=[l]``) gives the same weights and UAR within float tolerance
(``tests/test_probe.py`` checks it).

How a group stays independent of the others:

- its random generator is seeded from ``(seed, layer)`` only (:func:`group_seed`): it draws the
  initial weights and then one permutation of the training clips per epoch;
- every group's loss is the mean cross-entropy over its own batch; the job minimises the sum of
  the groups' losses, whose gradient w.r.t. a group's parameters is that group's gradient;
- Adam is elementwise (:class:`StackedAdam`, torch's fused Adam kernel over the stacked
  tensors); each group has its own learning rate, which a per-group ReduceLROnPlateau lowers;
- a group that early-stops is dropped from the stacked tensors (its chosen weights are kept),
  so it costs nothing and the others are untouched.

Probe types (``probes:`` entries of config.yaml; see docs/probes.md):

``mlp``           the study's MLP: z-scored input -> 128 -> 64 -> 32 -> C, LayerNorm + ReLU
                  after each hidden Linear, Adam 1e-3, batch 16, <= 30 epochs, early stopping on
                  validation UAR (patience 10), ReduceLROnPlateau on validation loss (0.1, 10).
``linear``        softmax regression (no hidden layer) with the same optimiser and schedule.
``weighted_sum``  SUPERB-style: a learned softmax-weighted sum of all z-scored layers feeds the
                  MLP head; one result per seed, reported as layer ``-1`` (:data:`ALL_LAYERS`).
``knn``           k-nearest neighbours per layer on z-scored features (deterministic, seed 0).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .metrics import bootstrap_indices, percentile_interval, uar_of_resamples

LOG = logging.getLogger(__name__)

#: The ``layer`` value of results that use all layers at once (weighted_sum, fusion).
ALL_LAYERS = -1

SPLITS = ("train", "val", "test")
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

_COMMON_DEFAULTS = {"n_boot": 1000, "ci_level": 0.95, "bootstrap_seed": 0, "layers": None}
_TRAINED_DEFAULTS = {"protocol": "study", "evaluate": "best", "seeds": [42], **STUDY_PROTOCOL}
_KNN_DEFAULTS = {"k": 10, "metric": "euclidean", "weights": "uniform"}

_ALLOWED_KEYS = {
    "mlp": {"type", *_COMMON_DEFAULTS, *_TRAINED_DEFAULTS},
    "weighted_sum": {"type", *_COMMON_DEFAULTS, *_TRAINED_DEFAULTS},
    "linear": {"type", *_COMMON_DEFAULTS, *(set(_TRAINED_DEFAULTS) - {"hidden_sizes"})},
    "knn": {"type", *_COMMON_DEFAULTS, *_KNN_DEFAULTS},
}


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


def resolve_probe_config(probe_name: str, probe_cfg: dict) -> dict:
    """Return the probe entry with every default filled in, or raise ``ValueError`` naming the problem."""
    where = f"probes.{probe_name}"
    if not isinstance(probe_cfg, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(probe_cfg).__name__}")
    probe_type = probe_cfg.get("type")
    if probe_type not in PROBE_TYPES:
        raise ValueError(f"{where}.type: must be one of {', '.join(PROBE_TYPES)}, got {probe_type!r}")
    unknown = set(probe_cfg) - _ALLOWED_KEYS[probe_type]
    if unknown:
        raise ValueError(f"{where}: unknown key(s) for type {probe_type}: {', '.join(sorted(unknown))}")
    defaults = dict(_COMMON_DEFAULTS)
    defaults.update(_KNN_DEFAULTS if probe_type == "knn" else _TRAINED_DEFAULTS)
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


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


@dataclass
class ProbeData:
    """Features, labels and splits of one dataset for one model (or a fusion of models).

    ``features`` is ``[n_clips, n_layers, dim]`` float32 in manifest order, *not yet* z-scored.
    ``layer_ids`` are the layer indices the columns of axis 1 stand for (``[-1]`` for fused input).
    """

    features: np.ndarray
    labels: np.ndarray  # [n_clips] int64 class indices
    split: np.ndarray  # [n_clips] str in train/val/test
    clip_ids: list[str]
    classes: list[str]
    layer_ids: list[int]
    source: dict = field(default_factory=dict)

    def indices(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)


def read_manifest(manifest_csv) -> "pandas.DataFrame":  # noqa: F821
    """Read a split file (``split.csv``) and check the columns the probes need (clip_id, label, split).

    Returns the clips the probes use: rows whose split is ``excluded`` are left out.
    """
    import pandas as pd

    manifest_csv = Path(manifest_csv)
    frame = pd.read_csv(manifest_csv, dtype={"clip_id": str, "label": str, "split": str}, keep_default_na=False)
    missing = {"clip_id", "label", "split"} - set(frame.columns)
    if missing:
        raise ValueError(f"{manifest_csv}: missing column(s) {', '.join(sorted(missing))}")
    bad = sorted(set(frame["split"]) - set(SPLITS) - {"excluded"})
    if bad:
        raise ValueError(f"{manifest_csv}: column 'split' holds {bad}; allowed are train, val, test, excluded")
    frame = frame[frame["split"] != "excluded"].reset_index(drop=True)
    if frame["clip_id"].duplicated().any():
        dup = frame.loc[frame["clip_id"].duplicated(), "clip_id"].iloc[0]
        raise ValueError(f"{manifest_csv}: duplicate clip_id {dup!r}")
    if (frame["label"] == "").any():
        raise ValueError(f"{manifest_csv}: empty label for clip {frame.loc[frame['label'] == '', 'clip_id'].iloc[0]!r}")
    for split in ("train", "val", "test"):
        if not (frame["split"] == split).any():
            raise ValueError(f"{manifest_csv}: no clip in split {split!r}; probes need train, val and test clips")
    return frame


def class_names(manifest) -> list[str]:
    """The classes of a dataset: the sorted unique labels of its used clips (index = class id)."""
    return sorted(set(manifest["label"]))


def align_to_manifest(clip_ids: list[str], manifest, source) -> np.ndarray:
    """Return the row of ``clip_ids`` for each used clip, or raise naming the missing ones.

    The embeddings may hold more clips than are used (clips excluded by label settings).
    """
    position = {cid: i for i, cid in enumerate(clip_ids)}
    if len(position) != len(clip_ids):
        raise ValueError(f"{source}: duplicate clip_id in the embedding file")
    missing = [cid for cid in manifest["clip_id"] if cid not in position]
    if missing:
        raise ValueError(f"{source}: {len(missing)} clip(s) of the split file have no embedding, e.g. {missing[:3]}; "
                         "the embeddings are stale, re-run the embed step")
    return np.fromiter((position[cid] for cid in manifest["clip_id"]), dtype=np.int64, count=len(manifest))


def embedding_shape(embeddings_h5) -> tuple[int, int, int]:
    """``(n_clips, n_layers, dim)`` of an embedding file, without reading the features."""
    import h5py

    try:
        with h5py.File(embeddings_h5, "r") as h5:
            shape = h5["features"].shape
    except (OSError, KeyError) as err:
        raise ValueError(f"{embeddings_h5}: not a readable bioprobe embedding file ({err})") from err
    if len(shape) != 3:
        raise ValueError(f"{embeddings_h5}: /features must be [n_clips, n_layers, dim], got shape {shape}")
    return tuple(int(x) for x in shape)


def load_probe_data(embeddings_h5, manifest_csv, layers: list[int] | None = None) -> ProbeData:
    """Read one model's pooled embeddings (all layers, or only ``layers``) matched to the manifest by clip_id."""
    from .store import read_embeddings

    manifest = read_manifest(manifest_csv)
    n_layers = embedding_shape(embeddings_h5)[1]
    layer_ids = list(range(n_layers)) if layers is None else list(layers)
    if any(layer >= n_layers for layer in layer_ids):
        raise ValueError(f"{embeddings_h5}: has {n_layers} layers, the probe asks for layers {layer_ids}")
    # only the requested layers are read (HDF5 wants them sorted and unique), then put in order
    stored = sorted(set(layer_ids))
    features, clip_ids, attrs = read_embeddings(embeddings_h5, layers=None if layers is None else stored)
    if layers is not None and stored != layer_ids:
        features = features[:, [stored.index(layer) for layer in layer_ids], :]
    order = align_to_manifest(clip_ids, manifest, embeddings_h5)
    if not np.array_equal(order, np.arange(len(order))):
        features = features[order]
    bad_rows = np.zeros(features.shape[0], dtype=bool)
    for column in range(features.shape[1]):  # layer by layer: no full-size boolean temporary
        bad_rows |= ~np.isfinite(features[:, column, :]).all(axis=1)
    if bad_rows.any():
        bad = np.flatnonzero(bad_rows)
        raise ValueError(f"{embeddings_h5}: non-finite features for {bad.size} clip(s), e.g. {[manifest['clip_id'].iloc[i] for i in bad[:3]]}")
    classes = class_names(manifest)
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array(manifest["label"].map(index), dtype=np.int64)
    return ProbeData(
        features=np.ascontiguousarray(features, dtype=np.float32),
        labels=labels,
        split=manifest["split"].to_numpy(str),
        clip_ids=list(manifest["clip_id"]),
        classes=classes,
        layer_ids=layer_ids,
        source={"embeddings": str(embeddings_h5), "manifest": str(manifest_csv), "embedding_attrs": attrs},
    )


def zscore_inplace(features: np.ndarray, train_index: np.ndarray, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Z-score ``features [n, L, D]`` (float32) in place with train-split mean and std per (layer, dim).

    Constant dimensions (std 0) are only centred, as in sklearn's StandardScaler. The statistics
    are accumulated in float64 over chunks of train clips (Chan et al.'s pairwise update of mean
    and sum of squared deviations), so no float64 copy of a whole layer is made; the arithmetic
    runs in torch, with torch's thread setting (the job's ``threads:``).
    Returns ``(mean [L, D], std [L, D])`` in float64.
    """
    import torch

    if not features.flags.writeable:
        raise ValueError("zscore_inplace: the features array is read-only; pass a writeable copy")
    data = torch.from_numpy(features)
    rows = torch.from_numpy(np.asarray(train_index, dtype=np.int64))
    n_layers, dim = features.shape[1:]
    means = np.empty((n_layers, dim), dtype=np.float64)
    stds = np.empty((n_layers, dim), dtype=np.float64)
    for layer in range(n_layers):
        column = data[:, layer, :]  # a view: [n, D]
        count, mean, m2 = 0, torch.zeros(dim, dtype=torch.float64), torch.zeros(dim, dtype=torch.float64)
        for start in range(0, rows.shape[0], chunk):
            part = column.index_select(0, rows[start : start + chunk]).double()
            part_count = part.shape[0]
            part_mean = part.mean(dim=0)
            part_m2 = (part - part_mean).square_().sum(dim=0)
            delta = part_mean - mean
            total = count + part_count
            mean += delta * (part_count / total)
            m2 += part_m2 + delta.square() * (count * part_count / total)
            count = total
        std = (m2 / max(count, 1)).sqrt_()
        std[std == 0] = 1.0
        means[layer], stds[layer] = mean.numpy(), std.numpy()
        column.sub_(mean.float()).div_(std.float())
    return means, stds


# --------------------------------------------------------------------------------------------
# The vectorised trainer
# --------------------------------------------------------------------------------------------


def group_seed(seed: int, layer: int) -> int:
    """Seed of the random generator of the probe of ``layer`` trained with ``seed``.

    It depends on (seed, layer) only, so a layer's probe is the same whether trained alone or
    with others. ``layer`` may be :data:`ALL_LAYERS` (-1).
    """
    return int(np.random.SeedSequence([int(seed), int(layer) + 1]).generate_state(1, dtype=np.uint64)[0] >> 1)


class StackedMLP:
    """G independent MLPs (or softmax regressions) whose parameters are stacked on axis 0.

    ``hidden_sizes=[128, 64, 32]`` is the study's probe; ``[]`` is a softmax regression.
    With ``mix_layers=L`` each group first mixes its ``[B, L, D]`` input with softmax weights
    over the L layers (SUPERB's weighted sum), initialised uniform.
    Parameter tensors (each ``[G, ...]``) are in :attr:`tensors`, in a fixed order; Linear
    weights are ``[G, out, in]`` (``torch.nn.Linear``'s layout).

    :meth:`forward` and :meth:`backward` are written out by hand rather than left to autograd:
    one step of G groups is then a few dozen batched kernels with no graph to build, and every gradient
    lands in a buffer that is reused from step to step (``torch`` would otherwise allocate, and
    the OS zero, a fresh 10 MB first-layer gradient every step). ``tests/test_probe.py`` checks
    the gradients against autograd's.
    """

    def __init__(self, in_dim: int, hidden_sizes: list[int], n_classes: int, mix_layers: int | None = None):
        self.in_dim = in_dim
        self.hidden_sizes = list(hidden_sizes)
        self.n_classes = n_classes
        self.mix_layers = mix_layers
        sizes = [in_dim, *self.hidden_sizes, n_classes]
        # (name, shape per group, init)
        self.spec: list[tuple[str, tuple[int, ...], str]] = []
        if mix_layers:
            self.spec.append(("mix_logits", (mix_layers,), "zeros"))
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            self.spec.append((f"linear{i}.weight", (fan_out, fan_in), f"uniform_t:{fan_in}"))
            self.spec.append((f"linear{i}.bias", (fan_out,), f"uniform:{fan_in}"))
            if i < len(self.hidden_sizes):
                self.spec.append((f"norm{i}.weight", (fan_out,), "ones"))
                self.spec.append((f"norm{i}.bias", (fan_out,), "zeros"))
        self.tensors: list = []

    def init(self, generators: list, device) -> None:
        """Draw each group's initial parameters from its own generator (nn.Linear's default rule)."""
        import torch

        per_group = []
        for gen in generators:
            params = []
            for _name, shape, rule in self.spec:
                if rule == "zeros":
                    params.append(torch.zeros(shape))
                elif rule == "ones":
                    params.append(torch.ones(shape))
                else:  # U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as torch.nn.Linear
                    bound = 1.0 / math.sqrt(int(rule.split(":")[1]))
                    # weights are drawn as [in, out] and stored transposed: the draws of earlier
                    # versions, so a seed still gives the same initial probe
                    draw = shape[::-1] if rule.startswith("uniform_t") else shape
                    value = (torch.rand(draw, generator=gen) * 2.0 - 1.0) * bound
                    params.append(value.T.contiguous() if rule.startswith("uniform_t") else value)
            per_group.append(params)
        self.tensors = [torch.stack([params[k] for params in per_group]).to(device) for k in range(len(self.spec))]

    def forward(self, x, tensors=None, saved: list | None = None):
        """``x [G, B, D]`` (or ``[G, B, L, D]`` with mixing) -> logits ``[G, B, C]``.

        With a list as ``saved``, what :meth:`backward` needs is appended to it.
        """
        import torch

        params = iter(self.tensors if tensors is None else tensors)
        if self.mix_layers:
            weights = torch.softmax(next(params), dim=-1)  # [G, L]
            if saved is not None:
                saved.append((x, weights))
            x = torch.einsum("gbld,gl->gbd", x, weights)
        for i in range(len(self.hidden_sizes) + 1):
            weight, bias = next(params), next(params)
            z = torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))  # [G, B, out]
            if i == len(self.hidden_sizes):
                if saved is not None:
                    saved.append((x,))
                return z
            gamma, beta = next(params), next(params)
            normed, mean, rstd = torch.native_layer_norm(z, [z.shape[-1]], None, None, LAYER_NORM_EPS)
            h = torch.relu_(torch.addcmul(beta.unsqueeze(1), normed, gamma.unsqueeze(1)))
            if saved is not None:
                saved.append((x, z, normed, mean, rstd, h))
            x = h

    def backward(self, saved: list, d_logits, grads: list) -> None:
        """Write into ``grads`` (one buffer per tensor) the gradient of the sum of the groups'
        losses, given ``d_logits [G, B, C]`` (its gradient w.r.t. the logits) and what
        :meth:`forward` saved. ``d_logits`` is overwritten."""
        import torch

        n_hidden = len(self.hidden_sizes)
        offset = 1 if self.mix_layers else 0
        k = len(self.tensors)  # walks back through the parameter list
        d = d_logits
        for i in range(n_hidden, -1, -1):
            entry = saved[offset + i]
            x = entry[0]
            if i < n_hidden:  # ReLU, the LayerNorm's affine, the LayerNorm
                _x, z, normed, mean, rstd, h = entry
                gamma = self.tensors[k - 2]
                d = d.masked_fill_(h <= 0, 0.0)
                torch.sum(d * normed, dim=1, out=grads[k - 2])
                torch.sum(d, dim=1, out=grads[k - 1])
                d = torch.ops.aten.native_layer_norm_backward(
                    d * gamma.unsqueeze(1), z, [z.shape[-1]], mean, rstd, None, None, [True, False, False]
                )[0]
                k -= 2
            weight = self.tensors[k - 2]
            torch.bmm(d.transpose(1, 2), x, out=grads[k - 2])  # [G, out, in]
            torch.sum(d, dim=1, out=grads[k - 1])
            k -= 2
            if i > 0 or self.mix_layers:
                d = torch.bmm(d, weight)  # gradient w.r.t. this Linear's input
        if self.mix_layers:
            x, weights = saved[0]
            d_weights = torch.einsum("gbd,gbld->gl", d, x)
            grads[0].copy_(weights * (d_weights - (weights * d_weights).sum(dim=-1, keepdim=True)))


#: torch.nn.LayerNorm's default epsilon.
LAYER_NORM_EPS = 1e-5


class StackedAdam:
    """Adam (``torch.optim.Adam``'s update, defaults betas (0.9, 0.999), eps 1e-8, L2 weight
    decay) over the stacked ``[G, ...]`` tensors ``params``, updated in place, one learning rate
    per group (:attr:`lrs`).

    The update is torch's fused Adam kernel (``torch._fused_adam_``, the kernel behind
    ``torch.optim.Adam(fused=True)``): one pass over memory, elementwise. All groups still
    training have taken the same number of steps, so one step counter serves them all.

    Bit-identical to training a group alone: the kernel's vector body and its scalar tail round
    differently, so a value must reach the kernel at a position that is in the vector body
    whenever it is when the group is alone. A tensor whose per-group size is a multiple of
    :data:`_WHOLE_VECTORS` (the big weight matrices) has no tail either way and goes to one call
    for all groups while they share a learning rate; the other tensors (biases of odd sizes,
    the last layer) and every tensor once rates differ go one call per group on that group's
    rows. ``tests/test_probe.py`` checks the update against ``torch.optim.Adam``.
    """

    def __init__(self, params: list, lrs: np.ndarray, weight_decay: float):
        import torch

        self.params = list(params)
        self.lrs = np.asarray(lrs, dtype=np.float64).copy()
        self.weight_decay = float(weight_decay)
        self.exp_avg = [torch.zeros_like(t) for t in params]
        self.exp_avg_sq = [torch.zeros_like(t) for t in params]
        self.grads = [torch.zeros_like(t) for t in params]  # the backward pass writes here
        self.steps = torch.zeros((), dtype=torch.float32, device=params[0].device)
        self._whole = [k for k, t in enumerate(params) if t[0].numel() % _WHOLE_VECTORS == 0]
        self._views()

    def _views(self) -> None:
        """Argument lists of the kernel: whole tensors, and per group its rows of all / of the rest."""
        state = (self.params, self.grads, self.exp_avg, self.exp_avg_sq)
        rest = [k for k in range(len(self.params)) if k not in self._whole]
        self._stacked = tuple([tensors[k] for k in self._whole] for tensors in state)
        self._rows_all = [tuple([t[g] for t in tensors] for tensors in state) for g in range(self.lrs.shape[0])]
        self._rows_rest = [tuple([tensors[k][g] for k in rest] for tensors in state) for g in range(self.lrs.shape[0])]

    def _update(self, lists, rate: float) -> None:
        import torch

        if lists[0]:
            torch._fused_adam_(
                *lists, [], [self.steps] * len(lists[0]),
                lr=rate, beta1=0.9, beta2=0.999, weight_decay=self.weight_decay, eps=1e-8,
                amsgrad=False, maximize=False, grad_scale=None, found_inf=None,
            )

    def step(self) -> None:
        self.steps += 1
        rates = self.lrs.tolist()
        if all(rate == rates[0] for rate in rates):
            self._update(self._stacked, rates[0])
            per_group = self._rows_rest
        else:
            per_group = self._rows_all
        for rate, lists in zip(rates, per_group):
            self._update(lists, rate)

    def keep(self, rows) -> list:
        """Keep groups ``rows`` (local indices) only, in that order; returns the new parameter tensors."""
        import torch

        index = torch.as_tensor(np.asarray(rows), device=self.steps.device)
        for state in (self.params, self.exp_avg, self.exp_avg_sq, self.grads):
            state[:] = [t[index].contiguous() for t in state]
        self.lrs = self.lrs[np.asarray(rows)]
        self._views()
        return self.params


#: A per-group size that is a multiple of this is all vector body in torch's fused Adam kernel
#: (a multiple of its vector width times unrolling on CPUs up to AVX-512).
_WHOLE_VECTORS = 64


@dataclass
class TrainedProbes:
    """What the trainer returns for G = n_seeds x n_layers groups (seed-major)."""

    tensors: list  # chosen parameters (best or last epoch), each [G, ...]
    epoch: np.ndarray  # [G] 1-based epoch of the chosen parameters
    epochs_run: np.ndarray  # [G] epochs trained before stopping
    history: dict  # val_uar / val_loss / lr: [epochs, G] (NaN after a group stopped)


def _uar_per_group(y_true, y_pred, n_classes: int):
    """UAR of each row of ``y_pred [G, n]`` against ``y_true [n]`` (numpy) -> ``[G]``."""
    n_groups = y_pred.shape[0]
    row = np.arange(n_groups)[:, None] * n_classes
    size = n_groups * n_classes
    support = np.broadcast_to(np.bincount(y_true, minlength=n_classes)[:n_classes], (n_groups, n_classes))
    predicted = np.bincount((row + y_pred).ravel(), minlength=size).reshape(n_groups, n_classes)
    hit = (y_true[None, :] == y_pred)
    hits = np.bincount((row + y_pred)[hit], minlength=size).reshape(n_groups, n_classes)
    recall = np.divide(hits, support, out=np.zeros((n_groups, n_classes)), where=support > 0)
    present = (support > 0) | (predicted > 0)
    return (recall * present).sum(1) / present.sum(1)


def _gather_groups(features, index, group_layer, mix: bool):
    """Rows ``index [G, B]`` of ``features [n, L, D]`` -> ``[G, B, D]`` (each group its layer) or ``[G, B, L, D]``."""
    if mix:
        return features[index]
    if not features.is_contiguous():
        return features[index, group_layer.unsqueeze(1)]
    n_clips, n_layers, dim = features.shape
    flat = (index * n_layers + group_layer.unsqueeze(1)).reshape(-1)  # row of the [n * L, D] view
    return features.view(n_clips * n_layers, dim).index_select(0, flat).view(*index.shape, dim)


def predict_logits(model: StackedMLP, tensors, features, rows, group_layer, mix: bool, chunk: int = 2048):
    """Logits ``[G, n, C]`` of every group for clips ``rows`` (evaluated in chunks of clips)."""
    import torch

    out = []
    with torch.no_grad():
        for start in range(0, rows.shape[0], chunk):
            part = rows[start : start + chunk]
            index = part.unsqueeze(0).expand(group_layer.shape[0], -1)
            out.append(model.forward(_gather_groups(features, index, group_layer, mix), tensors))
    return torch.cat(out, dim=1)


def denormals_flushed() -> bool:
    """Whether this thread flushes denormal floats to zero (torch has a setter but no getter)."""
    import torch

    return bool((torch.tensor([1e-39], dtype=torch.float32) * 1.0).item() == 0.0)


@contextlib.contextmanager
def flush_denormal():
    """Flush denormal floats to zero inside the block; the caller's setting is restored after."""
    import torch

    before = denormals_flushed()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)


def train_stacked(*args, **kwargs) -> tuple[StackedMLP, TrainedProbes]:
    """Train G probes at once (see :func:`_train_stacked`), denormals flushed to zero meanwhile.

    Adam's second moments and late-epoch gradients underflow into denormal floats, which are
    many times slower on x86 CPUs; flushing them changes no result that matters here. The
    caller's setting is restored afterwards.
    """
    with flush_denormal():
        return _train_stacked(*args, **kwargs)


def _train_stacked(
    features,
    labels,
    train_rows,
    val_rows,
    group_layer,
    group_seeds: list[int],
    cfg: dict,
    n_classes: int,
    mix_layers: int | None = None,
    log=None,
) -> tuple[StackedMLP, TrainedProbes]:
    """Train G probes at once; group g reads layer column ``group_layer[g]`` (ignored when mixing).

    ``features [n, L, D]`` (z-scored, torch, on the device; contiguous is gathered fastest),
    ``labels [n]`` (torch int64), ``train_rows``/``val_rows`` clip indices (torch int64).
    ``group_seeds[g]`` seeds group g's generator (see :func:`group_seed`). Groups that early-stop
    are dropped from the stacked tensors at the end of the epoch (their chosen weights are kept).
    Returns the model (for its forward) and the chosen parameters of all G groups.
    """
    import torch
    import torch.nn.functional as F

    log = log or LOG.info
    device = features.device
    n_groups = len(group_seeds)
    generators = [torch.Generator().manual_seed(s) for s in group_seeds]
    model = StackedMLP(features.shape[-1], cfg["hidden_sizes"], n_classes, mix_layers=mix_layers)
    model.init(generators, device)
    mix = bool(mix_layers)

    lr = np.full(n_groups, float(cfg["lr"]))
    alive = np.arange(n_groups)  # original index of each group still training (= row of model.tensors)
    optimizer = StackedAdam(model.tensors, lr, cfg["weight_decay"])
    best = [t.clone() for t in model.tensors]  # [G, ...], original group order
    last = [t.clone() for t in model.tensors]
    best_uar = np.full(n_groups, -np.inf)
    best_epoch = np.zeros(n_groups, dtype=np.int64)
    epochs_run = np.zeros(n_groups, dtype=np.int64)
    wait = np.zeros(n_groups, dtype=np.int64)  # early stopping (Lightning semantics)
    plateau_best = np.full(n_groups, np.inf)  # ReduceLROnPlateau (torch semantics, mode=min, rel 1e-4)
    plateau_bad = np.zeros(n_groups, dtype=np.int64)
    history = {k: np.full((cfg["epochs"], n_groups), np.nan) for k in ("val_uar", "val_loss", "lr", "train_loss")}

    n_train = train_rows.shape[0]
    batch_size = int(cfg["batch_size"])
    y_val = labels[val_rows].cpu().numpy()
    for epoch in range(cfg["epochs"]):
        n_alive = alive.shape[0]
        layer_alive = group_layer[torch.as_tensor(alive, device=device)]
        # one permutation per group from its own generator: its batch order is its own
        order = torch.stack([torch.randperm(n_train, generator=generators[g]) for g in alive]).to(device)
        order = train_rows[order]  # [G_alive, n_train] clip indices
        loss_sum = torch.zeros(n_alive, device=device)
        with torch.no_grad():
            for start in range(0, n_train, batch_size):
                index = order[:, start : start + batch_size]  # [G_alive, B]
                saved: list = []
                logits = model.forward(_gather_groups(features, index, layer_alive, mix), saved=saved)
                log_p = torch.log_softmax(logits, dim=-1)  # [G_alive, B, C]
                target = labels[index]  # [G_alive, B]
                # each group's own mean cross-entropy over its batch; the step minimises their sum,
                # whose gradient w.r.t. a group's parameters is that group's own gradient
                loss_sum -= log_p.gather(-1, target.unsqueeze(-1)).sum(dim=(1, 2))
                d_logits = log_p.exp_().sub_(F.one_hot(target, n_classes).to(log_p.dtype))
                model.backward(saved, d_logits.div_(index.shape[1]), optimizer.grads)
                optimizer.step()

        logits = predict_logits(model, None, features, val_rows, layer_alive, mix)  # [G_alive, n_val, C]
        val_loss = F.cross_entropy(
            logits.reshape(-1, n_classes), labels[val_rows].repeat(n_alive), reduction="none"
        ).view(n_alive, -1).mean(dim=1).cpu().numpy()
        val_uar = _uar_per_group(y_val, logits.argmax(dim=-1).cpu().numpy(), n_classes)
        history["val_uar"][epoch, alive] = val_uar
        history["val_loss"][epoch, alive] = val_loss
        history["lr"][epoch, alive] = lr[alive]
        history["train_loss"][epoch, alive] = loss_sum.cpu().numpy() / n_train
        epochs_run[alive] += 1

        improved = val_uar > best_uar[alive]  # local mask over alive groups
        best_uar[alive[improved]] = val_uar[improved]
        best_epoch[alive[improved]] = epoch + 1
        wait[alive[improved]] = 0
        wait[alive[~improved]] += 1
        if improved.any():
            local = torch.as_tensor(np.flatnonzero(improved), device=device)
            target = torch.as_tensor(alive[improved], device=device)
            for keep, t in zip(best, model.tensors):
                keep[target] = t[local]

        better_loss = val_loss < plateau_best[alive] * (1.0 - 1e-4)
        plateau_best[alive[better_loss]] = val_loss[better_loss]
        plateau_bad[alive[better_loss]] = 0
        plateau_bad[alive[~better_loss]] += 1
        for local_g, g in enumerate(alive):
            if plateau_bad[g] > cfg["lr_patience"]:
                new_lr = lr[g] * cfg["lr_factor"]
                if lr[g] - new_lr > 1e-8:
                    lr[g] = new_lr
                    optimizer.lrs[local_g] = new_lr
                plateau_bad[g] = 0

        stopping = np.zeros(n_alive, dtype=bool) if cfg["patience"] is None else wait[alive] >= cfg["patience"]
        if epoch + 1 == cfg["epochs"]:
            stopping[:] = True
        if stopping.any():
            local = torch.as_tensor(np.flatnonzero(stopping), device=device)
            target = torch.as_tensor(alive[stopping], device=device)
            for keep, t in zip(last, model.tensors):
                keep[target] = t[local]
        log(f"epoch {epoch + 1}: val UAR by group {dict(zip(alive.tolist(), np.round(val_uar, 4).tolist()))}, "
            f"{int((~stopping).sum())}/{n_groups} groups still training")
        if stopping.all():
            break
        if stopping.any():  # stopped groups cost no compute from now on
            keep_local = np.flatnonzero(~stopping)
            model.tensors = optimizer.keep(keep_local)
            alive = alive[keep_local]

    model.tensors = best if cfg["evaluate"] == "best" else last
    epoch_of_choice = best_epoch if cfg["evaluate"] == "best" else epochs_run
    return model, TrainedProbes(model.tensors, epoch_of_choice.copy(), epochs_run, history)


# --------------------------------------------------------------------------------------------
# Fitting every layer and seed of one job
# --------------------------------------------------------------------------------------------


@dataclass
class ProbeResult:
    """Predictions of one probe job: groups are (seed, layer) pairs.

    ``posteriors[split]`` is ``[n_seeds, n_layers, n_clips_of_split, C]``; ``epoch`` is
    ``[n_seeds, n_layers]`` (NaN where not applicable, e.g. knn).
    """

    layers: list[int]
    seeds: list[int]
    posteriors: dict
    rows: dict  # split -> clip indices into ProbeData
    epoch: np.ndarray
    extra: dict = field(default_factory=dict)  # e.g. mix_weights [n_seeds, L], history


def fit_probe(data: ProbeData, cfg: dict, device: str = "cpu", log=None) -> ProbeResult:
    """Z-score ``data.features`` in place (train statistics) and fit the probe of ``cfg``."""
    train, val, test = (data.indices(s) for s in SPLITS)
    zscore_inplace(data.features, train)
    if cfg["type"] == "knn":
        return _fit_knn(data, cfg, device)
    return _fit_trained(data, cfg, device, log)


def _fit_trained(data: ProbeData, cfg: dict, device: str, log) -> ProbeResult:
    import torch

    features = torch.from_numpy(data.features).to(device)
    labels = torch.from_numpy(data.labels).to(device)
    rows = {s: torch.from_numpy(data.indices(s)).to(device) for s in SPLITS}
    seeds = list(cfg["seeds"])
    mix_layers = data.features.shape[1] if cfg["type"] == "weighted_sum" else None
    layers = [ALL_LAYERS] if mix_layers else list(data.layer_ids)
    column = [0] if mix_layers else list(range(len(layers)))  # axis-1 column each layer reads
    group_layer = torch.tensor([c for _s in seeds for c in column], device=device)
    group_seeds = [group_seed(s, layer) for s in seeds for layer in layers]
    n_classes = len(data.classes)
    model, trained = train_stacked(
        features, labels, rows["train"], rows["val"], group_layer, group_seeds, cfg, n_classes, mix_layers, log
    )
    shape = (len(seeds), len(layers))
    posteriors = {}
    for split in ("val", "test"):
        logits = predict_logits(model, trained.tensors, features, rows[split], group_layer, bool(mix_layers))
        posteriors[split] = torch.softmax(logits, dim=-1).cpu().numpy().reshape(*shape, -1, n_classes)
    extra = {"history": trained.history, "epochs_run": trained.epochs_run.reshape(shape)}
    if mix_layers:
        extra["mix_weights"] = torch.softmax(trained.tensors[0], dim=-1).detach().cpu().numpy()  # [S, L]
    return ProbeResult(
        layers=layers,
        seeds=seeds,
        posteriors=posteriors,
        rows={s: data.indices(s) for s in SPLITS},
        epoch=trained.epoch.reshape(shape).astype(np.float64),
        extra=extra,
    )


def knn_posteriors(train_x, train_y, query_x, n_classes: int, k: int, metric: str, weights: str, chunk: int = 256):
    """k-NN class posteriors ``[n_query, C]``: (distance-weighted) vote shares of the k nearest.

    Distances are computed in float64 so that near-equal distances order as in scikit-learn;
    among exactly equal distances the pick of ``torch.topk`` is unspecified. With
    ``weights="distance"`` a neighbour at distance 0 gets a vote of 1e12 (it decides alone,
    as in scikit-learn).
    """
    import torch

    k = min(k, train_x.shape[0])
    if metric == "cosine":
        train_x = torch.nn.functional.normalize(train_x, dim=1)
        query_x = torch.nn.functional.normalize(query_x, dim=1)
    out = []
    train_x = train_x.double()
    train_sq = (train_x**2).sum(1)
    for start in range(0, query_x.shape[0], chunk):
        q = query_x[start : start + chunk].double()
        if metric == "cosine":
            dist = 1.0 - q @ train_x.T  # [q, n_train]
        else:
            dist = ((q**2).sum(1, keepdim=True) + train_sq[None, :] - 2.0 * q @ train_x.T).clamp_min(0).sqrt()
        nearest_dist, nearest = torch.topk(dist, k, dim=1, largest=False, sorted=True)
        if weights == "distance":
            vote = 1.0 / nearest_dist.clamp_min(1e-12)
        else:
            vote = torch.ones_like(nearest_dist)
        scores = torch.zeros(q.shape[0], n_classes, dtype=torch.float64, device=q.device)
        scores.scatter_add_(1, train_y[nearest], vote)
        out.append((scores / scores.sum(1, keepdim=True)).float())
    return torch.cat(out)


def _fit_knn(data: ProbeData, cfg: dict, device: str) -> ProbeResult:
    import torch

    rows = {s: data.indices(s) for s in SPLITS}
    n_classes = len(data.classes)
    train_y = torch.from_numpy(data.labels[rows["train"]]).to(device)
    posteriors = {s: np.empty((1, len(data.layer_ids), rows[s].shape[0], n_classes), np.float32) for s in ("val", "test")}
    for column in range(len(data.layer_ids)):
        layer_x = torch.from_numpy(np.ascontiguousarray(data.features[:, column, :])).to(device)
        train_x = layer_x[torch.from_numpy(rows["train"]).to(device)]
        for split in ("val", "test"):
            query = layer_x[torch.from_numpy(rows[split]).to(device)]
            posteriors[split][0, column] = knn_posteriors(
                train_x, train_y, query, n_classes, cfg["k"], cfg["metric"], cfg["weights"]
            ).cpu().numpy()
    return ProbeResult(
        layers=list(data.layer_ids),
        seeds=[0],
        posteriors=posteriors,
        rows=rows,
        epoch=np.full((1, len(data.layer_ids)), np.nan),
    )


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------


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

    from .metrics import confusion_counts

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

    from .fileio import atomic_path
    from .store import STR, set_attrs

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

    from .store import get_attrs

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

    from .fileio import write_csv

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scores, summary, best_column = score_tables(data, result, ids, cfg)
    write_predictions(out_dir / "predictions.h5", data, result, ids, cfg, best_column, extra_attrs)
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


# --------------------------------------------------------------------------------------------
# Entry point of the Snakemake rule
# --------------------------------------------------------------------------------------------


class _Settings:
    """Threads and determinism for the duration of a job, restored afterwards."""

    def __init__(self, threads: int | None):
        self.threads = threads

    def __enter__(self):
        import torch

        self._threads = torch.get_num_threads()
        self._deterministic = torch.are_deterministic_algorithms_enabled()
        if self.threads:
            torch.set_num_threads(int(self.threads))
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
        torch.use_deterministic_algorithms(True, warn_only=True)
        return self

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self._threads)
        torch.use_deterministic_algorithms(self._deterministic)


def resolve_device(device: str | None) -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; anything else is passed to torch."""
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def run_probe_job(
    embeddings_h5,
    manifest_csv,
    out_dir,
    dataset: str,
    model: str,
    probe_name: str,
    probe_cfg: dict,
    threads: int | None = None,
    device: str = "cpu",
    log=None,
) -> None:
    """Train and evaluate every layer (x every seed) of one (dataset, model, probe).

    Reads ``embeddings_h5`` (``bioprobe.store`` layout) and ``manifest_csv`` (clip_id, label,
    split), writes into ``out_dir``: ``predictions.h5``, ``confusion.csv`` (best layer, test,
    summed over seeds), ``summary.csv`` (per layer mean/std over seeds + CI), ``history.csv``
    (per-epoch validation curves) and, last, ``scores.csv``. ``log`` is an optional callable
    receiving progress lines.
    """
    cfg = resolve_probe_config(probe_name, probe_cfg)
    data = load_probe_data(embeddings_h5, manifest_csv, cfg["layers"])
    ids = {"dataset": dataset, "model": model, "probe": probe_name}
    device = resolve_device(device)
    LOG.info("probe %s on %s/%s: %d clips (train %d, val %d, test %d), %d layers x %d dims, %d classes, seeds %s, device %s",
             probe_name, dataset, model, len(data.clip_ids), *(data.indices(s).shape[0] for s in SPLITS),
             data.features.shape[1], data.features.shape[2], len(data.classes), cfg["seeds"], device)
    with _Settings(threads):
        result = fit_probe(data, cfg, device, log)
    write_probe_outputs(out_dir, data, result, ids, cfg, extra_attrs={"probe_type": cfg["type"]})
    LOG.info("probe %s on %s/%s: wrote %s", probe_name, dataset, model, out_dir)


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
