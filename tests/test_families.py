"""The model families beyond the study's: data2vec-audio, UniSpeech-SAT, wav2vec2-conformer, Whisper, AST.

Each is a tiny random model saved with ``save_pretrained`` plus its feature extractor config,
loaded through ``load_encoder`` exactly like a hub checkpoint, and compared with what
transformers itself computes from the same folder (feature extractor + ``AutoModel``).
Tolerance 1e-5 (float32, CPU) unless stated.
"""

import h5py
import numpy as np
import pytest
import torch

from bioprobe.embed import LongClipReader, embed_dataset, embed_options, embed_waves, prepare_clip
from bioprobe.encoders import load_encoder
from bioprobe.encoders.windowed import window_spans
from bioprobe.pooling import pool_mean_std
from bioprobe.store import AudioWriter, read_embeddings
from bioprobe.tiny import install_in_hub_cache, save_tiny_hf_model
from bioprobe.weights import fetch_weights

TOL = 1e-5
WAVEFORM_KINDS = ("data2vec_audio", "unispeech_sat", "wav2vec2_conformer")
WINDOWED_KINDS = ("whisper", "ast")
KINDS = WAVEFORM_KINDS + WINDOWED_KINDS
SR = 16000


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    return {kind: save_tiny_hf_model(kind, root / kind, seed=0) for kind in KINDS}


@pytest.fixture(scope="module")
def encoders(folders, tmp_path_factory):
    cache = tmp_path_factory.mktemp("families_cache")
    return {kind: load_encoder(kind, {"source": "huggingface", "id": str(folders[kind])}, cache) for kind in KINDS}


def noise(samples, seed=0, batch=None):
    rng = np.random.default_rng(seed)
    shape = (samples,) if batch is None else (batch, samples)
    return (0.3 * rng.standard_normal(shape) + 0.05).astype(np.float32)  # an offset, so standardising matters


def reference_hidden(folder, wave: np.ndarray):
    """transformers' own pipeline on one clip: the checkpoint's feature extractor, then all hidden states."""
    from transformers import AutoFeatureExtractor, AutoModel

    extractor = AutoFeatureExtractor.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder, dtype=torch.float32).eval()
    inputs = extractor(wave, sampling_rate=SR, return_tensors="pt")
    with torch.inference_mode():
        if model.config.model_type == "whisper":
            return torch.stack(model.encoder(inputs["input_features"], output_hidden_states=True).hidden_states)[:, 0]
        key = "input_values"
        return torch.stack(model(inputs[key], output_hidden_states=True).hidden_states)[:, 0]  # [L, T, D]


def encode(encoder, wave: np.ndarray):
    """Our encoder on one clip prepared like the embed step (standardised if the checkpoint says so)."""
    prepared = prepare_clip(wave, "c", 0, peak_normalize=False, standardize=encoder.standardize_input)
    with torch.inference_mode():
        return encoder(torch.from_numpy(prepared)[None])[:, 0]


# ------------------------------------------------------------------------------------------------
# every family


@pytest.mark.parametrize("kind", KINDS)
def test_batched_equals_one_clip_at_a_time(encoders, kind):
    encoder = encoders[kind]
    batch = torch.from_numpy(noise(20000, batch=3))
    with torch.inference_mode():
        together = encoder(batch)
        alone = torch.cat([encoder(batch[i : i + 1]) for i in range(3)], dim=1)
    assert together.shape[:2] == (encoder.n_layers, 3) and together.shape[3] == encoder.dim == 32
    torch.testing.assert_close(together, alone, atol=TOL, rtol=TOL)


@pytest.mark.parametrize("kind", KINDS)
def test_embed_step_batched_equals_one_clip_at_a_time(folders, tmp_path, kind):
    """The embed step's test of today's families, on each new one: batch size 1 vs 4."""
    lengths = [8000, 8000, 3000, 8000, 12000, 2000, 8000, 4000]
    audio = tmp_path / "audio16k.h5"
    with AudioWriter(audio, {"sample_rate": SR, "resampler": "soxr_hq", "resampler_version": "test"}) as writer:
        for i, n in enumerate(lengths):
            writer.append(f"clip{i:02d}", noise(n, seed=i))
    out = {}
    for batch_size in (1, 4):
        path = tmp_path / f"b{batch_size}.h5"
        embed_dataset(audio, path, kind, {"source": "huggingface", "id": str(folders[kind])}, {"batch_size": batch_size, "device": "cpu"},
                      tmp_path / "cache", progress=False)
        out[batch_size] = read_embeddings(path)
    (feats1, ids1, attrs1), (feats4, ids4, attrs4) = out[1], out[4]
    assert ids1 == ids4 and attrs4["n_batches"] < attrs1["n_batches"] == 8 and attrs4["n_repeat_padded"] == 3
    np.testing.assert_allclose(feats4, feats1, atol=TOL, rtol=TOL)


@pytest.mark.parametrize("kind", WAVEFORM_KINDS)
def test_waveform_family_equals_transformers_with_its_normalisation(folders, encoders, kind):
    """data2vec-audio & co.: the checkpoint declares do_normalize; we standardise exactly as its extractor does."""
    encoder = encoders[kind]
    wave = noise(12000, seed=1)
    ours = encode(encoder, wave)
    expected = reference_hidden(folders[kind], wave)
    assert encoder.standardize_input and "do_normalize: true" in encoder.provenance["input_normalization"]
    assert ours.shape == expected.shape == (3, 37, 32)
    torch.testing.assert_close(ours, expected, atol=TOL, rtol=1e-4)
    from transformers import AutoFeatureExtractor  # the model input is what the checkpoint's extractor gives

    declared = AutoFeatureExtractor.from_pretrained(folders[kind])(wave, sampling_rate=SR)["input_values"][0]
    prepared = prepare_clip(wave, "c", 0, peak_normalize=True, standardize=True)  # peak first: no effect on the result
    np.testing.assert_allclose(prepared, declared, atol=1e-5)
    assert abs(float(np.mean(wave))) > 0.01 and abs(float(np.mean(prepared))) < 1e-6


def test_study_families_keep_the_raw_waveform(tmp_path):
    hubert = load_encoder("h", {"source": "huggingface", "id": str(save_tiny_hf_model("hubert", tmp_path / "h"))}, tmp_path / "c")
    assert hubert.standardize_input is False
    assert "study's protocol" in hubert.provenance["input_normalization"]


@pytest.mark.parametrize("kind", ["unispeech_sat", "whisper"])
def test_hub_id_and_local_folder_load_the_same_model(monkeypatch, folders, tmp_path, kind):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    cache = tmp_path / "cache"
    install_in_hub_cache(folders[kind], f"org/tiny-{kind}", cache / "huggingface")
    hub, local = {"source": "huggingface", "id": f"org/tiny-{kind}", "revision": "main"}, {"source": "huggingface", "id": str(folders[kind])}
    fetch_weights("a", hub, cache)  # pins the cache's commit (offline: jobs never download)
    fetch_weights("b", local, cache)
    by_id, by_folder = load_encoder("a", hub, cache), load_encoder("b", local, cache)
    assert type(by_id) is type(by_folder) and by_id.provenance["commit"]
    wave = torch.from_numpy(noise(9000, seed=2))[None]
    with torch.inference_mode():
        torch.testing.assert_close(by_id(wave), by_folder(wave), atol=0, rtol=0)


@pytest.mark.parametrize("kind", WINDOWED_KINDS)
def test_random_init_of_a_windowed_family(folders, encoders, tmp_path, kind):
    """random_init fetches the config (+ feature extractor config) only and builds the same encoder class."""
    rand = load_encoder("r", {"source": "random_init", "of": str(folders[kind]), "seed": 5}, tmp_path / "cache")
    trained = encoders[kind]
    assert type(rand) is type(trained) and rand.source == "random_init"
    assert (rand.n_layers, rand.dim, rand.window_step) == (trained.n_layers, trained.dim, trained.window_step)
    wave = torch.from_numpy(noise(SR, seed=3))[None]
    with torch.inference_mode():
        a, b = rand(wave), trained(wave)
    assert a.shape == b.shape and not torch.allclose(a, b)


@pytest.mark.parametrize("kind", KINDS)
def test_embed_dataset_end_to_end(folders, tmp_path, kind):
    clips = {"a": noise(8000, 1), "b": noise(8000, 2), "c": noise(3000, 3), "d": noise(21000, 4)}
    audio = tmp_path / "audio16k.h5"
    with AudioWriter(audio, {"sample_rate": SR, "resampler": "soxr_hq", "resampler_version": "test"}) as writer:
        for clip_id, wave in clips.items():
            writer.append(clip_id, wave)
    out = tmp_path / "emb.h5"
    mcfg = {"source": "huggingface", "id": str(folders[kind])}
    embed_dataset(audio, out, kind, mcfg, {"batch_size": 4, "device": "cpu"}, tmp_path / "cache", progress=False)
    feats, ids, attrs = read_embeddings(out)
    assert ids == list(clips) and feats.shape == (4, 3, 64) and np.isfinite(feats).all()
    assert attrs["model_type"] == {"data2vec_audio": "data2vec-audio", "unispeech_sat": "unispeech-sat",
                                   "wav2vec2_conformer": "wav2vec2-conformer", "whisper": "whisper",
                                   "ast": "audio-spectrogram-transformer"}[kind]
    assert attrs["input_normalization"] and "standardize_input" in attrs
    # clip a as the embed step prepares it (peak-normalised, tiled to 5000 samples: already longer)
    encoder = load_encoder(kind, mcfg, tmp_path / "cache")
    wave = clips["a"] / np.abs(clips["a"]).max()
    np.testing.assert_allclose(feats[0], pool_mean_std(encode(encoder, wave)), atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------------------------------------
# Whisper and AST: windows, padding, streamed pooling


def test_window_spans_tile_the_clip():
    assert window_spans(100, 480, 0, 320) == [(0, 100)]
    assert window_spans(1000, 480, 0, 320) == [(0, 480), (480, 960)]  # a 40-sample tail has no frame
    assert window_spans(1400, 480, 0, 320) == [(0, 480), (480, 960), (960, 1400)]
    assert window_spans(1400, 480, 0, 320, windows_per_span=2) == [(0, 960), (960, 1400)]
    # AST-like: windows read 240 samples of context; a tail within the context starts no window
    assert window_spans(2000, 1000, 240, 500) == [(0, 1240), (1000, 2000)]
    assert window_spans(2200, 1000, 240, 500) == [(0, 1240), (1000, 2200)]
    assert window_spans(2600, 1000, 240, 500) == [(0, 1240), (1000, 2240), (2000, 2600)]


def test_whisper_short_clip_keeps_only_frames_over_real_audio(folders, encoders):
    """A 3 s clip gives its 150 frames, equal to transformers' on the 30 s padded input, padding frames left out."""
    encoder = encoders["whisper"]
    assert (encoder.window_step, encoder.hop_samples, encoder.n_layers) == (480000, 320, 3)
    wave = noise(3 * SR + 100, seed=5)
    ours = encode(encoder, wave)
    full = reference_hidden(folders["whisper"], wave)  # [L, 1500, D]: the whole padded window
    assert full.shape[1] == 1500 and ours.shape[1] == 151  # ceil(48100 / 320)
    torch.testing.assert_close(ours, full[:, :151], atol=TOL, rtol=TOL)
    assert not np.allclose(pool_mean_std(ours), pool_mean_std(full), atol=1e-2)  # padding would change the pooling
    for n, frames in ((SR, 50), (30 * SR, 1500), (30 * SR + 320, 1501), (30 * SR + 100, 1500)):
        with torch.inference_mode():
            assert encoder(torch.zeros(1, n)).shape[2] == frames, n


def test_whisper_features_do_not_depend_on_the_padding(encoders):
    """The same clip, alone or batched, and whatever the window's padding: the same real frames."""
    encoder = encoders["whisper"]
    wave = noise(2 * SR, seed=6)
    alone = encode(encoder, wave)
    # the same audio as the start of a window with more real audio after it differs (attention sees it) ...
    longer = encode(encoder, np.concatenate([wave, noise(5 * SR, seed=7)]))[:, : alone.shape[1]]
    assert not torch.allclose(alone, longer, atol=1e-3)
    # ... but zeros appended by the feature extractor (Whisper's padding) and zeros we append are the same input
    padded = np.concatenate([wave, np.zeros(28 * SR, np.float32)])
    torch.testing.assert_close(encode(encoder, padded)[:, : alone.shape[1]], alone, atol=TOL, rtol=TOL)


def long_clip_reference(folder, wave, step, context, keep):
    """Concatenated frames of transformers' output on each window, computed window by window here."""
    frames = []
    for start in range(0, len(wave), step):
        window = wave[start : start + step + context]
        n_keep = keep(len(window))
        if n_keep:
            frames.append(reference_hidden(folder, window)[:, :n_keep])
    return torch.cat(frames, dim=1)


@pytest.mark.parametrize("kind", WINDOWED_KINDS)
def test_long_clip_streamed_pooling_equals_pooling_the_concatenated_frames(folders, encoders, kind):
    encoder = encoders[kind]
    n = int(2.3 * encoder.window_step)  # two full windows and a partial third
    wave = noise(n, seed=8)
    if kind == "whisper":
        expected = long_clip_reference(folders[kind], wave, encoder.window_step, 0, lambda m: -(-m // 320))
    else:
        expected = ast_reference_patches(folders[kind], encoder, wave)
    pooled_expected = pool_mean_std(expected)
    opts = {"peak_normalize": False, "min_samples": 0}
    for chunk_seconds in (1.0, 90.0):  # one window per chunk (streamed), then the whole clip in one chunk
        feats, stats = embed_waves(encoder, lambda i: wave, [n], ["long"], embed_options({**opts, "chunk_seconds": chunk_seconds}))
        assert stats["n_frames"] == expected.shape[1]
        np.testing.assert_allclose(feats[0], pooled_expected, atol=1e-5, rtol=1e-4)
        assert stats["n_chunked"] == (1 if chunk_seconds == 1.0 else 0)


def ast_reference_patches(folder, encoder, wave):
    """AST's patch tokens over real audio, window by window, reordered time position by time position."""
    from bioprobe.encoders.ast import real_frames

    frames = []
    for start in range(0, len(wave), encoder.window_step):
        window = wave[start : start + encoder.window_step + encoder.window_context]
        real = min(real_frames(len(window)), 1024)
        keep = [t for t in range(101) if 10 * t + 8 <= real]
        if not keep:
            continue
        hidden = reference_hidden(folder, window)  # [L, 2 + 12 * 101, D]
        grid = hidden[:, 2:].reshape(hidden.shape[0], 12, 101, -1)  # frequency-major, as AST lays its patches out
        frames.append(grid[:, :, keep].transpose(1, 2).reshape(hidden.shape[0], len(keep) * 12, -1))
    return torch.cat(frames, dim=1)


def test_ast_short_clip_keeps_patches_over_real_audio_and_special_tokens_apart(folders, encoders):
    encoder = encoders["ast"]
    assert (encoder.n_freq, encoder.n_time, encoder.hop_samples, encoder.window_step) == (12, 101, 1600, 163840)
    wave = noise(3 * SR, seed=9)  # 298 frames -> time positions 0..29 (10 t + 8 <= 298)
    ours = encode(encoder, wave)
    expected = ast_reference_patches(folders["ast"], encoder, wave)
    assert ours.shape[1] == expected.shape[1] == 30 * 12
    torch.testing.assert_close(ours, expected, atol=TOL, rtol=TOL)
    patches, special = encoder.window_outputs(torch.from_numpy(wave)[None])
    hidden = reference_hidden(folders["ast"], wave)
    torch.testing.assert_close(special[:, 0], hidden[:, :2], atol=TOL, rtol=TOL)
    # AST's extractor silently cuts a longer clip; we window it instead: 10.24 s + 1 s gives more patches
    with torch.inference_mode():
        assert encoder(torch.zeros(1, 163840 + 240 + SR)).shape[2] == (101 + 10) * 12


def test_long_clip_reader_standardises_the_whole_clip():
    """A chunked clip is standardised with the whole clip's statistics, as one pass would be."""
    wave = noise(50_000, seed=10) * 3
    whole = prepare_clip(wave, "c", 0, peak_normalize=True, standardize=True)
    reader = LongClipReader(lambda s, e: wave[s:e], len(wave), "c", True, 7000, standardize=True)
    np.testing.assert_allclose(np.concatenate([reader(s, min(s + 9000, len(wave))) for s in range(0, len(wave), 9000)]), whole, atol=1e-5)
    assert abs(whole.mean()) < 1e-5 and abs(whole.std() - 1) < 1e-4


def test_windowed_chunking_and_frames_are_recorded(folders, tmp_path):
    audio = tmp_path / "audio16k.h5"
    with AudioWriter(audio, {"sample_rate": SR, "resampler": "soxr_hq", "resampler_version": "test"}) as writer:
        writer.append("x", noise(SR))
        writer.append("long", noise(31 * SR))
    out = tmp_path / "emb.h5"
    embed_dataset(audio, out, "w", {"source": "huggingface", "id": str(folders["whisper"])},
                  {"chunk_seconds": 30, "chunk_overlap_seconds": 5, "frame_level": True, "device": "cpu"},
                  tmp_path / "cache", progress=False)
    feats, ids, attrs = read_embeddings(out)
    assert "30 s windows, 1 per chunk, no overlap" in str(attrs["chunking"]) and attrs["n_chunked"] == 1
    with h5py.File(out) as f:
        assert f["frames/x"].shape == (3, 50, 32) and f["frames/long"].shape == (3, 1550, 32)  # real frames only
        np.testing.assert_allclose(feats[ids.index("long")], pool_mean_std(f["frames/long"][()].astype(np.float64)), atol=2e-2)


# ------------------------------------------------------------------------------------------------
# config and budget


def test_study_config_has_the_new_families_switched_off():
    from conftest import REPO

    from bioprobe.config import ConfigError, load_config, validate_config

    config = load_config(REPO / "config.yaml")
    new = {"data2vec_audio", "unispeech_sat", "w2v2_conformer", "whisper_small", "ast_audioset"}
    assert new <= set(config["models"])
    assert all(config["models"][m]["enabled"] is False and config["models"][m]["revision"] for m in new)
    assert all(config["models"][m].get("enabled", True) for m in set(config["models"]) - new)
    config["fusion"]["late_average"]["models"].append("whisper_small")
    with pytest.raises(ConfigError, match="'whisper_small' is disabled"):
        validate_config(config)


def test_budget_estimates_windowed_and_disabled_models(folders, tmp_path):
    from bioprobe.budget import estimate, format_report

    results = tmp_path / "results"
    with AudioWriter(results / "calls" / "audio16k.h5", {"sample_rate": SR, "resampler": "soxr_hq", "resampler_version": "t"}) as writer:
        for i in range(10):
            writer.append(f"c{i}", noise(SR * (1 + i % 2)))
    models = {
        "whisper": {"source": "huggingface", "id": str(folders["whisper"])},
        "ast": {"source": "huggingface", "id": str(folders["ast"])},
        "ast_public": {"source": "huggingface", "id": "MIT/ast-finetuned-audioset-10-10-0.4593", "enabled": False},
    }
    config = {"model_cache": str(tmp_path / "cache"), "datasets": {"calls": {"type": "folder"}}, "models": models}
    rows = {r["model"]: r for r in estimate(config, results, rtf=0.1)}
    whisper, ast, public = rows["whisper"], rows["ast"], rows["ast_public"]
    assert (whisper["n_layers"], whisper["dim"], whisper["window_samples"]) == (3, 32, 480000)
    assert whisper["model_input_hours"] == pytest.approx(10 * 30 / 3600)  # every clip costs a 30 s window
    assert whisper["compute_hours"] == pytest.approx(whisper["model_input_hours"] * 0.1)
    assert (ast["n_layers"], ast["hop_samples"], ast["frames_per_hop"]) == (3, 1600, 12)
    assert (public["n_layers"], public["dim"], public["geometry"], public["enabled"]) == (13, 768, "known checkpoint", False)
    report = format_report(list(rows.values()))
    assert "disabled (enabled: false): not in totals" in report and "model ast_public" not in report
    out = tmp_path / "whisper.h5"
    embed_dataset(results / "calls" / "audio16k.h5", out, "whisper", models["whisper"], {}, tmp_path / "cache", progress=False)
    assert abs(whisper["embedding_bytes"] - out.stat().st_size) < 0.25 * out.stat().st_size + 64 * 1024


def test_small_windows_and_a_default_feature_extractor_follow_the_model(tmp_path):
    """Models saved with a smaller input than the public ones, beside a default extractor config
    (as a test model may be): the window and mel bins come from the model, the rest from the extractor."""
    from transformers import (ASTConfig, ASTFeatureExtractor, ASTModel, WhisperConfig, WhisperFeatureExtractor,
                              WhisperModel)

    torch.manual_seed(0)
    whisper_dir, ast_dir = tmp_path / "whisper", tmp_path / "ast"
    WhisperModel(WhisperConfig(d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
                               encoder_ffn_dim=32, decoder_ffn_dim=32, max_source_positions=30, vocab_size=40, pad_token_id=0,
                               bos_token_id=1, eos_token_id=2, decoder_start_token_id=1)).save_pretrained(whisper_dir)
    WhisperFeatureExtractor().save_pretrained(whisper_dir)  # 30 s windows declared; the model takes 60 mel frames
    ASTModel(ASTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, patch_size=2,
                       frequency_stride=2, time_stride=2, num_mel_bins=16, max_length=24)).save_pretrained(ast_dir)
    ASTFeatureExtractor().save_pretrained(ast_dir)  # 128 bins x 1024 frames declared
    whisper = load_encoder("w", {"source": "huggingface", "id": str(whisper_dir)}, tmp_path / "cache")
    ast = load_encoder("a", {"source": "huggingface", "id": str(ast_dir)}, tmp_path / "cache")
    assert whisper.window_step == 9600 and whisper.provenance["feature_extractor_adapted"] == {"window_samples": [480000, 9600]}
    assert (ast.n_freq, ast.n_time, ast.window_step) == (8, 12, 24 * 160)
    assert ast.provenance["feature_extractor_adapted"] == {"num_mel_bins": [128, 16], "max_length": [1024, 24]}
    wave = noise(20000, seed=11)  # 2.08 Whisper windows, 5.2 AST windows
    with torch.inference_mode():
        w_out = whisper(torch.from_numpy(wave)[None])[:, 0]
        a_out = ast(torch.from_numpy(wave)[None])[:, 0]
        model = WhisperModel.from_pretrained(whisper_dir).eval()
        extractor = WhisperFeatureExtractor()
        expected = []
        for start in range(0, len(wave), 9600):
            window = wave[start : start + 9600]
            mel = extractor(window, sampling_rate=SR, max_length=9600, return_tensors="pt")["input_features"]
            expected.append(torch.stack(model.encoder(mel, output_hidden_states=True).hidden_states)[:, 0, : -(-len(window) // 320)])
    torch.testing.assert_close(w_out, torch.cat(expected, dim=1), atol=TOL, rtol=TOL)
    assert w_out.shape[1] == 63  # ceil(20000 / 320)
    # AST: 5 whole windows of 24 frames (12 time positions) + a remainder of 800 samples: 3 frames,
    # time positions 0 and 1 (2 t + 1 <= 3: at least half of each 2-frame patch is real)
    assert a_out.shape == (2, (5 * 12 + 2) * 8, 16) and torch.isfinite(a_out).all()
