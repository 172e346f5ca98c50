"""What a probe job reads and returns: :class:`ProbeData` (features, labels, splits) loaded from
an embedding file and aligned to the manifest by clip_id, train-split z-scoring
(:func:`zscore_inplace`), and :class:`ProbeResult` (the posteriors a probe produces)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import SPLITS

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
    from ..store import read_embeddings

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
