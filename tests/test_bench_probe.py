"""The probe benchmark script runs, and its three variants train the same probe."""

import json

from conftest import load_bench


def test_bench_probe_reports_all_variants(capsys):
    bench = load_bench("bench_probe")
    bench.main(["--clips", "600", "--layers", "3", "--dim", "512", "--classes", "3", "--epochs", "3",
                "--threads", "1", "--seeds", "1", "2"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["seeds"] == [1, 2] and result["layers"] == 3
    for variant in ("vectorised", "same_trainer", "conventional"):
        uars = result[f"{variant}_test_uar"]
        assert len(uars) == 3 and all(0.0 <= u <= 1.0 for u in uars)
    for baseline in ("same_trainer", "conventional"):
        assert result[f"{baseline}_per_layer_s"] > 0
        ratio = result[f"{baseline}_per_layer_s"] / result["vectorised_s"]  # of the rounded times
        assert abs(result[f"speedup_vs_{baseline}"] / ratio - 1) < 0.1
    # one thread: the vectorised job and the same trainer per layer give the same probes
    assert result["vectorised_test_uar"] == result["same_trainer_test_uar"]
    # the synthetic layers carry a class signal that grows with the layer index (strength 0.05 * (1 + l % 5))
    assert result["vectorised_test_uar"][2] > max(0.7, result["vectorised_test_uar"][0])
    assert result["conventional_test_uar"][2] > 0.7
