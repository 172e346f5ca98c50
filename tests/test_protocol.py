"""The authors' protocol as options: unbiased std, their batches and chunks, per-dataset and
per-model embed settings, and resources/configs/study_exact.yaml."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from bioprobe.config import ConfigError, effective_embed, embed_result_settings, embed_settings, load_config, validate_config
from bioprobe.batching import plan_study_batches
from bioprobe.embed import embed_dataset, embed_options, prepare_clip, study_chunk_spans
from bioprobe.encoders import load_encoder
from bioprobe.store import AudioReader, AudioWriter, read_embeddings
from bioprobe.tiny import save_tiny_hf_model

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def hubert(tmp_path_factory):
    root = tmp_path_factory.mktemp("protocol_models")
    return {"source": "huggingface", "id": str(save_tiny_hf_model("hubert", root / "hubert"))}


def clips(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return {f"c{i:02d}": (0.3 * rng.standard_normal(n) + 0.2 * np.sin(np.arange(n) * (0.01 + 0.003 * i))).astype(np.float32)
            for i, n in enumerate(lengths)}


def write_audio(path, waves, rows=None):
    with AudioWriter(path, {"sample_rate": 16000, "resampler": "soxr_hq", "resampler_version": "test"}) as writer:
        for k, (cid, wave) in enumerate(waves.items()):
            writer.append(cid, wave, manifest_row=None if rows is None else rows[k])
    return path


# ------------------------------------------------------------------------------------------------
# config


def test_study_exact_config_turns_on_every_quirk():
    config = load_config(REPO / "resources/configs/study_exact.yaml")
    assert config["results_dir"] == "results/study_exact"
    study = load_config(REPO / "config.yaml")
    assert (config["data_dir"], config["model_cache"]) == (study["data_dir"], study["model_cache"])  # downloads shared
    assert config["probes"]["mlp"]["evaluate"] == "last"
    assert config["models"]["aves_bio"]["layer0"] == "study"
    imv = effective_embed(config, "imv", "w2v2")
    assert (imv["batching"], imv["batch_size"], imv["std_ddof"], imv["min_samples"]) == ("study_repeat_pad", 32, 1, 5000)
    for dataset in ("watkins", "abzaliev"):
        assert effective_embed(config, dataset, "w2v2")["batch_size"] == 1
        assert effective_embed(config, dataset, "w2v2")["chunk_seconds"] * 16000 == 2_000_000
        assert effective_embed(config, dataset, "hubert")["chunk_seconds"] * 16000 == 300_000
    # under study_repeat_pad the batch size changes the numbers, so it is tracked per dataset
    assert embed_result_settings(imv)["batch_size"] == 32
    assert embed_result_settings(effective_embed(config, "watkins", "hubert"))["chunk_seconds"] == 18.75
    # the study's config: AVES layer 0 as the study, unbiased std, equal-length batches
    assert study["models"]["aves_bio"]["layer0"] == "study" and study["embed"]["std_ddof"] == 1
    assert study["results_dir"] == "results"


def test_tracked_embed_settings():
    base = validate_config({"datasets": {"d": {"type": "folder", "root": "r", "labels": "l.csv"}},
                            "models": {"m": {"source": "logmel"}}, "probes": {"p": {"type": "mlp"}}})
    tracked = embed_result_settings(base["embed"])
    # batching masked (the default) or equal_length and std_ddof 0 give the embeddings from before
    # the keys existed: left out at those values (adding the key re-embeds nothing); the new
    # default std_ddof 1 is tracked
    assert "batching" not in tracked and tracked["std_ddof"] == 1
    assert "batching" not in embed_result_settings({**base["embed"], "batching": "equal_length"})
    assert "std_ddof" not in embed_result_settings({**base["embed"], "std_ddof": 0})
    assert "batch_size" not in tracked and "device" not in tracked
    padded = embed_result_settings({**base["embed"], "batching": "study_repeat_pad"})
    assert padded["batching"] == "study_repeat_pad" and padded["batch_size"] == 16 and "max_batch_seconds" not in padded
    assert embed_settings(tracked, base) == base["embed"]


def test_embed_overrides_merge_in_order_and_are_checked():
    raw = {
        "datasets": {"d": {"type": "folder", "root": "r", "labels": "l.csv", "embed": {"batch_size": 4, "min_samples": 800}}},
        "models": {"m": {"source": "logmel", "embed": {"min_samples": 700}}, "n": {"source": "mfcc"}},
        "probes": {"p": {"type": "mlp"}},
        "embed": {"batch_size": 2, "device": "cpu"},
    }
    config = validate_config(raw)
    assert config["models"]["m"]["embed"] == {"min_samples": 700}  # no defaults filled into overrides
    assert effective_embed(config, "d", "m")["min_samples"] == 700
    assert effective_embed(config, "d", "n")["min_samples"] == 800
    assert effective_embed(config, "d", "n")["batch_size"] == 4 and effective_embed(config)["batch_size"] == 2
    job = embed_settings(embed_result_settings(effective_embed(config, "d", "n")), config, "d", "n")
    assert job["batch_size"] == 4 and job["device"] == "cpu" and job["min_samples"] == 800
    bad = {**raw, "models": {"m": {"source": "logmel", "embed": {"std_ddof": 2}}}}
    with pytest.raises(ConfigError, match=r"models\.m\.embed\.std_ddof"):
        validate_config(bad)
    unknown = {**raw, "models": {"m": {"source": "logmel", "embed": {"chunk_second": 2}}}}
    with pytest.raises(ConfigError, match=r"models\.m\.embed"):
        validate_config(unknown)
    layer0 = {**raw, "models": {"m": {"source": "huggingface", "id": "a/b", "layer0": "study"}}}
    with pytest.raises(ConfigError, match=r"models\.m"):
        validate_config(layer0)  # layer0 is an AVES key


# ------------------------------------------------------------------------------------------------
# the authors' batches and chunks


def test_embed_options_std_ddof_and_batching():
    opts = embed_options({})
    assert (opts["std_ddof"], opts["batching"]) == (1, "masked")
    with pytest.raises(ValueError, match="std_ddof"):
        embed_options({"std_ddof": 2})
    with pytest.raises(ValueError, match="batching must be one of"):
        embed_options({"batching": "padded"})


def test_plan_study_batches_takes_consecutive_clips_in_manifest_order():
    lengths = [100, 900, 300, 5000, 200, 700, 400]
    order = [6, 5, 4, 3, 2, 1, 0]
    assert plan_study_batches(lengths, order, 3, chunk_samples=1000) == [[6, 5, 4], [3], [2, 1], [0]]
    assert plan_study_batches(lengths, range(7), 1, chunk_samples=10_000) == [[i] for i in range(7)]


def test_study_chunk_spans_are_back_to_back():
    assert study_chunk_spans(1000, 300, 50) == [(0, 300), (300, 600), (600, 900), (900, 1000)]
    assert study_chunk_spans(920, 300, 50) == [(0, 300), (300, 600), (600, 920)]  # a 20-sample tail joins
    assert study_chunk_spans(300_000 * 2 + 7000, 300_000, 5000)[-1] == (600_000, 607_000)


def by_hand(encoder, waves, ddof):
    """Pad every clip to the longest of the batch (tiling, >= 5000), pool all frames: the authors' recipe."""
    normed = [w / np.abs(w).max() for w in waves]
    target = max(5000, *(len(w) for w in normed))
    batch = np.stack([np.resize(w, target) for w in normed]).astype(np.float32)
    with torch.inference_mode():
        out = encoder(torch.from_numpy(batch)).double()  # [L, B, T, D]
    return torch.cat([out.mean(dim=2), out.std(dim=2, unbiased=bool(ddof))], dim=-1).transpose(0, 1).numpy()


def test_study_repeat_pad_batches_follow_the_manifest_order(hubert, tmp_path):
    waves = clips([3000, 9000, 6400, 12000, 4000, 7000, 8000])
    rows = [3, 0, 6, 1, 5, 2, 4]  # file order is not manifest order (resample groups clips by file)
    audio = write_audio(tmp_path / "audio16k.h5", waves, rows)
    with AudioReader(audio) as reader:
        order = reader.manifest_order()
    assert [rows[i] for i in order] == list(range(7))
    out = tmp_path / "emb.h5"
    opts = {"batching": "study_repeat_pad", "batch_size": 3, "device": "cpu"}
    embed_dataset(audio, out, "hubert", hubert, opts, tmp_path / "cache", progress=False)
    feats, ids, attrs = read_embeddings(out)
    assert ids == list(waves) and attrs["std_ddof"] == 1 and json.loads(attrs["batching"])["batch_size"] == 3
    assert attrs["n_batches"] == 3
    encoder = load_encoder("hubert", hubert, tmp_path / "cache")
    names = list(waves)
    for batch in ([order[0], order[1], order[2]], [order[3], order[4], order[5]], [order[6]]):
        expected = by_hand(encoder, [waves[names[i]] for i in batch], ddof=1)
        np.testing.assert_allclose(feats[batch], expected, rtol=1e-4, atol=1e-5)
    # exact batching (masked, the default) gives other numbers for the padded clips (padding changes them)
    plain = tmp_path / "plain.h5"
    embed_dataset(audio, plain, "hubert", hubert, {"device": "cpu"}, tmp_path / "cache", progress=False)
    assert np.abs(read_embeddings(plain)[0] - feats).max() > 1e-3


def test_std_ddof_0_and_1_and_a_one_frame_clip(hubert, tmp_path):
    audio = write_audio(tmp_path / "audio16k.h5", clips([400, 8000]))
    feats = {}
    for ddof in (0, 1):
        out = tmp_path / f"ddof{ddof}.h5"
        embed_dataset(audio, out, "hubert", hubert, {"std_ddof": ddof, "min_samples": 0}, tmp_path / "cache", progress=False)
        feats[ddof], _, attrs = read_embeddings(out)
        assert attrs["std_ddof"] == ddof
    dim = feats[0].shape[2] // 2
    np.testing.assert_array_equal(feats[0][:, :, :dim], feats[1][:, :, :dim])  # means do not change
    assert np.isfinite(feats[1]).all()
    np.testing.assert_array_equal(feats[1][0, :, dim:], 0.0)  # 400 samples: one frame, std 0 (not NaN)
    frames = 1 + (8000 - 400) // 320  # 24 frames: 400-sample receptive field, 320-sample hop
    np.testing.assert_allclose(feats[1][1, :, dim:], feats[0][1, :, dim:] * np.sqrt(frames / (frames - 1)), rtol=1e-5)


def test_study_chunking_concatenates_back_to_back_chunks(hubert, tmp_path):
    long = clips([16000 * 3 + 5000])
    audio = write_audio(tmp_path / "audio16k.h5", long)
    out = tmp_path / "emb.h5"
    opts = {"batching": "study_repeat_pad", "batch_size": 1, "chunk_seconds": 1.0}
    embed_dataset(audio, out, "hubert", hubert, opts, tmp_path / "cache", progress=False)
    feats, _, attrs = read_embeddings(out)
    assert attrs["n_chunked"] == 1
    encoder = load_encoder("hubert", hubert, tmp_path / "cache")
    wave = prepare_clip(long["c00"], "c00", 0, True)
    parts = []
    with torch.inference_mode():
        for start in (0, 16000, 32000, 48000):
            parts.append(encoder(torch.from_numpy(wave[start : start + 16000][None]))[:, 0].double())
    frames = torch.cat(parts, dim=1)  # chunks of 16000, 16000, 16000, 5000 samples: 49 + 49 + 49 + 15 frames
    assert attrs["n_frames"] == frames.shape[1] == 162
    expected = torch.cat([frames.mean(dim=1), frames.std(dim=1)], dim=-1).numpy()
    np.testing.assert_allclose(feats[0], expected, rtol=1e-4, atol=1e-5)


def resampled_order(tmp_path, rate: int, seed: int, rows: str) -> tuple[list, list]:
    """Files a.wav and b.wav (1 s at ``rate``) resampled as the manifest ``rows`` say: the file's
    clip order and the clips in manifest order."""
    from bioprobe.audio import resample_manifest

    rng = np.random.default_rng(seed)
    for name in ("a", "b"):
        sf.write(tmp_path / f"{name}.wav", rng.standard_normal(rate).astype(np.float32) * 0.1, rate)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("clip_id,path,start,end\n" + rows)
    out = tmp_path / "audio16k.h5"
    resample_manifest(manifest, tmp_path, out, progress=False)
    with AudioReader(out) as reader:
        return reader.clip_ids, [reader.clip_ids[i] for i in reader.manifest_order()]


def test_resample_records_manifest_rows(tmp_path):
    stored, manifest_order = resampled_order(tmp_path, 22050, 0, "x0,a.wav,0,0.2\nx1,b.wav,0,0.3\nx2,a.wav,0.5,0.7\n")
    assert stored == ["x0", "x2", "x1"]  # grouped by file
    assert manifest_order == ["x0", "x1", "x2"]


def test_a_study_batch_keeps_a_clip_of_exactly_the_chunk_length():
    # only clips *longer* than a chunk leave their batch; 1000 == chunk_samples stays in it
    assert plan_study_batches([1000, 200, 1001], [0, 1, 2], 3, chunk_samples=1000) == [[2], [0, 1]]


def test_manifest_order_survives_files_interleaved_in_the_manifest(tmp_path):
    stored, manifest_order = resampled_order(
        tmp_path, 16000, 1, "x0,a.wav,0,0.2\nx1,b.wav,0,0.2\nx2,b.wav,0.3,0.5\nx3,a.wav,0.3,0.5\n")
    assert stored == ["x0", "x3", "x1", "x2"]  # grouped by file, files in order of first appearance
    assert manifest_order == ["x0", "x1", "x2", "x3"]
