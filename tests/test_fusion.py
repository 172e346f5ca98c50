"""Fusion across models: concat_best and late_average, their definitions and errors."""

import json

import h5py
import numpy as np
import pandas as pd
import pytest

from bioprobe import fusion
from bioprobe.probes import ALL_LAYERS, best_layer, read_predictions, run_probe_job
from bioprobe.metrics import uar
from bioprobe.store import write_embeddings

N, DIM = 400, 4


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    """Four classes; model A's layer 1 tells {0,1} from {2,3}, model B's layer 2 tells {0,2} from {1,3}.

    Alone each model reaches about 50% UAR; together they separate all four classes.
    """
    root = tmp_path_factory.mktemp("fusion")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, N)
    split = rng.choice(np.array(["train", "val", "test"]), N, p=[0.6, 0.2, 0.2])
    clip_ids = [f"clip{i}" for i in range(N)]
    pd.DataFrame({"clip_id": clip_ids, "path": "x.wav", "start": "", "end": "", "label": np.array(list("abcd"))[labels],
                  "group": "g", "split": split}).to_csv(root / "manifest.csv", index=False)
    bit_a, bit_b = labels // 2, labels % 2
    a = rng.normal(size=(N, 3, DIM))
    a[:, 1, 0] += 6 * bit_a
    b = rng.normal(size=(N, 3, DIM))
    b[:, 2, 0] += 6 * bit_b
    write_embeddings(root / "a.h5", a.astype(np.float32), clip_ids, {})
    write_embeddings(root / "b.h5", b.astype(np.float32), clip_ids, {})
    probes = {"knn": {"type": "knn", "k": 15, "n_boot": 50}, "mlp": {"type": "mlp", "epochs": 6, "seeds": [1, 2], "n_boot": 50}}
    dirs = {}
    for name, cfg in probes.items():
        for model in ("a", "b"):
            dirs[(model, name)] = root / "probes" / model / name
            run_probe_job(root / f"{model}.h5", root / "manifest.csv", dirs[(model, name)], "toy", model, name, cfg, threads=1)
    return root, labels, split, probes, dirs


def test_concat_best_combines_complementary_models(two_models, tmp_path):
    root, labels, split, probes, dirs = two_models
    out = tmp_path / "concat"
    fusion.run_fusion("toy", "fused", {"method": "concat_best", "probe": "knn"}, probes["knn"], root / "manifest.csv",
                      {"a": root / "a.h5", "b": root / "b.h5"}, {"a": dirs[("a", "knn")], "b": dirs[("b", "knn")]}, out, threads=1)
    definition = json.loads((out / "definition.json").read_text())
    assert definition["best_layers"]["a"]["layer"] == 1 and definition["best_layers"]["b"]["layer"] == 2
    assert definition["input_dim"] == 2 * DIM and "does not define" in definition["note"]
    scores = pd.read_csv(out / "scores.csv")
    assert scores.model.unique().tolist() == ["fused"] and scores.layer.unique().tolist() == [ALL_LAYERS]
    fused_test = scores.query("split == 'test'").uar.iloc[0]
    single = [pd.read_csv(dirs[(m, "knn")] / "scores.csv").query("split == 'test'").uar.max() for m in ("a", "b")]
    assert max(single) < 0.7 and fused_test > 0.85


def test_concat_best_with_the_mlp_probe(two_models, tmp_path):
    root, labels, split, probes, dirs = two_models
    out = tmp_path / "concat_mlp"
    fusion.run_fusion("toy", "fused", {"method": "concat_best"}, probes["mlp"], root / "manifest.csv",
                      {"a": root / "a.h5", "b": root / "b.h5"}, {"a": dirs[("a", "mlp")], "b": dirs[("b", "mlp")]}, out, threads=1)
    scores = pd.read_csv(out / "scores.csv")
    assert sorted(scores.seed.unique()) == [1, 2] and len(scores) == 4
    assert scores.query("split == 'test'").uar.mean() > 0.8


def test_late_average_is_the_mean_of_best_layer_posteriors(two_models, tmp_path):
    root, labels, split, probes, dirs = two_models
    out = tmp_path / "late"
    fusion.run_fusion("toy", "late", {"method": "late_average", "probe": "mlp", "models": ["a", "b"]}, probes["mlp"],
                      root / "manifest.csv", {}, {"a": dirs[("a", "mlp")], "b": dirs[("b", "mlp")]}, out)
    expected = 0
    for model in ("a", "b"):
        pred = read_predictions(dirs[(model, "mlp")] / "predictions.h5")
        column = pred["layers"].index(best_layer(pd.read_csv(dirs[(model, "mlp")] / "scores.csv")))
        expected = expected + pred["test"]["posteriors"][:, column] / 2
    with h5py.File(out / "predictions.h5", "r") as h5:
        np.testing.assert_allclose(h5["test/posteriors"][:, 0], expected, atol=1e-6)
        y_true = h5["test/y_true"][:]
    scores = pd.read_csv(out / "scores.csv").query("split == 'test'").sort_values("seed")
    np.testing.assert_allclose(scores.uar, [uar(y_true, e.argmax(-1)) for e in expected])
    assert json.loads((out / "definition.json").read_text())["method"] == "late_average"


@pytest.mark.parametrize(
    "fusion_cfg, probe_name, message",
    [
        ({"method": "mean"}, "knn", "fusion.f.method"),
        ({"method": "concat_best", "models": ["a", "zebra"]}, "knn", "zebra"),
        ({"method": "concat_best", "weights": [1, 2]}, "knn", "unknown key"),
        ({"method": "concat_best", "models": ["a"]}, "knn", "at least two"),
    ],
)
def test_bad_fusion_config_is_named(two_models, tmp_path, fusion_cfg, probe_name, message):
    root, labels, split, probes, dirs = two_models
    with pytest.raises(ValueError, match=message):
        fusion.run_fusion("toy", "f", {"probe": probe_name, **fusion_cfg}, probes[probe_name], root / "manifest.csv",
                          {"a": root / "a.h5", "b": root / "b.h5"}, {"a": dirs[("a", "knn")], "b": dirs[("b", "knn")]},
                          tmp_path / "out")
    assert not (tmp_path / "out" / "scores.csv").exists()


def test_best_layers_report_their_mean_validation_uar(two_models):
    root, labels, split, probes, dirs = two_models
    chosen = fusion.choose_best_layers(["a", "b"], {"a": dirs[("a", "mlp")], "b": dirs[("b", "mlp")]})
    for model in ("a", "b"):
        scores = pd.read_csv(dirs[(model, "mlp")] / "scores.csv")
        per_layer = scores[scores.split == "val"].groupby("layer").uar.mean()
        assert chosen[model]["layer"] == per_layer.idxmax()
        assert chosen[model]["val_uar_mean"] == pytest.approx(per_layer.max())


def test_late_average_refuses_probe_jobs_with_different_seeds(two_models, tmp_path):
    import shutil

    root, labels, split, probes, dirs = two_models
    other = tmp_path / "b_other_seeds"
    shutil.copytree(dirs[("b", "mlp")], other)
    with h5py.File(other / "predictions.h5", "r+") as h5:
        h5["seeds"][...] = [1, 3]
    probe_dirs = {"a": dirs[("a", "mlp")], "b": other}
    chosen = fusion.choose_best_layers(["a", "b"], probe_dirs)
    with pytest.raises(ValueError, match=r"seeds \[1, 3\] differ from the other models' \[1, 2\]"):
        fusion.late_average_result(["a", "b"], chosen, probe_dirs, fusion.manifest_data(root / "manifest.csv"))
