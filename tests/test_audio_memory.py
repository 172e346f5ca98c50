"""A 10-minute, 8-channel, 48 kHz recording is audited and resampled under a memory cap.

Decoded whole it would take 920 MB as float32 (460 MB as a 16-bit WAV); streamed, each step's
peak resident memory grows by far less. Measured with ru_maxrss in a fresh process per step
(bench/bench_audio.py, which the README's figures come from).
"""

from conftest import load_bench

CAP_MB = 200


def test_ten_minute_eight_channel_recording_stays_under_the_memory_cap(tmp_path):
    bench = load_bench("bench_audio")
    frames = bench.write_long_wav(tmp_path / "long.wav", 10, channels=8, rate=48000)
    assert (tmp_path / "long.wav").stat().st_size > frames * 8 * 2  # the whole 460 MB are there
    clips = tmp_path / "clips.csv"
    bench.write_clip_list(clips, "long.wav", 600)
    audit = bench.measure("audit", clips, tmp_path, tmp_path)
    assert audit["rejected"] == 0 and audit["warnings"] == 0
    resample = bench.measure("resample", clips, tmp_path, tmp_path)
    assert resample["clips"] == 11
    for step in (audit, resample):
        assert step["growth_mb"] < CAP_MB, step
    import h5py

    with h5py.File(tmp_path / "audio16k.h5") as h5:
        assert h5["offsets"][1] == 600 * 16000  # the whole recording, at 16 kHz
