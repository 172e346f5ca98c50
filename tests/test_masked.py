"""Masked batching: clips of unequal length in one pass equal one clip at a time, for every family.

Tolerance: 1e-5 (float32, CPU), on every layer's frames and on the pooled features.
"""

import json

import numpy as np
import pytest
import torch

from bioprobe.batching import BATCHINGS, EXACT_BATCHINGS, choose_batching, plan_masked_batches
from bioprobe.embed import embed_dataset
from bioprobe.encoders import load_encoder
from bioprobe.encoders import masked as masked_module
from bioprobe.encoders.masked import frame_mask
from bioprobe.store import read_embeddings
from bioprobe.tiny import CONV_DIM, CONV_KERNEL, CONV_STRIDE, save_tiny_aves_model, save_tiny_hf_model, tiny_hf_config

TOL = 1e-5
# Clip lengths in samples: the receptive field itself (one frame), a clip the embed step tiles to
# 5000, lengths that give frame counts far apart, and one of 3 s.
LENGTHS = [400, 5000, 8000, 12345, 23456, 48017]


def family_config(kind: str):
    """Tiny configs of the accepted waveform families, real CNN geometry (as in bioprobe.tiny)."""
    from transformers import Data2VecAudioConfig, UniSpeechConfig, UniSpeechSatConfig, Wav2Vec2ConformerConfig

    if kind in ("hubert", "wav2vec2", "wavlm", "wav2vec2_stable"):
        return tiny_hf_config(kind)
    if kind in ("hubert_stable", "wavlm_stable"):  # large-model style: layer-norm CNN, pre-LN transformer
        config = tiny_hf_config(kind.partition("_")[0])
        config.feat_extract_norm, config.do_stable_layer_norm = "layer", True
        return config
    common = dict(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=CONV_DIM,
        conv_stride=CONV_STRIDE, conv_kernel=CONV_KERNEL, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
        feat_extract_norm="group", do_stable_layer_norm=False,
    )
    quantizer = dict(codevector_dim=16, proj_codevector_dim=16, num_codevectors_per_group=8)
    if kind == "data2vec_audio":  # several conv -> LayerNorm -> GELU positional layers
        return Data2VecAudioConfig(**{**common, "feat_extract_norm": "layer", "num_conv_pos_embeddings": 5}, conv_pos_kernel_size=19)
    if kind == "unispeech":
        return UniSpeechConfig(**common, **quantizer)
    if kind == "unispeech_sat":
        return UniSpeechSatConfig(**common, **quantizer, num_clusters=4)
    if kind.startswith("wav2vec2_conformer"):  # rotary or relative positions, depthwise conv in every layer
        position = kind.rpartition("_")[2]
        return Wav2Vec2ConformerConfig(
            **{**common, "feat_extract_norm": "layer", "do_stable_layer_norm": True},
            position_embeddings_type=position, conv_depthwise_kernel_size=7, **quantizer,
        )
    raise ValueError(kind)


HF_FAMILIES = (
    "hubert", "wav2vec2", "wavlm", "wav2vec2_stable", "hubert_stable", "wavlm_stable", "data2vec_audio", "unispeech",
    "unispeech_sat", "wav2vec2_conformer_rotary", "wav2vec2_conformer_relative",
)


def save_family(kind: str, folder):
    """A tiny random model of ``kind`` saved as a transformers folder (config + safetensors)."""
    from transformers import AutoModel

    if kind in ("hubert", "wav2vec2", "wavlm", "wav2vec2_stable"):
        return save_tiny_hf_model(kind, folder, seed=0)
    torch.manual_seed(0)
    model = AutoModel.from_config(family_config(kind))
    for module in model.modules():  # batch norm statistics that are not the identity
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.normal_(0, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("masked_models")
    entries = {kind: {"source": "huggingface", "id": str(save_family(kind, root / kind))} for kind in HF_FAMILIES}
    config, weights = save_tiny_aves_model(root / "aves", seed=0)
    entries["aves"] = {"source": "aves", "config_url": str(config), "weights_url": str(weights)}
    entries["aves_layer0_study"] = {**entries["aves"], "layer0": "study"}
    entries["random_hubert"] = {"source": "random_init", "of": "hubert", "seed": 5}
    entries["random_aves"] = {"source": "random_init", "of": "aves", "seed": 5}
    for kind in ("whisper", "ast"):  # fixed windows (30 s, 10.24 s): their windows share a pass
        entries[kind] = {"source": "huggingface", "id": str(save_tiny_hf_model(kind, root / kind, seed=0))}
    entries["logmel"] = {"source": "logmel"}
    entries["mfcc"] = {"source": "mfcc", "deltas": True}
    return entries


def waves(lengths, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(n, generator=gen) * 0.3 for n in lengths]


# ------------------------------------------------------------------------------------------------
# the masked pass itself, layer by layer


@pytest.mark.parametrize("kind", HF_FAMILIES + ("aves", "aves_layer0_study", "random_hubert", "random_aves"))
def test_masked_pass_equals_one_clip_at_a_time(models, tmp_path, kind):
    encoder = load_encoder(kind, models[kind], tmp_path / "cache", models=models)
    assert encoder.masked_batching
    clips = waves(LENGTHS)
    with torch.inference_mode():
        out, n_frames = encoder.forward_masked(clips)
        alone = [encoder(clip[None])[:, 0] for clip in clips]
    assert out.shape == (encoder.n_layers, len(clips), max(a.shape[1] for a in alone), encoder.dim)
    assert n_frames.tolist() == [a.shape[1] for a in alone]
    assert n_frames[0] == 1  # 400 samples: exactly the receptive field, one frame
    for j, expected in enumerate(alone):
        torch.testing.assert_close(out[:, j, : n_frames[j]], expected, atol=TOL, rtol=TOL)
        assert not out[:, j, n_frames[j] :].any()  # padded frames are zeros


@pytest.mark.parametrize("kind, long_clip", [("whisper", 16000 * 31), ("ast", 16000 * 12)])
def test_windowed_masked_pass_equals_one_clip_at_a_time(models, tmp_path, kind, long_clip):
    """Whisper and AST: every window of every clip is a row of one batch; a clip longer than the
    window is two windows, a 400-sample clip less than one frame of AST's grid."""
    encoder = load_encoder(kind, models[kind], tmp_path / "cache")
    assert encoder.masked_batching
    clips = waves([400, 5000, 48000, long_clip, 23456])
    with torch.inference_mode():
        out, n_frames = encoder.forward_masked(clips)
        alone = [encoder(clip[None])[:, 0] for clip in clips]
    assert n_frames.tolist() == [a.shape[1] for a in alone]
    assert out.shape == (encoder.n_layers, len(clips), max(n_frames.tolist()), encoder.dim)
    for j, expected in enumerate(alone):
        torch.testing.assert_close(out[:, j, : n_frames[j]], expected, atol=TOL, rtol=TOL)
        assert not out[:, j, n_frames[j] :].any()


@pytest.mark.parametrize("kind", ["whisper", "ast"])
def test_windowed_masked_embedding_equals_one_clip_at_a_time(models, tmp_path, kind):
    from test_embed import write_audio

    clips = clip_set()
    audio = write_audio(tmp_path / "audio16k.h5", clips)
    out = {}
    for run, embed_cfg in {"alone": {"batching": "equal_length", "batch_size": 1},
                           "masked": {"batching": "masked", "batch_size": 8, "length_ratio": 8.0}}.items():
        embed_dataset(audio, tmp_path / f"{run}.h5", kind, models[kind], embed_cfg, tmp_path / "cache", progress=False)
        out[run] = read_embeddings(tmp_path / f"{run}.h5")
    (alone, ids_alone, attrs_alone), (together, ids, attrs) = out["alone"], out["masked"]
    assert ids == ids_alone
    np.testing.assert_allclose(together, alone, atol=TOL, rtol=TOL)
    assert json.loads(attrs["batching"])["used"] == "masked" and attrs["n_batches"] < attrs_alone["n_batches"] == len(clips)


@pytest.mark.parametrize("kind", ["data2vec_audio", "wav2vec2_conformer_rotary"])
def test_per_clip_modules_are_what_makes_these_families_exact(models, tmp_path, kind, monkeypatch):
    """Without running their frame-mixing modules clip by clip, padding leaks into real frames."""
    encoder = load_encoder(kind, models[kind], tmp_path / "cache")
    model_type = encoder.model.config.model_type
    assert masked_module.HF_PER_CLIP_MODULES[model_type]
    monkeypatch.setitem(masked_module.HF_PER_CLIP_MODULES, model_type, ())
    clips = waves([5000, 23456])
    with torch.inference_mode():
        out, n_frames = encoder.forward_masked(clips)
        short = encoder(clips[0][None])[:, 0]
    assert (out[1:, 0, : n_frames[0]] - short[1:]).abs().max() > 1e-3


def test_unknown_model_type_has_no_masked_pass():
    from bioprobe.encoders.masked import hf_masked_forward
    from transformers import BertConfig

    with pytest.raises(ValueError, match="not known to be exact for model type 'bert'"):
        hf_masked_forward(type("M", (), {"config": BertConfig()})(), [], 3)


def test_frame_mask_is_boolean():
    mask = frame_mask(torch.tensor([2, 4]), 5, "cpu")
    assert mask.dtype == torch.bool
    assert mask.tolist() == [[True, True, False, False, False], [True, True, True, True, False]]


# ------------------------------------------------------------------------------------------------
# length buckets


def test_masked_batches_are_length_buckets_in_length_order():
    lengths = [5000, 6000, 30000, 5200, 6250, 900_000, 7000, 5000, 24000, 8000]
    batches = plan_masked_batches(lengths, batch_size=3, max_batch_samples=80_000, chunk_samples=500_000, length_ratio=1.25)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert batches[0] == [5]  # longer than a chunk: alone, and first (the longest)
    for batch in batches:
        longest, shortest = max(lengths[i] for i in batch), min(lengths[i] for i in batch)
        assert longest <= 1.25 * shortest and len(batch) <= 3 and len(batch) * longest <= 80_000 or len(batch) == 1
        assert lengths[batch[0]] == longest
    assert batches[1:] == [[2, 8], [9, 6], [4, 1, 3], [0, 7]]  # longest first; equal lengths in manifest order
    # the padded size bound: 3 x 30000 > 80000, so [2, 8] is two clips
    assert plan_masked_batches([100] * 5, 16, 250, 10_000, 2.0) == [[0, 1], [2, 3], [4]]
    assert plan_masked_batches([100, 200, 400], 16, 10_000, 10_000, 1.0) == [[2], [1], [0]]


def test_batching_falls_back_for_encoders_without_a_masked_pass(models, tmp_path):
    logmel = load_encoder("logmel", models["logmel"], tmp_path)
    hubert = load_encoder("hubert", models["hubert"], tmp_path / "cache")
    assert choose_batching("masked", logmel) is BATCHINGS["equal_length"]
    assert choose_batching("masked", hubert) is BATCHINGS["masked"]
    assert choose_batching("equal_length", hubert) is BATCHINGS["equal_length"]
    assert set(EXACT_BATCHINGS) == {"masked", "equal_length"}
    with pytest.raises(TypeError, match="masked batching is not available"):
        logmel.forward_masked(waves([4000]))


# ------------------------------------------------------------------------------------------------
# the embed step end to end: pooled features, order, short and chunked clips


def clip_set():
    """Unequal lengths in shuffled order: 150 samples (below the 400-sample receptive field,
    tiled to 5000), calls of 0.2-1.4 s, and one of 3.5 s that 2 s chunks cut in two."""
    rng = np.random.default_rng(1)
    lengths = [8000, 150, 12000, 16000 * 3 + 8000, 3000, 9100, 22400, 8000, 17000, 5600]
    return {f"c{i:02d}": (0.4 * rng.standard_normal(n)).astype(np.float32) for i, n in enumerate(lengths)}


@pytest.mark.parametrize(
    "kind", ["hubert", "wav2vec2_stable", "wavlm", "data2vec_audio", "wav2vec2_conformer_rotary", "aves", "random_hubert", "logmel", "mfcc"]
)
def test_masked_embedding_equals_one_clip_at_a_time(models, tmp_path, kind):
    from test_embed import write_audio

    audio = write_audio(tmp_path / "audio16k.h5", clip_set())
    common = {"chunk_seconds": 2.0, "chunk_overlap_seconds": 0.25}
    runs = {
        "alone": {**common, "batching": "equal_length", "batch_size": 1},
        "masked": {**common, "batching": "masked", "batch_size": 8, "length_ratio": 2.0},
    }
    out = {}
    for run, embed_cfg in runs.items():
        path = tmp_path / f"{run}.h5"
        embed_dataset(audio, path, kind, models[kind], embed_cfg, tmp_path / "cache", models=models, progress=False)
        out[run] = read_embeddings(path)
    (alone, ids_alone, attrs_alone), (together, ids, attrs) = out["alone"], out["masked"]
    assert ids == ids_alone == sorted(clip_set())  # the audio file's order, whatever the batches
    np.testing.assert_allclose(together, alone, atol=TOL, rtol=TOL)
    assert attrs["n_chunked"] == attrs_alone["n_chunked"] == 1 and attrs["n_repeat_padded"] == 2
    assert attrs["n_frames"] == attrs_alone["n_frames"]
    assert attrs_alone["n_batches"] == 10
    batching = json.loads(attrs["batching"])  # dict attributes are stored as JSON
    assert batching["requested"] == "masked" and json.loads(attrs_alone["batching"])["used"] == "equal_length"
    if kind in ("logmel", "mfcc"):
        assert batching["used"] == "equal_length" and "FeatureEncoder" in batching["fallback_reason"]
    else:
        assert batching["used"] == "masked" and batching["length_ratio"] == 2.0
        assert attrs["n_batches"] < 6  # nine short clips in a few masked batches, the long one alone


def test_masked_frame_level_output_holds_each_clips_own_frames(models, tmp_path):
    import h5py

    from test_embed import write_audio

    audio = write_audio(tmp_path / "audio16k.h5", clip_set())
    paths = {}
    for batching in ("equal_length", "masked"):
        paths[batching] = tmp_path / f"{batching}.h5"
        embed_cfg = {"batching": batching, "length_ratio": 3.0, "frame_level": True, "chunk_seconds": 2.0}
        embed_dataset(audio, paths[batching], "hubert", models["hubert"], embed_cfg, tmp_path / "cache", progress=False)
    with h5py.File(paths["equal_length"]) as a, h5py.File(paths["masked"]) as b:
        for cid in clip_set():
            assert a["frames"][cid].shape == b["frames"][cid].shape
            np.testing.assert_allclose(b["frames"][cid][()], a["frames"][cid][()], atol=1e-3, rtol=1e-3)  # float16


def test_masked_pass_under_bf16_autocast(models, tmp_path):
    """Autocast gives layers of mixed dtypes; the masked pass returns float32 frames near fp32's."""
    from bioprobe.embed import autocast_context

    for kind in ("wav2vec2_stable", "wav2vec2_conformer_rotary", "aves"):
        encoder = load_encoder(kind, models[kind], tmp_path / "cache")
        clips = waves([6000, 9000])
        with torch.inference_mode():
            exact, _ = encoder.forward_masked(clips)
            with autocast_context(encoder.device, "bf16"):
                low, n_frames = encoder.forward_masked(clips)
        assert low.dtype == torch.float32 and n_frames.tolist() == [18, 27]
        assert 0 < (low - exact).abs().max() < 0.1 * exact.abs().max()
