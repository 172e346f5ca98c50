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
