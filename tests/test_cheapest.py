"""The cheapest good layer: the equivalence rule on constructed score sets, the per-model row
from a probe folder, the compute count, the gathered tables."""

import json

import numpy as np
import pandas as pd
import pytest

from bioprobe.cheapest import (
    COLUMNS,
    cheapest_row,
    equivalence,
    model_architecture,
    resolve_cheapest_config,
    run_cheapest_layer,
    write_cheapest_tables,
)
from bioprobe.flops import aves_architecture, compute_fraction, encoder_flops, hf_architecture
from bioprobe.probes import ProbeData, ProbeResult, resolve_probe_config, write_probe_outputs
from bioprobe.store import write_embeddings
from bioprobe.tiny import save_tiny_aves_model, save_tiny_hf_model, tiny_aves_config, tiny_hf_config
from bioprobe.weights import fetch_weights

C = 4


def balanced_truth(per_class):
    return np.repeat(np.arange(C), per_class)


def wrong_on(y_true, clips):
    """``y_true`` with the clips ``clips`` predicted as the next class."""
    pred = y_true.copy()
    pred[clips] = (pred[clips] + 1) % C
    return pred


def test_tied_within_delta_is_equivalent():
    y = balanced_truth(1250)  # 5000 clips
    rng = np.random.default_rng(0)
    b = wrong_on(y, rng.choice(y.size, 1000, replace=False))  # 80 % right
    a = wrong_on(b, rng.choice(np.flatnonzero(b == y), 10, replace=False))  # 10 clips worse: -0.2 points
    result = equivalence(y, a, b, delta=0.01)
    assert -0.004 < result["diff"] < 0 and result["equivalent"]
    assert -0.01 <= result["ci_low"] and result["ci_high"] <= 0.01
    assert not equivalence(y, a, b, delta=0.001)["equivalent"]  # delta is what decides


def test_clearly_worse_is_not_equivalent():
    y = balanced_truth(1250)
    rng = np.random.default_rng(1)
    b = wrong_on(y, rng.choice(y.size, 1000, replace=False))
    a = wrong_on(b, rng.choice(np.flatnonzero(b == y), 600, replace=False))  # 12 points worse
    result = equivalence(y, a, b, delta=0.01)
    assert result["ci_high"] < -0.01 and not result["equivalent"] and result["p_value"] < 0.01
    assert equivalence(y, a, b, delta=0.5)["equivalent"]  # within a (silly) 50-point margin


def test_noisy_and_undecidable_is_not_equivalent():
    # 80 test clips, both 70 % right on different clips: no difference at all (diff = 0, p = 1),
    # but the interval is far wider than +-1 point, so equivalence is not shown either
    y = balanced_truth(20)
    rows = np.arange(y.size).reshape(C, 20)
    a = wrong_on(y, rows[:, :6].ravel())
    b = wrong_on(y, rows[:, 14:].ravel())
    result = equivalence(y, a, b, delta=0.01)
    assert result["diff"] == 0 and result["p_value"] > 0.5
    assert result["ci_high"] - result["ci_low"] > 0.1 and not result["equivalent"]


def test_config_checks():
    assert resolve_cheapest_config({"delta": 0.02})["delta"] == 0.02
    with pytest.raises(ValueError, match="cheapest_layer.delta"):
        resolve_cheapest_config({"delta": 1})
    with pytest.raises(ValueError, match="unknown key"):
        resolve_cheapest_config({"margin": 0.1})


def test_compute_count_is_monotone_and_the_same_for_both_formats():
    hf = hf_architecture(tiny_hf_config("hubert").to_dict())
    aves = aves_architecture(tiny_aves_config())
    assert hf == aves  # the tiny AVES port has the tiny HuBERT geometry
    from transformers import HubertConfig

    base = hf_architecture(HubertConfig().to_dict())
    fractions = [compute_fraction(base, layer, seconds=2.0) for layer in range(13)]
    assert fractions[-1] == pytest.approx(1.0) and all(b > a for a, b in zip(fractions, fractions[1:]))
    # HuBERT-base, 2 s: the CNN front end is a large share (~1/3), each block ~5-6 %
    assert 0.25 < fractions[0] < 0.45
    front, block, frames = encoder_flops(base, 2.0)
    assert frames == 99 and 0.6e9 < block / 2 < 0.9e9  # ~0.7 GFLOP per block per second of audio
    with pytest.raises(ValueError, match="outside"):
        compute_fraction(base, 13)



def test_compute_count_of_a_tiny_encoder_by_hand():
    """The module's per-frame counts (2 ops per multiply-add), summed by hand for 10 samples."""
    arch = {"conv": [(4, 3, 2), (6, 2, 2)], "dim": 8, "ffn_dim": 16, "n_blocks": 2, "pos_conv_kernel": 4,
            "pos_conv_groups": 2}
    # conv 1: (10 - 3) // 2 + 1 = 4 outputs x 2*3*1*4; conv 2: (4 - 2) // 2 + 1 = 2 frames x 2*2*4*6
    convs = 4 * 24 + 2 * 96
    projection, positional = 2 * (2 * 6 * 8), 2 * (2 * 4 * 8 * 8 / 2)
    block = 2 * (8 * 8 * 8 + 4 * 2 * 8 + 4 * 8 * 16)  # Q, K, V, out; scores and weighted sum over T = 2; FFN
    assert encoder_flops(arch, 10 / 16000) == (convs + projection + positional, block, 2)
    front = convs + projection + positional
    assert compute_fraction(arch, 1, 10 / 16000) == pytest.approx((front + block) / (front + 2 * block))

def _constructed_probe_dir(root):
    """A probe folder whose layers are: 0 clearly worse, 1 tied with 2 on test, 2 best on val."""
    rng = np.random.default_rng(2)
    n_val, n_test, seeds = 400, 2000, [1, 2]
    y = np.concatenate([balanced_truth(n_val // C), balanced_truth(n_test // C)])
    split = np.array(["val"] * n_val + ["test"] * n_test)
    val_pred = [wrong_on(y[:n_val], rng.choice(n_val, m, replace=False)) for m in (200, 80, 40)]
    best_test = wrong_on(y[n_val:], rng.choice(n_test, 300, replace=False))
    test_pred = [wrong_on(y[n_val:], rng.choice(n_test, 800, replace=False)),
                 wrong_on(best_test, rng.choice(np.flatnonzero(best_test == y[n_val:]), 4, replace=False)), best_test]
    one_hot = lambda pred: np.eye(C)[pred]  # noqa: E731
    posteriors = {"val": np.stack([np.stack([one_hot(p) for p in val_pred])] * len(seeds)),
                  "test": np.stack([np.stack([one_hot(p) for p in test_pred])] * len(seeds))}
    data = ProbeData(features=np.zeros((y.size, 3, 1), np.float32), labels=y, split=split,
                     clip_ids=[f"c{i}" for i in range(y.size)], classes=list("abcd"), layer_ids=[0, 1, 2])
    result = ProbeResult(layers=[0, 1, 2], seeds=seeds, posteriors=posteriors,
                         rows={"val": np.arange(n_val), "test": np.arange(n_val, y.size)}, epoch=np.ones((2, 3)))
    cfg = resolve_probe_config("mlp", {"type": "mlp", "n_boot": 10})
    write_probe_outputs(root, data, result, {"dataset": "d", "model": "m", "probe": "mlp"}, cfg)
    return root


def test_cheapest_row_of_constructed_layers(tmp_path):
    probe_dir = _constructed_probe_dir(tmp_path / "probe")
    cfg = resolve_cheapest_config({})
    arch = hf_architecture(tiny_hf_config("hubert").to_dict())
    row = cheapest_row("d", "m", "mlp", probe_dir, cfg, arch, clip_seconds=1.5, label="M")
    assert row["best_layer"] == 2 and row["cheapest_layer"] == 1 and row["equivalent_layers"] == "1 2"
    assert row["ci_low"] >= -0.01 and row["ci_high"] <= 0.01 and row["diff"] < 0
    assert row["blocks_fraction"] == 0.5 and row["compute_fraction"] == pytest.approx(compute_fraction(arch, 1, 1.5))
    assert row["best_test_uar"] == pytest.approx(0.85) and set(row) == set(COLUMNS)
    strict = cheapest_row("d", "m", "mlp", probe_dir, resolve_cheapest_config({"delta": 0.0005}), None)
    assert strict["cheapest_layer"] == 2 and np.isnan(strict["compute_fraction"])  # only the best itself


def test_run_reads_architectures_through_locks_and_tables_gather(tmp_path):
    cache = tmp_path / "cache"
    hf = save_tiny_hf_model("wavlm", tmp_path / "wavlm")
    config, weights = save_tiny_aves_model(tmp_path / "aves")
    entries = {"w": {"source": "huggingface", "id": str(hf)},
               "a": {"source": "aves", "config_url": str(config), "weights_url": str(weights)},
               "r": {"source": "random_init", "of": {"source": "huggingface", "id": str(hf)}},
               "mel": {"source": "logmel"}}
    for name, entry in entries.items():
        fetch_weights(name, entry, cache)
    assert model_architecture("w", entries["w"], cache)["n_blocks"] == 2
    assert model_architecture("a", entries["a"], cache) == model_architecture("r", entries["r"], cache)
    assert model_architecture("mel", entries["mel"], cache) is None
    probe_dir = _constructed_probe_dir(tmp_path / "probe")
    emb = tmp_path / "emb.h5"
    write_embeddings(emb, np.zeros((4, 3, 2), np.float32), ["a", "b", "c", "d"], {"audio_seconds": 10.0})
    out = tmp_path / "d" / "cheapest_layer.csv"
    run_cheapest_layer("d", entries, {"w": probe_dir, "mel": probe_dir}, {"w": emb, "mel": emb}, cache, {"n_boot": 200}, out)
    table = pd.read_csv(out)
    assert list(table["model"]) == ["w", "mel"] and list(table["label"]) == ["w", "mel"]
    assert (table["clip_seconds"] == 2.5).all() and table["compute_fraction"].isna().tolist() == [False, True]
    write_cheapest_tables([out, out], tmp_path / "t.csv", tmp_path / "t.md", {"w": {"label": "WavLM"}})
    gathered = pd.read_csv(tmp_path / "t.csv")
    assert len(gathered) == 4 and list(gathered["label"]) == ["WavLM", "mel"] * 2
    md = (tmp_path / "t.md").read_text()
    assert "| d | WavLM | 2 | 85.00 | 1 |" in md and "95% interval" in md and "±1 UAR point;" in md
    json.loads(json.dumps(table.to_dict()))  # plain values


def test_an_interval_touching_delta_counts_as_equivalent():
    # a misses every clip of class 0 that b gets right, and nothing else: in every resample (all
    # classes present) UAR_a - UAR_b = -1/4 exactly, so the interval is [-0.25, -0.25]
    y = balanced_truth(250)
    b = y.copy()
    a = wrong_on(y, np.flatnonzero(y == 0))
    result = equivalence(y, a, b, delta=0.25, n_boot=200)
    assert result["ci_low"] == result["ci_high"] == -0.25
    assert result["equivalent"]


def test_layers_are_compared_with_the_validation_best_not_the_test_best_or_last(tmp_path):
    """Layer 1 is best on validation, layer 3 on test; layer 0 is tied with layer 1 on test."""
    from sklearn.metrics import recall_score

    rng = np.random.default_rng(3)
    n_val, n_test, seeds = 400, 2000, [1, 2]
    y = np.concatenate([balanced_truth(n_val // C), balanced_truth(n_test // C)])
    y_val, y_test = y[:n_val], y[n_val:]
    split = np.array(["val"] * n_val + ["test"] * n_test)
    val_pred = [wrong_on(y_val, rng.choice(n_val, m, replace=False)) for m in (120, 20, 200, 60)]
    layer1 = wrong_on(y_test, rng.choice(n_test, 300, replace=False))
    test_pred = [wrong_on(layer1, rng.choice(np.flatnonzero(layer1 == y_test), 4, replace=False)), layer1,
                 wrong_on(y_test, rng.choice(n_test, 900, replace=False)), wrong_on(y_test, rng.choice(n_test, 100, replace=False))]
    one_hot = lambda pred: np.eye(C)[pred]  # noqa: E731
    posteriors = {"val": np.stack([np.stack([one_hot(p) for p in val_pred])] * len(seeds)),
                  "test": np.stack([np.stack([one_hot(p) for p in test_pred])] * len(seeds))}
    data = ProbeData(features=np.zeros((y.size, 4, 1), np.float32), labels=y, split=split,
                     clip_ids=[f"c{i}" for i in range(y.size)], classes=list("abcd"), layer_ids=[0, 1, 2, 3])
    result = ProbeResult(layers=[0, 1, 2, 3], seeds=seeds, posteriors=posteriors,
                         rows={"val": np.arange(n_val), "test": np.arange(n_val, y.size)}, epoch=np.ones((2, 4)))
    write_probe_outputs(tmp_path, data, result, {"dataset": "d", "model": "m", "probe": "mlp"},
                        resolve_probe_config("mlp", {"type": "mlp", "n_boot": 10}))
    row = cheapest_row("d", "m", "mlp", tmp_path, resolve_cheapest_config({}), None)
    assert row["best_layer"] == 1 and row["cheapest_layer"] == 0 and row["equivalent_layers"] == "0 1"
    assert row["best_val_uar"] == pytest.approx(recall_score(y_val, val_pred[1], average="macro"))
    assert row["best_test_uar"] == pytest.approx(recall_score(y_test, layer1, average="macro"))
    assert row["cheapest_test_uar"] == pytest.approx(recall_score(y_test, test_pred[0], average="macro"))
