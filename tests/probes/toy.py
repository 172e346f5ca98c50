"""A synthetic probing problem shared by the probe tests: features whose class signal grows with the layer."""

import numpy as np

from bioprobe.probes import ProbeData

N_CLIPS, N_LAYERS, DIM, N_CLASSES = 360, 3, 12, 4


def synthetic(seed=0, n=N_CLIPS, n_layers=N_LAYERS, dim=DIM, n_classes=N_CLASSES):
    """Layer 0 is pure noise, later layers carry a growing class signal."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    centres = rng.normal(size=(n_layers, n_classes, dim))
    strength = np.linspace(0.0, 2.0, n_layers)
    features = rng.normal(size=(n, n_layers, dim)) + strength[None, :, None] * centres[:, labels].transpose(1, 0, 2)
    split = rng.choice(np.array(["train", "val", "test"]), n, p=[0.6, 0.2, 0.2])
    return features.astype(np.float32), labels, split


def probe_data(features, labels, split, columns):
    """ProbeData of the layer columns ``columns`` of ``features``."""
    return ProbeData(
        features=np.ascontiguousarray(features[:, columns]), labels=labels, split=split,
        clip_ids=[f"c{i}" for i in range(labels.shape[0])], classes=[f"k{c}" for c in range(labels.max() + 1)],
        layer_ids=list(columns),
    )
