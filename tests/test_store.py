import numpy as np
import pytest

from bioprobe.store import AudioReader, AudioWriter, read_embeddings, write_embeddings


def test_audio_roundtrip_ragged(tmp_path):
    path = tmp_path / "audio16k.h5"
    clips = {"a": np.arange(5, dtype=np.float32), "b": np.ones(1, np.float32), "c": np.linspace(-1, 1, 100000).astype(np.float32)}
    with AudioWriter(path, attrs={"sample_rate": 16000, "resampler": "soxr_hq", "nested": {"x": 1}}) as w:
        for k, v in clips.items():
            w.append(k, v)
    with AudioReader(path) as r:
        assert r.clip_ids == ["a", "b", "c"]
        assert r.lengths.tolist() == [5, 1, 100000]
        for k, v in clips.items():
            np.testing.assert_array_equal(r.get(k), v)
        assert r.attrs["resampler"] == "soxr_hq" and r.sample_rate == 16000
        assert r.attrs["nested"] == '{"x": 1}'


def test_audio_writer_leaves_nothing_on_error(tmp_path):
    path = tmp_path / "audio16k.h5"
    with pytest.raises(RuntimeError):
        with AudioWriter(path) as w:
            w.append("a", np.zeros(10, np.float32))
            raise RuntimeError("crash midway")
    assert list(tmp_path.iterdir()) == []


def test_audio_writer_rejects_duplicates_and_stereo(tmp_path):
    with pytest.raises(ValueError, match="duplicate"):
        with AudioWriter(tmp_path / "x.h5") as w:
            w.append("a", np.zeros(3))
            w.append("a", np.zeros(3))
    with pytest.raises(ValueError, match="mono"):
        with AudioWriter(tmp_path / "y.h5") as w:
            w.append("a", np.zeros((3, 2)))
    assert list(tmp_path.iterdir()) == []


def test_embeddings_roundtrip_and_layer_selection(tmp_path):
    feats = np.random.default_rng(0).normal(size=(4, 13, 6)).astype(np.float32)
    write_embeddings(tmp_path / "m.h5", feats, ["a", "b", "c", "d"], attrs={"model": "m", "revision": None})
    got, ids, attrs = read_embeddings(tmp_path / "m.h5")
    np.testing.assert_array_equal(got, feats)
    assert ids == ["a", "b", "c", "d"] and attrs["model"] == "m" and attrs["revision"] == "null"
    sub, _, _ = read_embeddings(tmp_path / "m.h5", layers=[0, 12])
    np.testing.assert_array_equal(sub, feats[:, [0, 12]])


def test_embeddings_shape_checked(tmp_path):
    with pytest.raises(ValueError, match="n_clips"):
        write_embeddings(tmp_path / "m.h5", np.zeros((3, 2, 2)), ["a", "b"])
    assert not (tmp_path / "m.h5").exists()


def test_pause_hook_stops_the_resample_writer_mid_file(tmp_path):
    """The interruption tests' hook: with the variable set, the writer hangs after its first clip."""
    import subprocess
    import sys
    import time

    from conftest import REPO

    marker = tmp_path / "paused"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import numpy as np; from bioprobe.store import AudioWriter\n"
            "with AudioWriter(sys.argv[2]) as w:\n    w.append('a', np.zeros(10, np.float32))\n    w.append('b', np.zeros(10, np.float32))\n")
    env = {"BIOPROBE_TEST_PAUSE_AFTER_FIRST_WRITE": "resample", "BIOPROBE_TEST_PAUSE_AFTER_FIRST_WRITE_MARKER": str(marker),
           "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([sys.executable, "-c", code, str(REPO / "workflow"), str(tmp_path / "a.h5")], env=env)
    try:
        for _ in range(1200):  # up to 2 min: a loaded machine starts Python, numpy and h5py slowly
            if marker.exists() and marker.read_text().endswith("\n"):  # touched, and its line written
                break
            time.sleep(0.1)
        assert marker.read_text().startswith("resample ")
        assert proc.poll() is None  # hanging mid-write
        assert not (tmp_path / "a.h5").exists() and [p.name for p in tmp_path.glob(".a.h5.*.part.h5")]
    finally:
        proc.kill()
        proc.wait()
    # without the variable the same writer finishes
    subprocess.run([sys.executable, "-c", code, str(REPO / "workflow"), str(tmp_path / "b.h5")], check=True,
                   env={"PATH": "/usr/bin:/bin"})
    assert (tmp_path / "b.h5").exists()


def test_atomic_writes_remove_what_a_killed_writer_left(tmp_path):
    from bioprobe.fileio import write_text

    stale = tmp_path / ".out.txt.abc123.part.txt"
    stale.write_text("half")
    other = tmp_path / ".other.txt.abc123.part.txt"
    other.write_text("not ours")
    write_text(tmp_path / "out.txt", "whole")
    assert (tmp_path / "out.txt").read_text() == "whole"
    assert not stale.exists() and other.exists()
