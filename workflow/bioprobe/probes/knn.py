"""The ``knn`` probe: k-nearest-neighbour class posteriors per layer on z-scored features
(deterministic; recorded as seed 0)."""

from __future__ import annotations

import numpy as np

from .config import SPLITS
from .data import ProbeData, ProbeResult

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


def fit_knn(data: ProbeData, cfg: dict, device: str) -> ProbeResult:
    """Fit the knn probe of ``cfg`` on every layer of ``data`` (features already z-scored):
    validation and test posteriors per layer, one result recorded as seed 0."""
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
