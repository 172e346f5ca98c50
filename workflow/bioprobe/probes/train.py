"""The vectorised trainer and :func:`fit_probe`, the entry point that fits any probe type.

One job trains *all* layers (and all seeds) of one (dataset, model, probe) together as one
vectorised computation: the parameters of the G = layers x seeds probes are stacked along a
leading group axis and every step is a batched matrix product (``torch.baddbmm``). Each group
keeps its own initialisation, batch order, Adam state, learning-rate schedule and early stopping,
so a group's result does not depend on which other groups were trained beside it: training
layer ``l`` alone (``layers=[l]``) gives the same weights and UAR within float tolerance
(``tests/probes/test_train.py`` checks it).

How a group stays independent of the others:

- its random generator is seeded from ``(seed, layer)`` only (:func:`group_seed`): it draws the
  initial weights and then one permutation of the training clips per epoch;
- every group's loss is the mean cross-entropy over its own batch; the job minimises the sum of
  the groups' losses, whose gradient w.r.t. a group's parameters is that group's gradient;
- Adam is elementwise (:class:`~bioprobe.probes.mlp.StackedAdam`, torch's fused Adam kernel over
  the stacked tensors); each group has its own learning rate, which a per-group
  ReduceLROnPlateau lowers;
- a group that early-stops is dropped from the stacked tensors (its chosen weights are kept),
  so it costs nothing and the others are untouched.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import numpy as np

from .config import ALL_LAYERS, SPLITS
from .data import ProbeData, ProbeResult, zscore_inplace
from .knn import fit_knn
from .mlp import StackedAdam, StackedMLP

LOG = logging.getLogger(__name__)

def group_seed(seed: int, layer: int) -> int:
    """Seed of the random generator of the probe of ``layer`` trained with ``seed``.

    It depends on (seed, layer) only, so a layer's probe is the same whether trained alone or
    with others. ``layer`` may be :data:`ALL_LAYERS` (-1).
    """
    return int(np.random.SeedSequence([int(seed), int(layer) + 1]).generate_state(1, dtype=np.uint64)[0] >> 1)


@dataclass
class TrainedProbes:
    """What the trainer returns for G = n_seeds x n_layers groups (seed-major)."""

    tensors: list  # chosen parameters (best or last epoch), each [G, ...]
    epoch: np.ndarray  # [G] 1-based epoch of the chosen parameters
    epochs_run: np.ndarray  # [G] epochs trained before stopping
    history: dict  # val_uar / val_loss / lr: [epochs, G] (NaN after a group stopped)


def uar_per_group(y_true, y_pred, n_classes: int):
    """UAR of each row of ``y_pred [G, n]`` against ``y_true [n]`` or ``[G, n]`` (numpy) -> ``[G]``."""
    n_groups = y_pred.shape[0]
    row = np.arange(n_groups)[:, None] * n_classes
    size = n_groups * n_classes
    if y_true.ndim == 1:
        support = np.broadcast_to(np.bincount(y_true, minlength=n_classes)[:n_classes], (n_groups, n_classes))
    else:  # each group its own clips
        support = np.bincount((row + y_true).ravel(), minlength=size).reshape(n_groups, n_classes)
    predicted = np.bincount((row + y_pred).ravel(), minlength=size).reshape(n_groups, n_classes)
    hit = (np.atleast_2d(y_true) == y_pred)
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
    """Logits ``[G, n, C]`` of every group for clips ``rows`` (evaluated in chunks of clips).

    ``rows`` is ``[n]`` (the same clips for every group) or ``[G, n]`` (each group its own clips).
    """
    import torch

    out = []
    with torch.no_grad():
        for start in range(0, rows.shape[-1], chunk):
            if rows.dim() == 2:
                index = rows[:, start : start + chunk]
            else:
                index = rows[start : start + chunk].unsqueeze(0).expand(group_layer.shape[0], -1)
            out.append(model.forward(_gather_groups(features, index, group_layer, mix), tensors))
    return torch.cat(out, dim=1)


def epoch_order(generators: list, alive, train_rows, alive_t):
    """``[G_alive, n_train]`` training clips of the groups still training, in this epoch's order.

    One permutation per group from its own (CPU) generator, so its batch order is its own; the
    permutations move to the rows' device. ``train_rows``: ``[n]`` or ``[G, n]`` (per group).
    """
    import torch

    n_train = train_rows.shape[-1]
    order = torch.stack([torch.randperm(n_train, generator=generators[g]) for g in alive]).to(train_rows.device)
    return torch.gather(train_rows[alive_t], 1, order) if train_rows.dim() == 2 else train_rows[order]


def train_step(model: StackedMLP, optimizer: StackedAdam, features, labels, index, group_layer, mix: bool, n_classes: int):
    """One Adam step of every group on its batch ``index [G, B]``; returns each group's summed log-likelihood ``[G]``.

    Each group's loss is its own mean cross-entropy over its batch; the step minimises their sum,
    whose gradient w.r.t. a group's parameters is that group's own gradient.
    """
    import torch
    import torch.nn.functional as F

    saved: list = []
    logits = model.forward(_gather_groups(features, index, group_layer, mix), saved=saved)
    log_p = torch.log_softmax(logits, dim=-1)  # [G, B, C]
    target = labels[index]  # [G, B]
    log_likelihood = log_p.gather(-1, target.unsqueeze(-1)).sum(dim=(1, 2))
    d_logits = log_p.exp_().sub_(F.one_hot(target, n_classes).to(log_p.dtype))
    model.backward(saved, d_logits.div_(index.shape[1]), optimizer.grads)
    optimizer.step()
    return log_likelihood


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
    ``labels [n]`` (torch int64), ``train_rows``/``val_rows`` clip indices (torch int64): ``[n]``
    shared by all groups, or ``[G, n]`` when each group trains and early-stops on its own clips
    (label efficiency: one draw of training clips per group; all draws of a size n).
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

    n_train = train_rows.shape[-1]
    per_group = train_rows.dim() == 2
    if per_group and (train_rows.shape[0] != n_groups or val_rows.dim() != 2 or val_rows.shape[0] != n_groups):
        raise ValueError(f"per-group rows must be [{n_groups}, n] for both train and val, got {tuple(train_rows.shape)} and {tuple(val_rows.shape)}")
    batch_size = int(cfg["batch_size"])
    y_val = labels[val_rows].cpu().numpy()  # [n_val] or [G, n_val]
    for epoch in range(cfg["epochs"]):
        n_alive = alive.shape[0]
        alive_t = torch.as_tensor(alive, device=device)
        layer_alive = group_layer[alive_t]
        order = epoch_order(generators, alive, train_rows, alive_t)  # [G_alive, n_train] clip indices
        loss_sum = torch.zeros(n_alive, device=device)
        with torch.no_grad():
            for start in range(0, n_train, batch_size):
                index = order[:, start : start + batch_size]  # [G_alive, B]
                loss_sum -= train_step(model, optimizer, features, labels, index, layer_alive, mix, n_classes)

        val_alive = val_rows[alive_t] if per_group else val_rows
        logits = predict_logits(model, None, features, val_alive, layer_alive, mix)  # [G_alive, n_val, C]
        val_target = labels[val_alive].reshape(-1) if per_group else labels[val_rows].repeat(n_alive)
        val_loss = F.cross_entropy(
            logits.reshape(-1, n_classes), val_target, reduction="none"
        ).view(n_alive, -1).mean(dim=1).cpu().numpy()
        val_uar = uar_per_group(y_val[alive] if per_group else y_val, logits.argmax(dim=-1).cpu().numpy(), n_classes)
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


def fit_probe(data: ProbeData, cfg: dict, device: str = "cpu", log=None) -> ProbeResult:
    """Z-score ``data.features`` in place (train statistics) and fit the probe of ``cfg``."""
    train, val, test = (data.indices(s) for s in SPLITS)
    zscore_inplace(data.features, train)
    if cfg["type"] == "knn":
        return fit_knn(data, cfg, device)
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
