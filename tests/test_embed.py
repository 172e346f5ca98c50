"""The embed step: equal-length batching, chunking with streamed pooling, padding, precision, errors.

Tolerance for batched vs one-clip-at-a-time pooled features: 1e-5 (float32, CPU).
"""

import json

import h5py
import numpy as np
import pytest
import torch

from bioprobe.batching import plan_batches
from bioprobe.embed import (
    chunk_spans,
    embed_dataset,
    embed_options,
    owned_frames,
    prepare_clip,
)
from bioprobe.pooling import pool_mean_std
from bioprobe.store import AudioWriter, read_embeddings
from bioprobe.tiny import save_tiny_aves_model, save_tiny_hf_model

TOL = 1e-5


def write_audio(path, clips, sample_rate=16000):
    with AudioWriter(path, {"sample_rate": sample_rate, "resampler": "soxr_hq", "resampler_version": "test"}) as writer:
        for clip_id, wave in clips.items():
            writer.append(clip_id, wave)
    return path


def tone_clips(lengths, seed=0):
    rng = np.random.default_rng(seed)
    clips = {}
    for i, n in enumerate(lengths):
        t = np.arange(n) / 16000
        clips[f"clip{i:02d}"] = (0.5 * np.sin(2 * np.pi * (300 + 50 * i) * t) + 0.05 * rng.standard_normal(n)).astype(np.float32)
    return clips


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("embed_models")
    config, weights = save_tiny_aves_model(root / "aves")
    return {
        "hubert": {"source": "huggingface", "id": str(save_tiny_hf_model("hubert", root / "hubert"))},
        "wav2vec2": {"source": "huggingface", "id": str(save_tiny_hf_model("wav2vec2", root / "wav2vec2"))},
        "wavlm": {"source": "huggingface", "id": str(save_tiny_hf_model("wavlm", root / "wavlm"))},
        "aves": {"source": "aves", "config_url": str(config), "weights_url": str(weights)},
        "logmel": {"source": "logmel"},
        "mfcc": {"source": "mfcc", "deltas": True},
        "random": {"source": "random_init", "of": "hubert", "seed": 3},
    }


# ------------------------------------------------------------------------------------------------
# pure decisions


def test_plan_batches_only_groups_equal_lengths():
    lengths = [100, 200, 100, 300, 100, 200, 100, 5000, 100]
    batches = plan_batches(lengths, batch_size=3, max_batch_samples=10_000, chunk_samples=1000)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        assert len({lengths[i] for i in batch}) == 1, batch
        assert len(batch) <= 3
    assert [7] in batches and [3] in batches  # long clip alone; unique length alone
    assert [0, 2, 4] in batches and [6, 8] in batches  # manifest order kept within a length
    assert batches[0] == [7]  # longest first
    by_samples = plan_batches([400] * 10, batch_size=16, max_batch_samples=1000, chunk_samples=10_000)
    assert [len(b) for b in by_samples] == [2, 2, 2, 2, 2]


@pytest.mark.parametrize("n,chunk,overlap,hop", [(10_000, 3000, 0, 160), (10_000, 3000, 800, 160), (123_457, 16_000, 4000, 320), (3200, 3000, 1000, 320)])
def test_chunk_frames_are_counted_once(n, chunk, overlap, hop):
    """Simulate an encoder with centred frames (1 + len // hop per chunk): every global frame once."""
    spans = chunk_spans(n, chunk, overlap, hop, min_samples=500)
    assert spans[0][0] == 0 and spans[-1][1] == n
    assert all(s % hop == 0 for s, _ in spans)
    kept = []
    for k, (start, end) in enumerate(spans):
        n_frames = 1 + (end - start) // hop
        lo, hi = owned_frames(spans, k, hop)
        local = list(range(n_frames))[lo:hi]
        kept += [start // hop + j for j in local]
    assert kept == list(range(1 + n // hop))


def test_chunk_spans_short_clip_and_short_tail():
    assert chunk_spans(5000, 16000, 0, 320, 5000) == [(0, 5000)]
    spans = chunk_spans(16000 * 2 + 100, 16000, 0, 320, 5000)
    assert spans == [(0, 16000), (16000, 32100)]  # a 100-sample tail joins the chunk before
    with pytest.raises(ValueError, match="no step"):
        chunk_spans(10_000, 1000, 900, 320, 10)


def test_prepare_clip_pads_normalises_and_rejects():
    wave = np.array([0.0, 0.5, -2.0], dtype=np.float32)
    out = prepare_clip(wave, "c", min_samples=7, peak_normalize=True)
    np.testing.assert_allclose(out, [0, 0.25, -1, 0, 0.25, -1, 0])
    assert out.dtype == np.float32
    silent = prepare_clip(np.zeros(10, np.float32), "quiet", 5, True)
    np.testing.assert_array_equal(silent, np.zeros(10))
    np.testing.assert_array_equal(prepare_clip(wave, "c", 2, False), wave)
    with pytest.raises(ValueError, match=r"clip 'gone' in a\.h5: empty clip"):
        prepare_clip(np.zeros(0, np.float32), "gone", 5, True, source="a.h5")
    with pytest.raises(ValueError, match="clip 'bad'.*NaN"):
        prepare_clip(np.array([0.1, np.nan], np.float32), "bad", 5, True)


def test_embed_options_validate():
    opts = embed_options({"batch_size": 4})
    assert opts["batch_size"] == 4 and opts["precision"] == "fp32" and opts["min_samples"] == 5000
    with pytest.raises(ValueError, match="unknown option"):
        embed_options({"chunk_second": 10})
    with pytest.raises(ValueError, match="precision must be one of"):
        embed_options({"precision": "int8"})
    with pytest.raises(ValueError, match="chunk_overlap_seconds"):
        embed_options({"chunk_seconds": 10, "chunk_overlap_seconds": 10})
    with pytest.raises(ValueError, match="batch_size"):
        embed_options({"batch_size": 0})


# ------------------------------------------------------------------------------------------------
# the whole step on tiny models


@pytest.mark.parametrize("kind", ["hubert", "wav2vec2", "wavlm", "aves", "logmel", "mfcc", "random"])
def test_batched_equals_one_clip_at_a_time(tiny, tmp_path, kind):
    audio = write_audio(tmp_path / "audio16k.h5", tone_clips([8000, 8000, 3000, 8000, 12000, 2000, 8000, 4000]))
    out = {}
    for batch_size in (1, 4):
        path = tmp_path / f"b{batch_size}.h5"
        embed_dataset(audio, path, kind, tiny[kind], {"batch_size": batch_size}, tmp_path / "cache", models=tiny, progress=False)
        out[batch_size] = read_embeddings(path)
    feats1, ids1, attrs1 = out[1]
    feats4, ids4, attrs4 = out[4]
    assert ids1 == ids4 == [f"clip{i:02d}" for i in range(8)]
    assert attrs4["n_batches"] < attrs1["n_batches"] == 8
    np.testing.assert_allclose(feats4, feats1, atol=TOL, rtol=TOL)
    assert np.isfinite(feats4).all() and feats4.dtype == np.float32
    # clips 2, 5 and 7 (< 5000 samples) were tiled to 5000: same length, same batch
    assert attrs4["n_repeat_padded"] == 3


def test_chunked_logmel_equals_unchunked(tiny, tmp_path):
    """Log-mel frames are local: with overlap, the stitched frames are exactly the whole clip's."""
    audio = write_audio(tmp_path / "audio16k.h5", tone_clips([16000 * 7 + 123, 9000]))
    whole, chunked = tmp_path / "whole.h5", tmp_path / "chunked.h5"
    embed_dataset(audio, whole, "logmel", tiny["logmel"], {"chunk_seconds": 60}, tmp_path, progress=False)
    embed_dataset(audio, chunked, "logmel", tiny["logmel"], {"chunk_seconds": 2, "chunk_overlap_seconds": 0.25}, tmp_path, progress=False)
    a, _, attrs_whole = read_embeddings(whole)
    b, _, attrs = read_embeddings(chunked)
    assert attrs["n_chunked"] == 1 and attrs_whole["n_chunked"] == 0
    assert attrs["n_frames"] == attrs_whole["n_frames"]
    np.testing.assert_allclose(b, a, atol=1e-4, rtol=1e-5)


def test_chunked_hubert_pools_the_stored_frames(tiny, tmp_path):
    """Streamed chunk pooling equals pooling the stitched frame sequence (stored frame-level)."""
    audio = write_audio(tmp_path / "audio16k.h5", tone_clips([16000 * 5 + 777, 6000]))
    out = tmp_path / "emb.h5"
    embed_dataset(
        audio, out, "hubert", tiny["hubert"],
        {"chunk_seconds": 1.5, "chunk_overlap_seconds": 0.5, "frame_level": True}, tmp_path / "cache", progress=False,
    )
    feats, ids, attrs = read_embeddings(out)
    with h5py.File(out) as h5:
        frames = {cid: h5["frames"][cid][()] for cid in ids}
    assert frames["clip00"].dtype == np.float16
    n = 16000 * 5 + 777
    assert abs(frames["clip00"].shape[1] - n // 320) <= 3  # ~50 frames/s, overlaps counted once
    for i, cid in enumerate(ids):
        np.testing.assert_allclose(feats[i], pool_mean_std(frames[cid].astype(np.float64)), atol=5e-3, rtol=5e-3)
    assert attrs["n_chunked"] == 1
    assert not list(tmp_path.glob(".*spill*"))  # the temporary frame spill is gone


def test_attributes_record_provenance(tiny, tmp_path):
    audio = write_audio(tmp_path / "audio16k.h5", tone_clips([8000, 3000]))
    out = tmp_path / "emb.h5"
    embed_dataset(audio, out, "aves", tiny["aves"], {"store_dtype": "float16"}, tmp_path / "cache", threads=1, progress=False)
    assert torch.get_num_threads() == 1
    with h5py.File(out) as h5:
        assert h5["features"].dtype == np.float16
        assert h5["features"].shape == (2, 3, 64)
    _, _, attrs = read_embeddings(out)
    expected = {
        "model": "aves", "source": "aves", "n_layers": 3, "pooling": "mean_std", "sample_rate": 16000,
        "min_samples": 5000, "peak_normalize": True, "precision": "fp32", "store_dtype": "float16",
        "audio_resampler": "soxr_hq", "audio_resampler_version": "test", "n_repeat_padded": 1,
    }
    assert {k: attrs[k] for k in expected} == expected
    assert len(attrs["weights_sha256"]) == 64 and attrs["config_url"] == tiny["aves"]["config_url"]
    for key in ("torch_version", "torchaudio_version", "transformers_version", "bioprobe_version", "chunking"):
        assert attrs[key]


def test_hf_attributes_record_revision_and_checksums(tiny, tmp_path):
    audio = write_audio(tmp_path / "audio16k.h5", tone_clips([6000]))
    out = tmp_path / "emb.h5"
    embed_dataset(audio, out, "w2v2", tiny["wav2vec2"], {}, tmp_path / "cache", progress=False)
    _, _, attrs = read_embeddings(out)
    assert attrs["id"] == tiny["wav2vec2"]["id"] and attrs["model_type"] == "wav2vec2"
    assert "model.safetensors" in attrs["files_sha256"]
    assert attrs["attention_mask"] is False or attrs["attention_mask"] == 0


def test_bf16_drift_against_fp32_is_small(tiny, tmp_path):
    audio = write_audio(tmp_path / "audio16k.h5", tone_clips([8000, 8000, 12000]))
    paths = {}
    for precision in ("fp32", "bf16"):
        paths[precision] = tmp_path / f"{precision}.h5"
        embed_dataset(audio, paths[precision], "hubert", tiny["hubert"], {"precision": precision, "device": "cpu"}, tmp_path / "cache", progress=False)
    fp32, _, _ = read_embeddings(paths["fp32"])
    bf16, _, attrs = read_embeddings(paths["bf16"])
    assert attrs["precision"] == "bf16" and np.isfinite(bf16).all()
    drift = np.abs(bf16 - fp32).max() / np.abs(fp32).max()
    assert 0 < drift < 0.05, drift  # bf16 has an 8-bit mantissa: ~1% relative error


def test_fp16_on_cpu_is_refused(tiny, tmp_path):
    audio = write_audio(tmp_path / "audio16k.h5", tone_clips([8000]))
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        embed_dataset(audio, tmp_path / "e.h5", "hubert", tiny["hubert"], {"precision": "fp16", "device": "cpu"}, tmp_path / "cache", progress=False)
    assert not (tmp_path / "e.h5").exists()


def test_non_finite_output_names_the_clip_and_leaves_no_file(tiny, tmp_path):
    clips = tone_clips([8000, 8000, 8000])
    clips["clip01"] = clips["clip01"] * np.float32(3e38)  # overflows to Inf inside the model
    audio = write_audio(tmp_path / "audio16k.h5", clips)
    out = tmp_path / "emb.h5"
    with pytest.raises(FloatingPointError, match=r"NaN/Inf in the output for clip\(s\) \['clip01'\]"):
        embed_dataset(audio, out, "hubert", tiny["hubert"], {"peak_normalize": False}, tmp_path / "cache", progress=False)
    assert not out.exists() and list(tmp_path.glob("*.h5")) == [audio]


def test_empty_clip_is_a_clear_error(tiny, tmp_path):
    clips = tone_clips([8000])
    clips["nothing"] = np.zeros(0, np.float32)
    audio = write_audio(tmp_path / "audio16k.h5", clips)
    with pytest.raises(ValueError, match=r"clip 'nothing' in .*audio16k\.h5: empty clip"):
        embed_dataset(audio, tmp_path / "emb.h5", "logmel", tiny["logmel"], {}, tmp_path, progress=False)
    assert not (tmp_path / "emb.h5").exists()


def test_wrong_sample_rate_is_an_error(tiny, tmp_path):
    audio = write_audio(tmp_path / "audio8k.h5", tone_clips([8000]), sample_rate=8000)
    with pytest.raises(ValueError, match="sample rate 8000 Hz"):
        embed_dataset(audio, tmp_path / "emb.h5", "logmel", tiny["logmel"], {}, tmp_path, progress=False)


# ------------------------------------------------------------------------------------------------
# budget dry run


def test_budget_predicts_the_embedding_file_size(tiny, tmp_path, capsys):
    from bioprobe.budget import estimate, format_report, main

    results = tmp_path / "results"
    clips = tone_clips([8000, 3000, 16000 * 3] * 20)
    write_audio(results / "calls" / "audio16k.h5", clips)
    (results / "later").mkdir(parents=True)
    (results / "later" / "clips.csv").write_text("clip_id,path,start,end\na,x.wav,0.0,1.5\nb,x.wav,1.5,3.0\n")
    config = {
        "model_cache": str(tmp_path / "cache"),
        "datasets": {"calls": {"type": "folder"}, "later": {"type": "folder"}, "off": {"type": "folder", "enabled": False}},
        "models": {"logmel": {"source": "logmel"}, "hubert": tiny["hubert"], "big": {"source": "huggingface", "id": "org/not-fetched"}},
        "embed": {"store_dtype": "float32"},
    }
    rows = {(r["dataset"], r["model"]): r for r in estimate(config, results, rtf=0.5)}
    assert set(rows) == {(d, m) for d in ("calls", "later") for m in ("logmel", "hubert", "big")}
    calls = rows["calls", "logmel"]
    assert calls["n_clips"] == 60 and (calls["n_layers"], calls["dim"]) == (1, 64)
    assert calls["audio_hours"] == pytest.approx(20 * (8000 + 5000 + 48000) / 16000 / 3600)
    assert calls["compute_hours"] == pytest.approx(calls["audio_hours"] * 0.5)
    assert (rows["calls", "hubert"]["n_layers"], rows["calls", "hubert"]["dim"]) == (3, 32)  # from the folder's config
    assert rows["calls", "big"]["geometry"].startswith("assumed") and rows["calls", "big"]["n_layers"] == 13
    assert rows["later", "logmel"]["n_clips"] == 2 and rows["later", "logmel"]["audio_hours"] == pytest.approx(3 / 3600)

    for name in ("logmel", "hubert"):
        out = tmp_path / f"{name}.h5"
        embed_dataset(results / "calls" / "audio16k.h5", out, name, config["models"][name], {}, tmp_path / "cache", progress=False)
        predicted, actual = rows["calls", name]["embedding_bytes"], out.stat().st_size
        assert abs(predicted - actual) < 0.25 * actual + 64 * 1024, (name, predicted, actual)

    report = format_report(list(rows.values()))
    assert "shape assumed" in report and "total embeddings" in report
    # A model key longer than the default column keeps every row's columns under the header's.
    renamed = [dict(r, model="hubert_base_ls960_finetuned") if r["model"] == "hubert" else r for r in rows.values()]
    header, *table = format_report(renamed).splitlines()[: 1 + len(renamed)]
    clips_end = header.index("clips") + len("clips")
    assert all(line[clips_end - 1] != " " and line[clips_end] == " " for line in table), "\n".join([header, *table])
    # The command line on the study's own config.yaml: prepared datasets get sizes, others "?".
    from pathlib import Path

    write_audio(results / "watkins" / "audio16k.h5", clips)
    main(["--config", str(Path(__file__).resolve().parents[1] / "config.yaml"), "--results", str(results)])
    out = capsys.readouterr().out
    assert "watkins      hubert" in out and "     60 " in out and "not prepared yet" in out


def test_budget_counts_pooled_bytes_per_layer_and_dtype_and_frame_layers(tmp_path):
    """Sizes worked out from the file layout: per clip and layer a mean and a std of ``dim`` values,
    2 bytes each in float16 and 4 in float32; frames (float16) for every layer."""
    from bioprobe.budget import estimate, format_report, human_bytes, model_geometry

    results = tmp_path / "results"
    (results / "calls").mkdir(parents=True)
    (results / "calls" / "clips.csv").write_text("clip_id,path,start,end\na,x.wav,0.0,1.5\nb,x.wav,2.0,2.1\n")

    def row(model, **embed):
        config = {"model_cache": str(tmp_path / "cache"), "datasets": {"calls": {"type": "folder"}},
                  "models": {"m": model}, "embed": embed}
        return estimate(config, results)[0]

    plain, deltas = {"source": "logmel"}, {"source": "logmel", "deltas": True}
    r16, r32 = row(deltas, store_dtype="float16"), row(deltas, store_dtype="float32")
    assert (r32["n_layers"], r32["dim"], r32["n_clips"]) == (3, 64, 2)  # log-mel, its delta and delta-delta
    assert r32["embedding_bytes"] - r16["embedding_bytes"] == 2 * 3 * (2 * 64) * (4 - 2)
    # frames of every layer: three layers store three times the frames of one
    one, three = row(plain, frame_level=True), row(deltas, frame_level=True)
    assert one["frame_level_bytes"] > 0 and three["frame_level_bytes"] == 3 * one["frame_level_bytes"]
    # AVES base (its torchaudio config, found through the weights lock): the CNN output and 12 blocks,
    # 768 wide, one frame per 320 samples
    cache = tmp_path / "cache"
    (cache / "locks").mkdir(parents=True)
    (cache / "aves.json").write_text(json.dumps({
        "encoder_num_layers": 12, "encoder_embed_dim": 768,
        "extractor_conv_layer_config": [[512, 10, 5]] + [[512, 3, 2]] * 4 + [[512, 2, 2]] * 2}))
    (cache / "locks" / "bio.json").write_text(json.dumps({"files": {"config": {"path": "aves.json"}}}))
    aves = model_geometry("bio", {"source": "aves"}, cache)
    assert (aves["n_layers"], aves["dim"], aves["hop_samples"], aves["geometry"]) == (13, 768, 320, "from config")
    # a transformers folder: hidden states = blocks + 1; the hop is the product of the conv strides
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text(json.dumps({"num_hidden_layers": 2, "hidden_size": 32, "conv_stride": [5, 2, 2]}))
    hf = model_geometry("hf", {"source": "huggingface", "id": str(tmp_path / "hf")}, cache)
    assert (hf["n_layers"], hf["dim"], hf["hop_samples"]) == (3, 32, 20)
    # a disabled model is listed but counted in no total
    config = {"model_cache": str(tmp_path / "cache"), "datasets": {"calls": {"type": "folder"}},
              "models": {"on": plain, "off": {**deltas, "enabled": False}}}
    rows = estimate(config, results)
    on = next(r for r in rows if r["model"] == "on")
    assert format_report(rows).splitlines()[-1] == f"total embeddings: {human_bytes(on['embedding_bytes'])}"


def test_long_clips_are_read_span_by_span_and_checked(tiny, tmp_path):
    clips = tone_clips([16000 * 3, 8000])
    clips["silent"] = np.zeros(16000 * 3, np.float32)
    audio = write_audio(tmp_path / "audio16k.h5", clips)
    out = tmp_path / "emb.h5"
    embed_dataset(audio, out, "logmel", tiny["logmel"], {"chunk_seconds": 1}, tmp_path, progress=False)
    feats, ids, attrs = read_embeddings(out)
    assert attrs["n_chunked"] == 2 and np.isfinite(feats).all()
    np.testing.assert_allclose(feats[ids.index("silent"), 0, :64], np.log(1e-6), rtol=1e-5)  # zeros, not NaN

    clips["clip00"][30_000] = np.nan
    audio = write_audio(tmp_path / "bad.h5", clips)
    with pytest.raises(ValueError, match=r"clip 'clip00' in .*bad\.h5: audio contains NaN"):
        embed_dataset(audio, tmp_path / "bad_emb.h5", "logmel", tiny["logmel"], {"chunk_seconds": 1}, tmp_path, progress=False)


def test_long_clip_std_follows_std_ddof(tiny, tmp_path):
    audio = write_audio(tmp_path / "audio16k.h5", tone_clips([16000 * 3 + 500]))
    feats, frames = {}, {}
    for ddof in (0, 1):
        out = tmp_path / f"ddof{ddof}.h5"
        embed_dataset(audio, out, "logmel", tiny["logmel"], {"chunk_seconds": 1, "std_ddof": ddof}, tmp_path, progress=False)
        feats[ddof], _, attrs = read_embeddings(out)
        assert attrs["n_chunked"] == 1
        frames[ddof] = attrs["n_frames"]
    n, dim = frames[0], feats[0].shape[2] // 2
    assert frames[1] == n > 100
    np.testing.assert_allclose(feats[1][0, :, :dim], feats[0][0, :, :dim])
    # unbiased / population variance = n / (n - 1)
    np.testing.assert_allclose(feats[1][0, :, dim:] ** 2, feats[0][0, :, dim:] ** 2 * n / (n - 1), rtol=1e-4)


def test_a_clip_shorter_than_the_encoder_needs_is_tiled_to_its_minimum(tiny, tmp_path):
    from bioprobe.encoders import load_encoder

    minimum = load_encoder("logmel", tiny["logmel"], tmp_path).min_input_samples
    short = tone_clips([50])["clip00"]
    assert minimum > 50
    got, expected = tmp_path / "got.h5", tmp_path / "expected.h5"
    embed_dataset(write_audio(tmp_path / "a.h5", {"c": short}), got, "logmel", tiny["logmel"], {"min_samples": 0}, tmp_path, progress=False)
    tiled = np.resize(short, minimum)  # the same clip repeated up to the encoder's minimum
    embed_dataset(write_audio(tmp_path / "b.h5", {"c": tiled}), expected, "logmel", tiny["logmel"], {"min_samples": 0}, tmp_path, progress=False)
    feats, _, attrs = read_embeddings(got)
    assert attrs["n_repeat_padded"] == 1 and attrs["min_samples_effective"] == minimum
    np.testing.assert_allclose(feats, read_embeddings(expected)[0], rtol=1e-6, atol=1e-6)


def test_an_overlap_frame_belongs_to_the_chunk_in_whose_half_it_starts():
    # overlap [1600, 3000), middle 2300; hop 160: frame 14 starts at 2240 (< 2300, first chunk),
    # frame 15 at 2400 (second chunk, whose first frame is 1600 / 160 = 10, so local frame 5)
    spans = [(0, 3000), (1600, 4600)]
    assert owned_frames(spans, 0, 160) == (0, 15)
    assert owned_frames(spans, 1, 160) == (5, None)


def test_batch_plans_at_the_chunk_length_and_under_a_small_sample_bound():
    from bioprobe.batching import plan_masked_batches

    # a clip of exactly chunk_samples is not chunked: it shares a bucket with a clip of like length
    assert plan_masked_batches([1000, 900], 16, 10_000, 1000, 1.25) == [[0, 1]]
    assert plan_masked_batches([1001, 900], 16, 10_000, 1000, 1.25) == [[0], [1]]
    # a clip longer than max_batch_samples (but not than a chunk) still gets a batch of its own
    assert plan_batches([600, 600, 600], batch_size=4, max_batch_samples=500, chunk_samples=10_000) == [[0], [1], [2]]


def test_standardised_quiet_and_silent_clips_follow_transformers():
    """A quiet clip (variance far below the 1e-7 epsilon) and a silent one, against the feature
    extractor's own zero_mean_unit_var_norm: no division by a near-zero or zero variance."""
    from transformers import Wav2Vec2FeatureExtractor

    quiet = (1e-4 * np.sin(np.arange(800) / 7)).astype(np.float32)
    for wave in (quiet, np.zeros(800, np.float32)):
        expected = Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm([wave], None)[0]
        np.testing.assert_allclose(prepare_clip(wave, "c", 0, peak_normalize=False, standardize=True), expected, rtol=1e-5, atol=1e-6)
