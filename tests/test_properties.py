"""Property-based tests (hypothesis) of the audio reader/resampler and the manifest parsers.

Bounded: few examples each and no per-example deadline surprises, so the whole file adds a
few seconds to the default test run.
"""

import csv
import io
import itertools
import math

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bioprobe import datasets
from bioprobe.audio import AudioError, read_audio, resample, resampled_blocks, segment_bounds, to_mono

BOUNDED = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])
RATES = [600, 8000, 11025, 16000, 22050, 44100, 48000, 96000, 166600, 192000, 384000]
SUBTYPES = {"PCM_U8": 1 / 64, "PCM_16": 1e-4, "PCM_24": 1e-6, "PCM_32": 1e-8, "FLOAT": 0.0, "DOUBLE": 0.0}
COUNTER = itertools.count()

waves = st.tuples(st.integers(1, 4000), st.integers(1, 8), st.integers(0, 2**32 - 1)).map(
    lambda a: np.random.default_rng(a[2]).uniform(-0.99, 0.99, (a[0], a[1])).astype(np.float32))


@BOUNDED
@given(wave=waves, sr=st.sampled_from(RATES), subtype=st.sampled_from(sorted(SUBTYPES)), fmt=st.sampled_from(["WAV", "FLAC"]))
def test_reader_returns_what_was_written(tmp_path, wave, sr, subtype, fmt):
    if fmt == "FLAC" and (subtype not in ("PCM_16", "PCM_24") or sr > 655350):
        subtype = "PCM_16"
    path = tmp_path / f"w{next(COUNTER)}.{fmt.lower()}"
    sf.write(path, wave, sr, subtype=subtype, format=fmt)
    back, sr_back = read_audio(path)
    assert sr_back == sr and back.shape == wave.shape and back.dtype == np.float32
    assert np.abs(back - wave).max() <= SUBTYPES[subtype] + 1e-7


@BOUNDED
@given(wave=waves, sr=st.sampled_from(RATES), block=st.integers(1, 5000), method=st.sampled_from(["soxr_hq", "soxr_vhq"]))
def test_streamed_resampling_is_the_whole_file_resampling(wave, sr, block, method):
    whole = resample(to_mono(wave), sr, 16000, method)
    streamed = list(resampled_blocks((wave[i : i + block] for i in range(0, len(wave), block)), sr, 16000, method))
    out = np.concatenate(streamed) if streamed else np.zeros(0, np.float32)
    np.testing.assert_array_equal(out, whole)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert abs(len(out) - len(wave) * 16000 / sr) <= 1
    mono = to_mono(wave)
    if len(wave) >= 100 and len(out):  # a band-limiting filter creates no energy (rms per sample)
        assert np.sqrt(np.mean(out.astype(np.float64) ** 2)) <= 1.01 * np.sqrt(np.mean(mono.astype(np.float64) ** 2)) + 1e-6


@BOUNDED
@given(n=st.integers(1, 10**7), sr=st.sampled_from(RATES), start=st.floats(0, 1e4), length=st.floats(1e-4, 1e4))
def test_segment_bounds_inside_the_file_or_an_error(n, sr, start, length):
    end = start + length
    duration = n / sr
    try:
        s, e = segment_bounds(n, sr, start, end, "f")
    except AudioError as err:
        assert start >= duration or end > duration + 0.05 or round(start * sr) >= round(end * sr) or "bad segment" in str(err)
        return
    assert 0 <= s <= e <= n
    assert start < duration and end <= duration + 0.05


def write_rows(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


labels_text = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=12).filter(str.strip)


@pytest.fixture(scope="module")
def folder_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("folder")
    names = ["a.wav", "sub/b.flac", "sub/deeper/c d,e.wav", "é.wav"]
    for i, name in enumerate(names):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / name, np.full((16000 * (i + 1), 1), 0.1, np.float32), 16000)
    return root, names


@BOUNDED
@given(data=st.data())
def test_folder_csv_rows_survive_parsing(folder_files, tmp_path, data):
    root, names = folder_files
    n = data.draw(st.integers(1, 12))
    rows = []
    for _ in range(n):
        i = data.draw(st.integers(0, len(names) - 1))
        start = data.draw(st.one_of(st.just(""), st.floats(0, i + 0.5).map(lambda x: f"{x:.4f}")))
        end = "" if start == "" else f"{float(start) + data.draw(st.floats(0.01, 0.4)):.4f}"
        rows.append((names[i], data.draw(labels_text), start, end))
    first_of_clip = {}
    for row in rows:  # the same clip (path, start, end) on two rows is an error naming both lines
        first_of_clip.setdefault((row[0], float(row[2]) if row[2] else None, float(row[3]) if row[3] else None), row)
    if len(first_of_clip) < len(rows):
        csv_path = tmp_path / f"labels{next(COUNTER)}.csv"
        write_rows(csv_path, ["path", "label", "start", "end"], rows)
        with pytest.raises(ValueError, match="listed more than once"):
            datasets.build_manifest("p", {"type": "folder", "root": str(root), "labels": str(csv_path)}, "unused")
        rows = list(first_of_clip.values())
    csv_path = tmp_path / f"labels{next(COUNTER)}.csv"
    write_rows(csv_path, ["path", "label", "start", "end"], rows)
    df = datasets.build_manifest("p", {"type": "folder", "root": str(root), "labels": str(csv_path)}, "unused")
    assert list(df["path"]) == [r[0] for r in rows]
    assert list(df["label"]) == [r[1].strip() for r in rows]
    for (_p, _l, start, end), s, e in zip(rows, df["start"], df["end"]):
        assert (math.isnan(s) if start == "" else s == pytest.approx(float(start)))
        assert (math.isnan(e) if end == "" else e == pytest.approx(float(end)))
    assert df["clip_id"].is_unique


@BOUNDED
@given(bad=st.sampled_from(["../x.wav", "/etc/passwd", "sub/../../x.wav", "C:/x.wav"]), position=st.integers(0, 3))
def test_folder_csv_escaping_paths_are_refused(folder_files, tmp_path, bad, position):
    root, names = folder_files
    rows = [(name, "k", "", "") for name in names]
    rows.insert(position, (bad, "k", "", ""))
    csv_path = tmp_path / f"labels{next(COUNTER)}.csv"
    write_rows(csv_path, ["path", "label", "start", "end"], rows)
    with pytest.raises(ValueError, match=rf"line\(s\) {position + 2}"):
        datasets.build_manifest("p", {"type": "folder", "root": str(root), "labels": str(csv_path)}, "unused")


IMV_RECORDINGS = ["20160907_Twin1_marmoset1", "20160907_Twin1_marmoset2", "20160914_Twin2_marmoset1"]


@pytest.fixture(scope="module")
def imv_root(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("imv_data")
    for rec in IMV_RECORDINGS:
        twin = rec.split("_Twin")[1][0]
        path = data_dir / "imv" / "data" / f"twin_{twin}" / f"{rec}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, np.zeros(100, np.float32), 44100)
    return data_dir


imv_rows = st.lists(st.tuples(st.sampled_from(IMV_RECORDINGS + ["20160921_Twin3_marmoset1"]),
                              st.floats(0, 600, allow_nan=False), st.floats(-1, 5, allow_nan=False),
                              st.sampled_from([str(c) for c in range(13)] + ["x", ""])), min_size=1, max_size=40)


@BOUNDED
@given(rows=imv_rows)
def test_imv_labels_keep_exactly_the_usable_calls_in_order(imv_root, rows):
    from bioprobe.datasets.imv import CALLTYPE_NAMES

    table = [(f"{rec}.wav", f"{start:.3f}", f"{start + length:.3f}", f"{length:.3f}", code, "c")
             for rec, start, length, code in rows]
    out = io.StringIO()
    csv.writer(out).writerows([("filename", "start", "end", "duration", "calltype", "caller"), *table])
    (imv_root / "imv" / "labels.csv").write_text(out.getvalue())
    usable = [(rec, float(s), float(e), CALLTYPE_NAMES[int(code)]) for (rec, *_x), (_f, s, e, _d, code, _c) in zip(rows, table)
              if code.isdigit() and int(code) <= 10 and rec in IMV_RECORDINGS and float(e) > float(s)]
    if not usable:
        with pytest.raises(ValueError, match="no usable calls"):
            datasets.build_manifest("imv", {"type": "imv"}, imv_root)
        return
    df = datasets.build_manifest("imv", {"type": "imv"}, imv_root)
    assert list(zip(df["recording"], df["start"], df["end"], df["label"])) == usable
    assert all(p.endswith(f"{rec}.wav") for p, rec in zip(df["path"], df["recording"]))


@BOUNDED
@given(rows=st.lists(st.tuples(st.integers(0, 5), labels_text), min_size=1, max_size=30))
def test_watkins_table_rows_survive_parsing(tmp_path, rows):
    data_dir = tmp_path / f"w{next(COUNTER)}"
    base = data_dir / "watkins" / "watkins"
    files = []
    for i, species in rows:
        rel = f"sp{i}/{i:08d}.wav"
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_bytes(b"")
        files.append((rel, species))
    write_rows(base / "annotations.csv", ["path", "species"], files)
    df = datasets.build_manifest("watkins", {"type": "watkins"}, data_dir)
    assert list(df["path"]) == [f"watkins/{rel}" for rel, _s in files]
    assert list(df["label"]) == [s.strip() for _r, s in files]
    assert df["start"].isna().all() and df["end"].isna().all()
