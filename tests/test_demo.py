import numpy as np
import pandas as pd
import soundfile as sf

from bioprobe.demo import make_synthetic_calls, synth_call


def test_synthetic_calls_are_varied_and_complete(tmp_path):
    labels = make_synthetic_calls(tmp_path, n_classes=3, clips_per_class=12, seed=1)
    table = pd.read_csv(labels, keep_default_na=False)
    assert list(table.columns) == ["path", "label", "group", "start", "end"]
    assert table["label"].value_counts().to_dict() == {"call_a": 12, "call_b": 12, "call_c": 12}
    rates, channels = set(), set()
    for row in table.itertuples():
        info = sf.info(tmp_path / row.path)
        rates.add(info.samplerate)
        channels.add(info.channels)
        if row.start != "":
            assert 0 < float(row.start) < float(row.end) <= info.duration + 1e-3
    assert len(rates) >= 4 and channels == {1, 2, 4}
    assert (table["start"] != "").any()


def test_classes_differ_in_pitch():
    rng = np.random.default_rng(0)
    peaks = []
    for k in range(4):
        x = synth_call(k, 1.0, 16000, rng)
        peaks.append(np.argmax(np.abs(np.fft.rfft(x))) * 16000 / len(x))
    assert np.all(np.diff(peaks) > 150)
