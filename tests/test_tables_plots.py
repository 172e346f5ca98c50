import numpy as np
import pandas as pd
import pytest

from bioprobe.figures.make import write_tables
from bioprobe.tables import best_layers, read_scores


def fake_scores(dataset="imv", model="hubert", probe="mlp", n_layers=4, seeds=(1, 2), val_best=2, test_best=3):
    rows = []
    for seed in seeds:
        for layer in range(n_layers):
            rows.append((dataset, model, layer, probe, seed, "val", 0.5 + 0.1 * (layer == val_best) + 0.01 * seed))
            rows.append((dataset, model, layer, probe, seed, "test", 0.4 + 0.2 * (layer == test_best) + 0.1 * (layer == val_best) + 0.02 * seed))
    return pd.DataFrame(rows, columns=["dataset", "model", "layer", "probe", "seed", "split", "uar"])


def test_best_layer_chosen_on_validation_and_test_best_reported():
    best = best_layers(fake_scores())
    assert len(best) == 1
    row = best.iloc[0]
    assert row.best_layer == 2  # validation decides, not test
    assert row.test_uar == pytest.approx(0.5 + 0.03)  # mean over seeds 1, 2 of 0.4 + 0.1 + 0.02 * seed
    assert row.test_uar_std == pytest.approx(np.std([0.52, 0.54], ddof=1))
    assert row.test_best_layer == 3 and row.test_best_uar == pytest.approx(0.63)
    assert row.n_seeds == 2


def test_ties_go_to_the_earlier_layer():
    scores = fake_scores()
    scores.loc[scores["split"] == "val", "uar"] = 0.7
    assert best_layers(scores).iloc[0].best_layer == 0


def test_write_tables_with_published_numbers(tmp_path):
    a = tmp_path / "a.csv"
    fake_scores(model="hubert").to_csv(a, index=False)
    b = tmp_path / "b.csv"
    fake_scores(model="concat_best", n_layers=1, val_best=0, test_best=0).to_csv(b, index=False)
    best = write_tables(
        [a], [b], {"hubert": {"label": "HuBERT", "group": "PT"}}, {"concat_best": {"method": "concat_best"}}, {"imv": "imv"},
        tmp_path / "best.csv", tmp_path / "best.md", tmp_path / "all.csv",
    )
    assert set(best["label"]) == {"HuBERT", "Fusion (concat_best)"}
    assert best.set_index("model")["group"].to_dict() == {"hubert": "PT", "concat_best": "fusion"}
    assert best.set_index("model").loc["hubert", "published_uar"] == pytest.approx(64.35)
    assert best.set_index("model").loc["concat_best", "published_uar"] == pytest.approx(62.48)
    md = (tmp_path / "best.md").read_text()
    assert "| HuBERT | 53.00 ± 1.41 (2) | 64.35 |" in md
    assert md.index("| HuBERT") < md.index("| Fusion (concat_best)")  # models first, in config order
    assert list(best["model"]) == ["hubert", "concat_best"]
    assert len(pd.read_csv(tmp_path / "all.csv")) == len(fake_scores()) + len(fake_scores(n_layers=1))


def test_read_scores_names_a_bad_file(tmp_path):
    bad = tmp_path / "scores.csv"
    pd.DataFrame({"uar": [0.5]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="scores.csv: scores file lacks columns"):
        read_scores([bad])


def test_seed_mean_ci_taken_from_summary(tmp_path):
    probe_dir = tmp_path / "probes" / "hubert" / "mlp"
    probe_dir.mkdir(parents=True)
    scores = fake_scores()
    scores["ci_low"], scores["ci_high"] = 0.0, 1.0  # per-seed CIs: not what the table shows
    scores.to_csv(probe_dir / "scores.csv", index=False)
    summary = scores.groupby(["dataset", "model", "probe", "layer", "split"], as_index=False)["uar"].mean()
    summary["ci_low"], summary["ci_high"] = summary["uar"] - 0.05, summary["uar"] + 0.05
    summary.to_csv(probe_dir / "summary.csv", index=False)
    best = write_tables([probe_dir / "scores.csv"], [], {"hubert": {}}, {}, {"imv": "imv"},
                        tmp_path / "b.csv", tmp_path / "b.md", tmp_path / "a.csv")
    row = best.iloc[0]
    assert row.test_ci_low == pytest.approx(row.test_uar - 0.05) and row.test_ci_high == pytest.approx(row.test_uar + 0.05)
    md = (tmp_path / "b.md").read_text()
    assert "[48.0, 58.0] (2) |" in md


def test_layer_labels():
    from bioprobe.tables import layer_label

    assert [layer_label(x) for x in (0, 1, 12, -1)] == ["CNN", "1", "12", "all"]
    assert layer_label(0, handcrafted=True) == "features 0"


def test_no_published_column_for_other_datasets(tmp_path):
    a = tmp_path / "a.csv"
    fake_scores(dataset="mycalls").to_csv(a, index=False)
    write_tables([a], [], {"hubert": {"label": "HuBERT"}}, {}, {"mycalls": "folder"}, tmp_path / "b.csv", tmp_path / "b.md", tmp_path / "c.csv")
    md = (tmp_path / "b.md").read_text()
    assert "| Model | mycalls |" in md and "published |" not in md


def test_one_seed_has_zero_spread_not_nan(tmp_path):
    a = tmp_path / "a.csv"
    fake_scores(seeds=(1,)).to_csv(a, index=False)
    best = write_tables([a], [], {"hubert": {"label": "HuBERT"}}, {}, {"imv": "imv"},
                        tmp_path / "b.csv", tmp_path / "b.md", tmp_path / "c.csv")
    assert best.iloc[0].test_uar_std == 0.0 and best.iloc[0].n_seeds == 1
    # val-best layer 2, seed 1: 0.4 + 0.1 + 0.02 = 52 %
    assert "| HuBERT | 52.00 ± 0.00 (2) | 64.35 |" in (tmp_path / "b.md").read_text()


def test_seed_mean_decides_the_layer_and_is_reported():
    # layer 0: val over three seeds 0.5, 0.5, 0.95 (mean 0.65, median 0.5); layer 1: 0.6 each (mean = median 0.6)
    val = {0: [0.5, 0.5, 0.95], 1: [0.6, 0.6, 0.6]}
    test = {0: [0.4, 0.5, 0.9], 1: [0.7, 0.7, 0.7]}
    rows = [("d", "m", layer, "mlp", seed, split, uars[layer][i])
            for split, uars in (("val", val), ("test", test)) for layer in (0, 1) for i, seed in enumerate((1, 2, 3))]
    best = best_layers(pd.DataFrame(rows, columns=["dataset", "model", "layer", "probe", "seed", "split", "uar"])).iloc[0]
    assert best.best_layer == 0 and best.val_uar == pytest.approx(0.65)  # the mean picks layer 0, a median layer 1
    assert best.test_uar == pytest.approx(0.6) and best.test_uar_std == pytest.approx(0.26457513, rel=1e-6)
    assert best.test_best_layer == 1 and best.test_best_uar == pytest.approx(0.7)


def test_handcrafted_models_name_their_feature_set(tmp_path):
    a = tmp_path / "a.csv"
    fake_scores(model="logmel", n_layers=2, val_best=1, test_best=0).to_csv(a, index=False)
    outs = {k: tmp_path / f"cmp.{k}" for k in ("csv", "md", "tex")}
    write_tables([a], [], {"logmel": {"source": "logmel", "label": "log-mel"}}, {}, {"mine": "folder", "imv": "imv"},
                 tmp_path / "b.csv", tmp_path / "b.md", tmp_path / "c.csv", comparison=outs)
    # feature set 1 chosen on validation: not "layer 1", and never "CNN" for feature set 0
    assert "(features 1) |" in (tmp_path / "b.md").read_text()
    assert pd.read_csv(outs["csv"])["layer_label"].tolist() == ["features 1"]
    assert "(features 1)" in outs["md"].read_text()
