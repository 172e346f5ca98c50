"""The label-efficiency figure: the validation-best layer per k and the drawn PNG."""

import numpy as np
import pandas as pd

from bioprobe.label_efficiency_plot import best_layer_by_k, plot_label_efficiency
from bioprobe.probes.label_efficiency import COLUMNS


def synthetic_table():
    rows = []
    for model, offset in (("a", 0.0), ("b", 0.1)):
        for k, n_train in ((1, 4), (4, 16), ("all", 84)):
            for draw in range(3):
                for layer in range(3):
                    # layer 1 is best on validation at small k, layer 2 with all labels
                    val = {1: 0.6, 2: 0.5, 0: 0.3}[layer] if k != "all" else {2: 0.9, 1: 0.8, 0: 0.3}[layer]
                    test = val + offset + 0.01 * draw
                    rows.append({"dataset": "d", "model": model, "probe": "mlp", "k": k, "draw": draw, "layer": layer,
                                 "uar": test, "val_uar": val, "epoch": 3, "n_train": n_train, "n_val": 8, "n_test": 40})
        rows += [{"dataset": "d", "model": "fused", "probe": "mlp", "k": k, "draw": d, "layer": -1, "uar": 0.7, "val_uar": 0.7,
                  "epoch": 2, "n_train": n, "n_val": 8, "n_test": 40} for k, n in ((1, 4), ("all", 84)) for d in range(3)] if model == "b" else []
    return pd.DataFrame(rows, columns=COLUMNS)


def test_best_layer_is_chosen_on_validation_per_k():
    best = best_layer_by_k(synthetic_table()).set_index(["model", "k"])
    assert best.loc[("a", 1), "layer"] == 1 and best.loc[("a", "all"), "layer"] == 2
    np.testing.assert_allclose(best.loc[("b", "all"), "uar_mean"], 0.9 + 0.1 + 0.01)
    assert best.loc[("a", 4), "n_draws"] == 3 and best.loc[("fused", 1), "layer"] == -1
    np.testing.assert_allclose(best.loc[("a", 1), "uar_std"], 0.01)


def test_figure_is_drawn(tmp_path):
    out = tmp_path / "label_efficiency_d.png"
    plot_label_efficiency(synthetic_table(), "d", {"a": {"label": "Model A"}, "b": {}}, out)
    assert out.read_bytes()[:4] == b"\x89PNG" and out.stat().st_size > 10_000
