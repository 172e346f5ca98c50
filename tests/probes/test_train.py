"""The vectorised trainer: equal to training each layer alone, learns the informative layers,
evaluates the best or last epoch, and the linear and weighted-sum probes."""

import numpy as np
import pytest
import torch

from bioprobe.probes.config import ALL_LAYERS, resolve_probe_config
from bioprobe.probes.outputs import score_tables
from bioprobe.probes.train import fit_probe

from .toy import N_LAYERS, probe_data, synthetic


def test_vectorised_training_equals_training_each_layer_alone():
    torch.set_num_threads(1)
    features, labels, split = synthetic()
    # small patience values so that early stopping and the LR schedule both act during the run
    cfg = resolve_probe_config("mlp", {"type": "mlp", "epochs": 6, "seeds": [3, 4], "patience": 2, "lr_patience": 1})
    together = fit_probe(probe_data(features, labels, split, [0, 1, 2]), cfg)
    lrs = together.extra["history"]["lr"]
    assert np.nanmin(lrs) < cfg["lr"]  # the schedule lowered some group's learning rate
    assert together.extra["epochs_run"].min() < cfg["epochs"]  # and some group stopped early
    for layer in range(N_LAYERS):
        alone = fit_probe(probe_data(features, labels, split, [layer]), cfg)
        for split_name in ("val", "test"):
            np.testing.assert_allclose(together.posteriors[split_name][:, layer], alone.posteriors[split_name][:, 0], atol=1e-5)
        np.testing.assert_array_equal(together.epoch[:, layer], alone.epoch[:, 0])
        np.testing.assert_array_equal(together.extra["epochs_run"][:, layer], alone.extra["epochs_run"][:, 0])


def test_mlp_learns_the_informative_layers_and_evaluate_best_or_last():
    features, labels, split = synthetic()
    data = probe_data(features, labels, split, [0, 1, 2])
    ids = {"dataset": "d", "model": "m", "probe": "mlp"}
    results = {}
    for evaluate in ("best", "last"):
        cfg = resolve_probe_config("mlp", {"type": "mlp", "epochs": 8, "evaluate": evaluate, "n_boot": 200})
        data = probe_data(features, labels, split, [0, 1, 2])
        result = fit_probe(data, cfg)
        scores, summary, best = score_tables(data, result, ids, cfg)
        results[evaluate] = (result, scores)
        test = scores[scores.split == "test"].set_index("layer")["uar"]
        assert test[0] < 0.45  # noise layer: near chance (0.25)
        assert test[2] > 0.9  # strongest layer
        assert best == 2 or summary.query("split == 'val'").uar_mean.iloc[best] == summary.query("split == 'val'").uar_mean.max()
        history = result.extra["history"]["val_uar"]  # [epochs, layers]
        val = scores[scores.split == "val"].set_index("layer")["uar"]
        if evaluate == "best":
            np.testing.assert_allclose(val.to_numpy(), np.nanmax(history, axis=0), atol=1e-12)
            np.testing.assert_array_equal(result.epoch[0], np.nanargmax(history, axis=0) + 1)
        else:
            last = history[result.extra["epochs_run"][0] - 1, np.arange(N_LAYERS)]
            np.testing.assert_allclose(val.to_numpy(), last, atol=1e-12)
            np.testing.assert_array_equal(result.epoch[0], result.extra["epochs_run"][0])


def test_linear_and_weighted_sum_probes():
    features, labels, split = synthetic()
    linear = fit_probe(probe_data(features, labels, split, [0, 1, 2]),
                             resolve_probe_config("lin", {"type": "linear", "epochs": 8}))
    y_test = labels[linear.rows["test"]]
    from bioprobe.metrics import uar
    assert uar(y_test, linear.posteriors["test"][0, 2].argmax(-1)) > 0.9
    ws_cfg = resolve_probe_config("ws", {"type": "weighted_sum", "epochs": 8, "seeds": [1, 2]})
    ws = fit_probe(probe_data(features, labels, split, [0, 1, 2]), ws_cfg)
    assert ws.layers == [ALL_LAYERS]
    weights = ws.extra["mix_weights"]
    assert weights.shape == (2, N_LAYERS)
    np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-6)
    assert uar(y_test, ws.posteriors["test"][0, 0].argmax(-1)) > 0.9


@pytest.mark.parametrize("before", [False, True])
def test_training_restores_the_callers_denormal_setting(before):
    from bioprobe.probes.train import denormals_flushed

    features, labels, split = synthetic(n=60)
    seen = []
    torch.set_flush_denormal(before)
    try:
        assert denormals_flushed() is before
        cfg = resolve_probe_config("mlp", {"type": "mlp", "epochs": 2, "seeds": [0]})
        fit_probe(probe_data(features, labels, split, [0, 1]), cfg, log=lambda _msg: seen.append(denormals_flushed()))
        assert seen and all(seen)  # flushed while training (the trainer logs every epoch)
        assert denormals_flushed() is before  # and the caller's setting is back afterwards
    finally:
        torch.set_flush_denormal(False)


def test_early_stopping_and_lr_schedule_follow_their_reference_semantics():
    """Stop once validation UAR has not improved for ``patience`` epochs (Lightning's EarlyStopping,
    mode max); lower the LR as torch's ReduceLROnPlateau does on the validation loss."""
    torch.set_num_threads(1)
    features, labels, split = synthetic(n=160)
    cfg = resolve_probe_config("mlp", {"type": "mlp", "epochs": 10, "seeds": [3, 4], "patience": 3, "lr_patience": 1,
                                       "lr_factor": 0.5})
    result = fit_probe(probe_data(features, labels, split, [0, 1, 2]), cfg)
    history = result.extra["history"]
    epochs_run = result.extra["epochs_run"].reshape(-1)
    assert epochs_run.min() < cfg["epochs"]  # some group stopped early
    for g in range(history["val_uar"].shape[1]):
        uar = history["val_uar"][:, g]
        best, wait, stop = -np.inf, 0, cfg["epochs"]
        for epoch, value in enumerate(uar[: epochs_run[g]]):
            if value > best:
                best, wait = value, 0
            else:
                wait += 1
            if wait >= cfg["patience"]:
                stop = epoch + 1
                break
        assert epochs_run[g] == stop, g
        assert np.isnan(uar[stop:]).all()
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg["lr"])
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=cfg["lr_factor"],
                                                               patience=cfg["lr_patience"])
        for epoch in range(stop):
            assert history["lr"][epoch, g] == pytest.approx(optimizer.param_groups[0]["lr"]), (g, epoch)
            scheduler.step(history["val_loss"][epoch, g])
    assert np.nanmin(history["lr"]) < cfg["lr"]  # the schedule acted


def test_uar_per_group_equals_sklearn_macro_recall():
    import warnings

    from sklearn.metrics import recall_score

    from bioprobe.probes.train import uar_per_group

    rng = np.random.default_rng(4)
    y_true = rng.integers(0, 4, (5, 30))
    y_true[:, 0] = 0
    y_pred = np.where(rng.random((5, 30)) < 0.5, y_true, rng.integers(0, 5, (5, 30)))  # class 4 never true
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected_own = [recall_score(y_true[g], y_pred[g], average="macro") for g in range(5)]
        expected_shared = [recall_score(y_true[0], y_pred[g], average="macro") for g in range(5)]
    np.testing.assert_allclose(uar_per_group(y_true, y_pred, 5), expected_own, atol=1e-12)
    np.testing.assert_allclose(uar_per_group(y_true[0], y_pred, 5), expected_shared, atol=1e-12)
