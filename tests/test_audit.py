import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from badaudio import bad_files, make_corpus, tone
from bioprobe.audit import BadAudioError, audit_clips, failure_message, run_audit


def clip_table(rows):
    return pd.DataFrame([{"clip_id": f"c{i:03d}", "path": p, "start": np.nan if s == "" else s,
                          "end": np.nan if e == "" else e} for i, (p, s, e, _x) in enumerate(rows)])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    return root, make_corpus(root)


def test_every_kind_of_input_gets_its_verdict(corpus):
    root, rows = corpus
    clips = clip_table(rows)
    result = audit_clips(clips, root, block_frames=4096)
    rejected = {r["clip_id"]: r["reason"] for r in result.rejected}
    warned = {}
    for w in result.warnings:
        warned.setdefault(w["clip_id"], []).append(w["warning"])
    for cid, (path, _s, _e, expected) in zip(clips["clip_id"], rows):
        verdict, _, kind = expected.partition(":")
        if verdict == "ok":
            assert cid not in rejected and cid not in warned, (path, rejected.get(cid), warned.get(cid))
        elif verdict == "warn":
            assert cid not in rejected, (path, rejected[cid])
            assert len(warned.get(cid, [])) == 1 and warned[cid][0].startswith(kind), (path, warned.get(cid))
        else:
            assert rejected.get(cid, "").startswith(kind), (path, rejected.get(cid))
    assert list(result.accepted["clip_id"]) == [c for c in clips["clip_id"] if c not in rejected]
    assert set(result.bad_files()) == bad_files(rows)


def test_failure_message_names_every_bad_file_and_reason(corpus):
    root, rows = corpus
    result = audit_clips(clip_table(rows), root)
    message = failure_message(result, "mine")
    for path in bad_files(rows):
        line = next(l for l in message.splitlines() if l.strip().startswith(path + ":"))
        assert line.split(": ", 1)[1]  # a reason follows the path
    assert "on_bad_audio" in message and "odd/tone.flac" not in message


def test_run_audit_fail_and_skip(corpus, tmp_path):
    root, rows = corpus
    csv = tmp_path / "clips.csv"
    clip_table(rows).to_csv(csv, index=False)
    outs = [tmp_path / n for n in ("accepted.csv", "rejected.csv", "warnings.csv")]
    with pytest.raises(BadAudioError) as err:
        run_audit("mine", csv, root, *outs, policy="fail")
    assert all(path in str(err.value) for path in bad_files(rows))
    assert not any(p.exists() for p in outs)
    result = run_audit("mine", csv, root, *outs, policy="skip")
    rejected = pd.read_csv(outs[1])
    assert list(rejected.columns) == ["path", "clip_id", "reason"]
    assert set(rejected["path"]) == bad_files(rows)
    accepted = pd.read_csv(outs[0])
    assert len(accepted) + len(rejected) == len(rows) == result.n_clips
    assert set(accepted["clip_id"]).isdisjoint(rejected["clip_id"])
    warnings = pd.read_csv(outs[2])
    assert list(warnings.columns) == ["path", "clip_id", "warning"] and len(warnings) == 5


def test_nothing_rejected_writes_header_only(tmp_path):
    sf.write(tmp_path / "a.wav", tone(16000, 0.5), 16000)
    csv = tmp_path / "clips.csv"
    pd.DataFrame({"clip_id": ["x"], "path": ["a.wav"], "start": [""], "end": [""]}).to_csv(csv, index=False)
    outs = [tmp_path / n for n in ("accepted.csv", "rejected.csv", "warnings.csv")]
    run_audit("d", csv, tmp_path, *outs, policy="fail")
    assert outs[1].read_text().strip() == "path,clip_id,reason"
    assert outs[2].read_text().strip() == "path,clip_id,warning"
    assert pd.read_csv(outs[0])["clip_id"].tolist() == ["x"]


def test_everything_rejected_is_an_error_even_when_skipping(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"")
    csv = tmp_path / "clips.csv"
    pd.DataFrame({"clip_id": ["x"], "path": ["a.wav"]}).to_csv(csv, index=False)
    with pytest.raises(BadAudioError, match="every clip was rejected"):
        run_audit("d", csv, tmp_path, tmp_path / "a.csv", tmp_path / "r.csv", tmp_path / "w.csv", policy="skip")


def test_clip_statistics_do_not_depend_on_the_block_size(tmp_path):
    # a clip spanning many blocks, one inside one block, one across a block edge
    rec = tone(8000, 3.0, channels=2)
    rec[:, 1] *= -1.0  # channels 1.0 and -0.9: not cancelling enough to warn
    rec[12000:16000] = 0.0
    sf.write(tmp_path / "r.wav", rec, 8000, subtype="FLOAT")
    clips = pd.DataFrame({"clip_id": ["all", "quiet", "edge"], "path": ["r.wav"] * 3,
                          "start": [np.nan, 1.5, 0.9], "end": [np.nan, 2.0, 1.6]})
    results = [audit_clips(clips, tmp_path, block_frames=b) for b in (100, 4097, 1 << 16)]
    for r in results:
        assert r.rejected == []
        assert [w["clip_id"] for w in r.warnings] == ["quiet"]
        assert r.warnings[0]["warning"].startswith("silent")


def test_nan_outside_a_clip_does_not_reject_it(tmp_path):
    rec = tone(16000, 2.0)
    rec[20000:20010] = np.nan
    sf.write(tmp_path / "r.wav", rec, 16000, subtype="FLOAT")
    clips = pd.DataFrame({"clip_id": ["a", "b"], "path": ["r.wav"] * 2, "start": [0.0, 1.0], "end": [1.0, 2.0]})
    result = audit_clips(clips, tmp_path, block_frames=1000)
    assert [r["clip_id"] for r in result.rejected] == ["b"]
    assert result.rejected[0]["reason"].startswith("non-finite: 10 of 16000 frames")


def test_paths_leaving_the_root_are_an_error_whatever_the_policy(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "secret.wav"
    sf.write(outside, tone(16000, 0.5), 16000)
    (root / "link.wav").symlink_to(outside)
    for rel in ("link.wav", "../secret.wav", str(outside)):
        clips = pd.DataFrame({"clip_id": ["a"], "path": [rel]})
        with pytest.raises(ValueError, match="leaves the dataset root"):
            audit_clips(clips, root)


def test_rejected_footnote_counts_per_dataset(tmp_path):
    from bioprobe.audit import add_footnote, rejected_footnote

    (tmp_path / "a.csv").write_text("path,clip_id,reason\nx.wav,c1,unreadable: y\nx.wav,c2,unreadable: y\nz.wav,c3,non-finite: 1\n")
    (tmp_path / "b.csv").write_text("path,clip_id,reason\n")
    note = rejected_footnote({"one": tmp_path / "a.csv", "two": tmp_path / "b.csv"})
    assert note.startswith("Audio audit (on_bad_audio): one: 3 clip(s) rejected by the audit (2 file(s), listed in ")
    assert note.endswith("; two: 0 clip(s) rejected by the audit.")
    table = tmp_path / "t.md"
    table.write_text("# T\n\n| a |\n")
    add_footnote(table, note)
    assert table.read_text() == f"# T\n\n| a |\n\n{note}\n"


def test_policy_for_a_dataset():
    from bioprobe.audit import policy_for

    config = {"on_bad_audio": "skip", "datasets": {"a": {"type": "folder"}, "b": {"on_bad_audio": "fail"}}}
    assert policy_for(config, "a") == "skip" and policy_for(config, "b") == "fail"
    assert policy_for({"datasets": {"a": {}}}, "a") == "fail"


@pytest.mark.parametrize("sr", [600, 8000, 44100, 166600, 384000])
def test_the_audit_predicts_the_resampled_length_of_each_clip(tmp_path, sr):
    from bioprobe.audio import resample_manifest
    from bioprobe.store import AudioReader

    n = int(sr * 0.7) + 3
    sf.write(tmp_path / "r.wav", tone(sr, n / sr), sr, subtype="FLOAT")
    starts = [0.0, 0.1234, 0.3, 0.69]
    clips = pd.DataFrame({"clip_id": [f"c{i}" for i in range(5)], "path": ["r.wav"] * 5,
                          "start": starts + [np.nan], "end": [0.0004, 0.5, 0.3001, 0.75, np.nan]})
    result = audit_clips(clips, tmp_path)
    rejected = {r["clip_id"] for r in result.rejected}
    result.accepted.to_csv(tmp_path / "a.csv", index=False)
    resample_manifest(tmp_path / "a.csv", tmp_path, tmp_path / "a.h5", progress=False)
    with AudioReader(tmp_path / "a.h5") as r:
        got = dict(zip(r.clip_ids, r.lengths.tolist()))
    for warning in result.warnings:
        if warning["warning"].startswith("shorter"):
            assert f" {got[warning['clip_id']]} samples at 16000 Hz" in warning["warning"]
    assert set(got) | rejected == set(clips["clip_id"]) and all(v > 0 for v in got.values())


# --- mutation pass 2 ---------------------------------------------------------------------------


def _audit_one(tmp_path, wave, sr, sample_rate=16000, block_frames=1 << 16, **kw):
    sf.write(tmp_path / "x.wav", wave, sr, subtype="FLOAT", **kw)
    clips = pd.DataFrame({"clip_id": ["x"], "path": ["x.wav"]})
    return audit_clips(clips, tmp_path, sample_rate=sample_rate, block_frames=block_frames)


def test_non_finite_counts_frames_not_samples(tmp_path):
    rec = tone(16000, 1.0, channels=2)
    rec[100:110, :] = np.nan  # 10 frames, 20 samples
    rec[200:205, 1] = np.inf  # 5 more frames, one channel
    result = _audit_one(tmp_path, rec, 16000)
    assert result.rejected[0]["reason"].startswith("non-finite: 15 of 16000 frames")


def test_slow_variation_is_not_dc_whatever_the_block_size(tmp_path):
    # 0.25 + 0.05 sin(2 pi t): an AC rms of 0.035 (-29 dBFS), but within 100 frames it barely moves
    t = np.arange(16000) / 16000
    wave = (0.25 + 0.05 * np.sin(2 * np.pi * t)).astype(np.float32)[:, None]
    for block in (100, 4096, 1 << 16):
        assert _audit_one(tmp_path, wave, 16000, block_frames=block).warnings == [], block


def test_negative_only_audio_is_not_silent(tmp_path):
    wave = (-0.5 * np.abs(np.sin(2 * np.pi * 440 * np.arange(8000) / 16000))).astype(np.float32)[:, None]
    result = _audit_one(tmp_path, wave, 16000)
    assert result.rejected == [] and result.warnings == []


def test_receptive_field_is_400_samples_at_16k_and_scales_with_the_rate(tmp_path):
    def warned(n, sample_rate):
        result = _audit_one(tmp_path, tone(sample_rate, n / sample_rate), sample_rate, sample_rate=sample_rate)
        return [w["warning"] for w in result.warnings]

    assert warned(400, 16000) == []  # exactly one frame of the model: enough
    assert warned(399, 16000) == ["shorter than the receptive field: 399 samples at 16000 Hz, a model frame is 400; "
                                  "repeat-padded to embed.min_samples"]
    assert warned(200, 8000) == []  # 25 ms at 8 kHz
    assert warned(199, 8000)[0].startswith("shorter than the receptive field: 199 samples at 8000 Hz, a model frame is 200")


def test_one_warning_per_clip_the_first_that_applies(tmp_path):
    left = tone(16000, 0.5, amp=1e-4)[:, 0]
    result = _audit_one(tmp_path, np.stack([left, -left], axis=1), 16000)  # near-silent and cancelling
    assert [w["warning"].split(":")[0] for w in result.warnings] == ["near-silent"]


@pytest.mark.parametrize("fmt", ["WAV", "AIFF", "AU", "W64", "RF64"])
def test_truncated_files_of_every_sized_format_are_rejected(tmp_path, fmt):
    # libsndfile opens these with the frames that are left; only its header log tells the file was cut
    for name, keep in (("whole", 1.0), ("cut", 0.5)):
        sf.write(tmp_path / f"{name}.snd", tone(16000, 1.0, channels=2), 16000, format=fmt, subtype="PCM_16")
        data = (tmp_path / f"{name}.snd").read_bytes()
        (tmp_path / f"{name}.snd").write_bytes(data[: int(len(data) * keep)])
    clips = pd.DataFrame({"clip_id": ["whole", "cut"], "path": ["whole.snd", "cut.snd"]})
    result = audit_clips(clips, tmp_path)
    assert list(result.accepted["clip_id"]) == ["whole"] and result.warnings == []
    assert [r["clip_id"] for r in result.rejected] == ["cut"]
    assert result.rejected[0]["reason"].startswith("truncated: the header declares ")


def test_a_bad_file_is_named_once_with_each_reason_once(tmp_path):
    sf.write(tmp_path / "ok.wav", tone(16000, 0.5), 16000)
    clips = pd.DataFrame({"clip_id": ["a", "b", "c"], "path": ["gone.wav", "gone.wav", "ok.wav"]})
    result = audit_clips(clips, tmp_path)
    assert result.bad_files() == {"gone.wav": ["missing: no such file"]}
    assert failure_message(result, "d").count("gone.wav") == 1
