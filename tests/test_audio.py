import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from bioprobe.audio import AudioError, cut_segment, resample, resample_manifest, to_mono
from bioprobe.store import AudioReader


def tone(freq, sr, seconds):
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("method", ["soxr_hq", "soxr_vhq", "torchaudio_sinc"])
@pytest.mark.parametrize("sr_in", [600, 8000, 44100, 166600])
def test_resample_keeps_length_and_frequency(method, sr_in):
    freq = 100.0 if sr_in == 600 else 1000.0
    x = tone(freq, sr_in, 1.0)
    y = resample(x, sr_in, 16000, method)
    assert y.dtype == np.float32
    assert abs(len(y) - 16000) <= 1
    spectrum = np.abs(np.fft.rfft(y[2000:14000] * np.hanning(12000)))
    peak_hz = np.argmax(spectrum) * 16000 / 12000
    assert abs(peak_hz - freq) < 3
    assert 0.4 < np.abs(y[2000:14000]).max() < 0.6


def test_resample_rejects_unknown_method():
    with pytest.raises(ValueError, match="unknown resampler 'fast'"):
        resample(np.zeros(10, np.float32), 8000, 16000, "fast")


def test_to_mono_averages_channels():
    x = np.stack([np.ones(4), -np.ones(4) * 3], axis=1).astype(np.float32)
    np.testing.assert_allclose(to_mono(x), -np.ones(4))


def test_cut_segment_bounds():
    x = np.arange(16000, dtype=np.float32)
    np.testing.assert_array_equal(cut_segment(x, 16000, 0.5, 0.75, "f"), x[8000:12000])
    assert len(cut_segment(x, 16000, "", "", "f")) == 16000
    assert len(cut_segment(x, 16000, 0.5, 1.02, "f")) == 8000  # within tolerance: cut at the end
    with pytest.raises(AudioError, match="f: segment ends at 1.500 s but the file lasts 1.000 s"):
        cut_segment(x, 16000, 0.5, 1.5, "f")
    with pytest.raises(AudioError, match="bad segment times"):
        cut_segment(x, 16000, 0.5, 0.5, "f")


def write_manifest(path, rows):
    pd.DataFrame(rows, columns=["clip_id", "path", "start", "end", "label", "group", "split"]).to_csv(path, index=False)


def test_resample_manifest_mixed_rates_channels_and_segments(tmp_path):
    root = tmp_path / "audio"
    root.mkdir()
    sf.write(root / "a.wav", tone(440, 44100, 1.0), 44100)
    stereo = np.stack([tone(300, 8000, 0.5), tone(300, 8000, 0.5)], axis=1)
    sf.write(root / "b.flac", stereo, 8000)
    rec = np.concatenate([np.zeros(96000, np.float32), tone(2000, 96000, 0.25), np.zeros(96000, np.float32)])
    sf.write(root / "rec.wav", rec, 96000, subtype="FLOAT")
    manifest = tmp_path / "manifest.csv"
    write_manifest(
        manifest,
        [
            ("c1", "a.wav", "", "", "x", "g", "train"),
            ("c2", "rec.wav", 1.0, 1.25, "y", "g", "val"),
            ("c3", "b.flac", "", "", "y", "g", "test"),
            ("c4", "rec.wav", 0.0, 0.5, "x", "g", "train"),
        ],
    )
    out = tmp_path / "audio16k.h5"
    assert resample_manifest(manifest, root, out, progress=False) == 4
    with AudioReader(out) as r:
        # grouped by file in order of first appearance: rec.wav's clips are read together
        assert r.clip_ids == ["c1", "c2", "c4", "c3"]
        assert r.lengths.tolist() == [16000, 4000, 8000, 8000]
        assert r.attrs["resampler"] == "soxr_hq" and r.attrs["resampler_version"].startswith("soxr ")
        call = r.get("c2")
        assert 0.4 < np.abs(call).max() < 0.6
        assert np.abs(r.get("c4")).max() < 0.05  # the silence before the call
        np.testing.assert_allclose(r.get("c3"), resample(tone(300, 8000, 0.5), 8000, 16000), atol=1e-4)


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda root: None, "missing.wav: file listed in"),
        (lambda root: (root / "missing.wav").write_bytes(b"not audio at all"), "missing.wav: cannot decode audio"),
        (lambda root: sf.write(root / "missing.wav", np.zeros(0, np.float32), 16000), "missing.wav: the file holds no audio"),
        (lambda root: sf.write(root / "missing.wav", np.array([0.1, np.nan, 0.2] * 100, np.float32), 16000, subtype="FLOAT"), "NaN or infinite"),
    ],
)
def test_bad_audio_is_named_and_leaves_no_output(tmp_path, setup, message):
    root = tmp_path / "audio"
    root.mkdir()
    setup(root)
    manifest = tmp_path / "manifest.csv"
    write_manifest(manifest, [("c1", "missing.wav", "", "", "x", "g", "train")])
    out = tmp_path / "audio16k.h5"
    with pytest.raises(AudioError, match=message):
        resample_manifest(manifest, root, out, progress=False)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".audio16k")]


def test_streamed_resampling_equals_resampling_the_whole_file():
    from bioprobe.audio import resampled_blocks

    rng = np.random.default_rng(1)
    wave = rng.uniform(-1, 1, (100_003, 3)).astype(np.float32)
    whole = resample(to_mono(wave), 44100, 16000)
    for block in (1, 997, 65536, 200_000):
        blocks = (wave[i : i + block] for i in range(0, len(wave), block))
        streamed = np.concatenate(list(resampled_blocks(blocks, 44100, 16000)))
        np.testing.assert_array_equal(streamed, whole)


def test_long_files_are_spooled_to_disk_with_the_same_result(tmp_path, monkeypatch):
    import bioprobe.audio as audio

    root = tmp_path / "audio"
    root.mkdir()
    rec = np.random.default_rng(2).uniform(-0.5, 0.5, (3 * 48000, 2)).astype(np.float32)
    sf.write(root / "rec.wav", rec, 48000, subtype="FLOAT")
    manifest = tmp_path / "m.csv"
    write_manifest(manifest, [("a", "rec.wav", 0.25, 1.5, "x", "g", "train"), ("b", "rec.wav", "", "", "x", "g", "val"),
                              ("c", "rec.wav", 1.0, 2.0, "x", "g", "val")])
    resample_manifest(manifest, root, tmp_path / "mem.h5", progress=False)
    monkeypatch.setattr(audio, "IN_MEMORY_SAMPLES", 1000)  # spool, and copy clips in blocks of 250
    monkeypatch.setattr(audio, "BLOCK_FRAMES", 777)
    resample_manifest(manifest, root, tmp_path / "spool.h5", progress=False)
    with AudioReader(tmp_path / "mem.h5") as a, AudioReader(tmp_path / "spool.h5") as b:
        assert a.clip_ids == b.clip_ids == ["a", "b", "c"]
        assert a.lengths.tolist() == [20000, 48000, 16000]
        for i in range(3):
            np.testing.assert_array_equal(a[i], b[i])
        np.testing.assert_array_equal(a.get("b")[4000:24000], a.get("a"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audio", "m.csv", "mem.h5", "spool.h5"]


def test_every_clip_the_audit_accepts_resamples(tmp_path):
    from badaudio import make_corpus
    from bioprobe.audit import run_audit

    rows = make_corpus(tmp_path / "corpus")
    clips = tmp_path / "clips.csv"
    pd.DataFrame([{"clip_id": f"c{i}", "path": p, "start": s, "end": e} for i, (p, s, e, _x) in enumerate(rows)]).to_csv(clips, index=False)
    outs = [tmp_path / n for n in ("accepted.csv", "rejected.csv", "warnings.csv")]
    result = run_audit("d", clips, tmp_path / "corpus", *outs, policy="skip")
    n = resample_manifest(outs[0], tmp_path / "corpus", tmp_path / "a.h5", progress=False)
    assert n == len(result.accepted) == len(rows) - len(result.rejected)
    with AudioReader(tmp_path / "a.h5") as r:
        assert sorted(r.clip_ids) == sorted(result.accepted["clip_id"])
        assert all(np.isfinite(r[i]).all() and len(r[i]) > 0 for i in range(len(r)))
    # the rejected clips would have failed the resampler, naming the file
    with pytest.raises(AudioError, match="corpus/"):
        resample_manifest(clips, tmp_path / "corpus", tmp_path / "b.h5", progress=False)
    assert not (tmp_path / "b.h5").exists()


def test_a_nan_next_to_a_clip_does_not_spread_into_it(tmp_path):
    rec = tone(1000, 16000, 2.0)
    rec[16000:16050] = np.nan  # between the two clips, inside no clip
    sf.write(tmp_path / "r.wav", rec, 16000, subtype="FLOAT")
    manifest = tmp_path / "m.csv"
    write_manifest(manifest, [("a", "r.wav", 0.0, 0.999, "x", "g", "train"), ("b", "r.wav", 1.01, 2.0, "x", "g", "val"),
                              ("c", "r.wav", 0.5, 1.5, "x", "g", "val")])
    with pytest.raises(AudioError, match=r"r.wav \(clip c\): the clip contains NaN"):
        resample_manifest(manifest, tmp_path, tmp_path / "o.h5", progress=False)
    write_manifest(manifest, [("a", "r.wav", 0.0, 0.999, "x", "g", "train"), ("b", "r.wav", 1.01, 2.0, "x", "g", "val")])
    resample_manifest(manifest, tmp_path, tmp_path / "o.h5", progress=False)
    with AudioReader(tmp_path / "o.h5") as r:
        assert np.isfinite(r.get("a")).all() and np.isfinite(r.get("b")).all()


def test_segment_bounds_round_to_the_nearest_sample_and_stop_at_the_file_end():
    from bioprobe.audio import segment_bounds

    # 1.00004 s * 16 kHz = 16000.64 samples -> sample 16001 (nearest), not 16000 (truncated);
    # 1.99997 s -> 31999.52 -> 32000
    assert segment_bounds(32000, 16000, 1.00004, 1.99997, "f") == (16001, 32000)
    # an end within the tolerance past the file is cut at the last sample
    assert segment_bounds(16000, 16000, 0.5, 1.02, "f") == (8000, 16000)
    # a segment starting exactly at the end of the file holds nothing: an error, not an empty clip
    with pytest.raises(AudioError, match="f: segment starts at 1.000 s but the file lasts 1.000 s"):
        segment_bounds(16000, 16000, 1.0, 1.02, "f")


def test_non_finite_samples_are_located_across_blocks():
    from bioprobe.audio import nonfinite_to_zero

    blocks = [np.ones((4, 2), np.float32), np.array([[1, 1], [np.nan, 1], [1, np.inf], [1, 1]], np.float32)]
    bad = []
    out = list(nonfinite_to_zero(iter(blocks), bad))
    assert bad == [(5, 7)]  # source frames 5 and 6 (the second block starts at frame 4)
    np.testing.assert_array_equal(out[1], [[1, 1], [0, 1], [1, 0], [1, 1]])
