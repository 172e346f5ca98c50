"""The new model families through the whole workflow: tiny random models saved with
``save_pretrained`` (plus their feature extractor configs), ``source: huggingface`` entries by
local folder, a ``folder`` dataset of synthetic calls, Snakemake from manifest to figures, offline.
"""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from bioprobe.demo import make_synthetic_calls
from bioprobe.store import read_embeddings
from bioprobe.tiny import save_tiny_hf_model

REPO = Path(__file__).resolve().parents[1]
KINDS = ("data2vec_audio", "unispeech_sat", "wav2vec2_conformer", "whisper", "ast")
pytestmark = [pytest.mark.workflow, pytest.mark.timeout(1500)]


def test_new_families_end_to_end(tmp_path):
    labels = make_synthetic_calls(tmp_path / "calls", n_classes=3, clips_per_class=12, seed=0)
    models = {kind: {"source": "huggingface", "id": str(save_tiny_hf_model(kind, tmp_path / "models" / kind))} for kind in KINDS}
    models["off"] = {"source": "huggingface", "id": "org/never-fetched", "enabled": False}
    config = {
        "data_dir": "data",
        "model_cache": "cache",
        "datasets": {"calls": {"type": "folder", "root": str(labels.parent), "labels": str(labels),
                               "split": {"method": "stratified", "ratios": [0.6, 0.2, 0.2], "seed": 1}}},
        "models": models,
        "embed": {"batch_size": 8},
        "probes": {"mlp": {"type": "mlp", "protocol": "study", "seeds": [1], "epochs": 3}},
        "fusion": {"late": {"method": "late_average", "probe": "mlp", "models": ["whisper", "ast", "data2vec_audio"]}},
        "figures": {"formats": ["png"]},
    }
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    workdir = tmp_path / "work"
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(configfile), "--cores", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1400)
    if proc.returncode != 0:
        logs = "\n".join(f"--- {p}\n{p.read_text()[-2500:]}" for p in sorted((workdir / "logs").rglob("*.log"))[-8:])
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stderr[-5000:]}\n{logs}")
    results = workdir / "results"
    assert (results / "figures" / "layerwise_calls.png").stat().st_size > 0
    assert not (results / "calls" / "embeddings" / "off.h5").exists()
    for kind in KINDS:
        feats, ids, attrs = read_embeddings(results / "calls" / "embeddings" / f"{kind}.h5")
        assert feats.shape == (36, 3, 64) and len(ids) == 36
        assert attrs["input_normalization"]
        summary = pd.read_csv(results / "calls" / "probes" / kind / "mlp" / "summary.csv")
        assert len(summary) > 0
    best = pd.read_csv(results / "tables" / "best_layer.csv")
    assert set(KINDS) <= set(best["model"])
