"""bioprobe's resample + embed steps against an independent reference of the study's recipe.

The reference (tests/reference_pipeline.py) imports nothing from bioprobe. Models: tiny random
Hugging Face models made here with transformers and ``save_pretrained`` (the real CNN front
end, hidden size 32). Audio: synthetic calls at odd sample rates, some stereo, some shorter
than 5000 samples at 16 kHz. Agreement: median relative difference of the pooled features
below 1e-4 (float32 forward passes; the tail of the distribution is float32 noise on
features near 0).
"""

import ast
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import reference_pipeline as ref

REPO = Path(__file__).resolve().parent.parent
TOL_MEDIAN = 1e-4
RATES = (22050, 44100, 11025, 32000, 48000, 96000, 7350, 8000)


def median_rel_diff(ours, theirs):
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    return float(np.median(np.abs(ours - theirs) / np.maximum(np.abs(theirs), 1e-12)))


def test_the_reference_imports_nothing_from_bioprobe():
    tree = ast.parse((Path(__file__).parent / "reference_pipeline.py").read_text())
    imported = [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert imported and not [m for m in imported if m.split(".")[0] == "bioprobe"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Tiny random HuBERT (group-norm CNN, post-LN) and wav2vec2 (layer-norm CNN, pre-LN), saved to disk."""
    from transformers import HubertConfig, HubertModel, Wav2Vec2Config, Wav2Vec2Model

    root = tmp_path_factory.mktemp("reference_models")
    common = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                  conv_dim=(16,) * 7, conv_stride=(5, 2, 2, 2, 2, 2, 2), conv_kernel=(10, 3, 3, 3, 3, 2, 2),
                  num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    folders = {}
    torch.manual_seed(11)
    for name, model in (
        ("hubert", HubertModel(HubertConfig(feat_extract_norm="group", **common))),
        ("w2v2", Wav2Vec2Model(Wav2Vec2Config(feat_extract_norm="layer", do_stable_layer_norm=True, **common))),
    ):
        model.save_pretrained(root / name)
        folders[name] = root / name
    return folders


def load_reference_model(folder):
    from transformers import AutoModel

    return AutoModel.from_pretrained(folder, dtype=torch.float32).eval()


def synthetic_call(rng, sr, seconds, channels=1):
    t = np.arange(int(sr * seconds)) / sr
    f0 = rng.uniform(300, min(3000, sr / 4))
    call = np.sin(2 * np.pi * (f0 * t + rng.uniform(-200, 200) * t**2)) * np.hanning(len(t))
    wave = 0.3 * call + 0.02 * rng.standard_normal(len(t))
    return np.stack([wave * (1 - 0.2 * c) for c in range(channels)], axis=1).astype(np.float32) * rng.uniform(0.05, 0.9)


def run_pipeline(manifest, root, tmp, name, folder, embed_cfg):
    """bioprobe's resample step (soxr_hq) then embed step, on a manifest; features in manifest order."""
    from bioprobe.audio import resample_manifest
    from bioprobe.embed import embed_dataset
    from bioprobe.store import read_embeddings

    audio = tmp / f"audio16k_{name}.h5"
    if not audio.exists():
        resample_manifest(manifest, root, audio, resampler="soxr_hq", progress=False)
    out = tmp / f"{name}.h5"
    embed_dataset(audio, out, name, {"source": "huggingface", "id": str(folder)}, embed_cfg, tmp / "cache", progress=False)
    feats, ids, attrs = read_embeddings(out)
    return feats, ids, attrs


def write_manifest(path, rows):
    lines = ["clip_id,path,start,end"] + [f"{cid},{rel},{'' if s is None else s},{'' if e is None else e}" for cid, rel, s, e in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("model", ["hubert", "w2v2"])
def test_default_config_agrees_with_the_reference_one_clip_at_a_time(models, tmp_path, model):
    from bioprobe.config import embed_result_settings, embed_settings, load_config

    config = load_config(REPO / "config.yaml")
    embed_cfg = embed_settings(embed_result_settings(config["embed"]), config)
    assert embed_cfg["std_ddof"] == 1 and embed_cfg["batching"] == "equal_length"
    embed_cfg["device"] = "cpu"
    rng = np.random.default_rng(5)
    rows = []
    for i, sr in enumerate(RATES):
        seconds = 0.2 if i % 3 == 0 else rng.uniform(0.4, 1.6)  # 0.2 s: 3200 samples at 16 kHz, tiled to 5000
        wave = synthetic_call(rng, sr, seconds, channels=2 if i % 4 == 1 else 1)
        rel = f"calls/call{i}.{'flac' if i % 4 == 3 and sr <= 96000 else 'wav'}"
        (tmp_path / "calls").mkdir(exist_ok=True)
        sf.write(tmp_path / rel, wave, sr)
        rows.append((f"c{i:02d}", rel, None, None))
    manifest = write_manifest(tmp_path / "manifest.csv", rows)
    feats, ids, attrs = run_pipeline(manifest, tmp_path, tmp_path, model, models[model], embed_cfg)
    assert ids == [r[0] for r in rows] and attrs["n_repeat_padded"] == 3

    reference = load_reference_model(models[model])
    expected = np.stack([ref.pooled_one(reference, ref.load_16k(tmp_path / rel)) for _, rel, _, _ in rows])
    assert feats.shape == expected.shape == (len(rows), 3, 64)
    assert median_rel_diff(feats, expected) < TOL_MEDIAN
    np.testing.assert_allclose(feats, expected, rtol=1e-2, atol=1e-4)  # and no clip is far off
    # the population std (ddof 0) would not agree: the check can fail
    assert median_rel_diff(feats[:, :, 32:] * np.sqrt(1 - 1 / 16), expected[:, :, 32:]) > 10 * TOL_MEDIAN


@pytest.mark.parametrize("model", ["hubert", "w2v2"])
def test_study_exact_agrees_with_the_reference_on_imv_style_batches(models, tmp_path, model):
    """IMV: 32 consecutive calls of the manifest per batch, each tiled to the longest of its batch."""
    from bioprobe.config import effective_embed, embed_result_settings, embed_settings, load_config

    config = load_config(REPO / "resources/configs/study_exact.yaml")
    effective = effective_embed(config, "imv", "w2v2")
    embed_cfg = embed_settings(embed_result_settings(effective), config, "imv", "w2v2")
    assert (embed_cfg["batching"], embed_cfg["batch_size"], embed_cfg["std_ddof"]) == ("study_repeat_pad", 32, 1)
    embed_cfg["device"] = "cpu"
    rng = np.random.default_rng(7)
    (tmp_path / "data").mkdir()
    recordings = {}
    for twin, sr in ((1, 44100), (2, 44100), (3, 48000)):
        rel = f"data/twin_{twin}/rec{twin}.wav"
        (tmp_path / rel).parent.mkdir(parents=True)
        seconds = 12.0
        t = np.arange(int(sr * seconds)) / sr
        sf.write(tmp_path / rel, (0.01 * rng.standard_normal(len(t)) + 0.2 * np.sin(2 * np.pi * 900 * t) * (np.sin(t * 3) > 0.5)).astype(np.float32), sr)
        recordings[rel] = seconds
    rows = []
    for i in range(45):  # calls of 0.05 .. 1.2 s, the manifest alternating between recordings
        rel = list(recordings)[i % 3]
        start = round(rng.uniform(0, 10.5), 3)
        rows.append((f"imv_{i:05d}", rel, start, round(start + rng.uniform(0.05, 1.2), 3)))
    manifest = write_manifest(tmp_path / "manifest.csv", rows)
    feats, ids, attrs = run_pipeline(manifest, tmp_path, tmp_path, model, models[model], embed_cfg)
    by_id = dict(zip(ids, feats))
    ours = np.stack([by_id[cid] for cid, *_ in rows])
    assert attrs["n_batches"] == 2

    reference = load_reference_model(models[model])
    waves = [ref.load_16k(tmp_path / rel, start, end) for _, rel, start, end in rows]
    expected = np.concatenate([ref.pooled_batch(reference, waves[i : i + 32]) for i in range(0, len(waves), 32)])
    assert median_rel_diff(ours, expected) < TOL_MEDIAN
    np.testing.assert_allclose(ours, expected, rtol=1e-2, atol=1e-4)
    # one clip at a time (the default config) gives other numbers for these calls
    alone = np.stack([ref.pooled_one(reference, w) for w in waves])
    assert median_rel_diff(alone, expected) > 100 * TOL_MEDIAN
