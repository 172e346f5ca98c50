"""Fixtures of the probe tests: the synthetic problem of toy.py written to disk."""

import numpy as np
import pandas as pd
import pytest

from bioprobe.store import write_embeddings

from .toy import N_CLIPS, synthetic


@pytest.fixture(scope="module")
def dataset_files(tmp_path_factory):
    """A manifest and an embedding file (rows shuffled against the manifest) on disk."""
    root = tmp_path_factory.mktemp("probe_data")
    features, labels, split = synthetic()
    names = np.array(["egg", "phee", "trill", "twitter"])  # sorted, so class index = label index
    clip_ids = [f"clip{i:04d}" for i in range(N_CLIPS)]
    manifest = pd.DataFrame({"clip_id": clip_ids, "path": "a.wav", "start": "", "end": "", "label": names[labels],
                             "group": "g", "split": split})
    manifest.to_csv(root / "manifest.csv", index=False)
    order = np.random.default_rng(9).permutation(N_CLIPS)
    write_embeddings(root / "emb.h5", features[order], [clip_ids[i] for i in order], {"model": "toy"})
    return root, features, labels, split
