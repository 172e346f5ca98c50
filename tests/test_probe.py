"""Layer-wise probes: the vectorised trainer equals per-layer training, the study's network,
early stopping and LR schedule, the other probe types, and the files of a probe job."""

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from bioprobe import probe
from bioprobe.store import write_embeddings

N_CLIPS, N_LAYERS, DIM, N_CLASSES = 360, 3, 12, 4


def synthetic(seed=0, n=N_CLIPS, n_layers=N_LAYERS, dim=DIM, n_classes=N_CLASSES):
    """Layer 0 is pure noise, later layers carry a growing class signal."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    centres = rng.normal(size=(n_layers, n_classes, dim))
    strength = np.linspace(0.0, 2.0, n_layers)
    features = rng.normal(size=(n, n_layers, dim)) + strength[None, :, None] * centres[:, labels].transpose(1, 0, 2)
    split = rng.choice(np.array(["train", "val", "test"]), n, p=[0.6, 0.2, 0.2])
    return features.astype(np.float32), labels, split


def probe_data(features, labels, split, columns):
    return probe.ProbeData(
        features=np.ascontiguousarray(features[:, columns]), labels=labels, split=split,
        clip_ids=[f"c{i}" for i in range(labels.shape[0])], classes=[f"k{c}" for c in range(labels.max() + 1)],
        layer_ids=list(columns),
    )


@pytest.fixture(scope="module")
def dataset_files(tmp_path_factory):
    """A manifest and an embedding file (rows shuffled against the manifest) on disk."""
    root = tmp_path_factory.mktemp("probe_data")
    features, labels, split = synthetic()
    names = np.array(["egg", "phee", "trill", "twitter"])  # sorted, so class index = label index
    clip_ids = [f"clip{i:04d}" for i in range(N_CLIPS)]
    manifest = pd.DataFrame({"clip_id": clip_ids, "path": "a.wav", "start": "", "end": "", "label": names[labels],
                             "group": "g", "split": split})
    manifest.to_csv(root / "manifest.csv", index=False)
    order = np.random.default_rng(9).permutation(N_CLIPS)
    write_embeddings(root / "emb.h5", features[order], [clip_ids[i] for i in order], {"model": "toy"})
    return root, features, labels, split


def test_vectorised_training_equals_training_each_layer_alone():
    torch.set_num_threads(1)
    features, labels, split = synthetic()
    # small patience values so that early stopping and the LR schedule both act during the run
    cfg = probe.resolve_probe_config("mlp", {"type": "mlp", "epochs": 6, "seeds": [3, 4], "patience": 2, "lr_patience": 1})
    together = probe.fit_probe(probe_data(features, labels, split, [0, 1, 2]), cfg)
    lrs = together.extra["history"]["lr"]
    assert np.nanmin(lrs) < cfg["lr"]  # the schedule lowered some group's learning rate
    assert together.extra["epochs_run"].min() < cfg["epochs"]  # and some group stopped early
    for layer in range(N_LAYERS):
        alone = probe.fit_probe(probe_data(features, labels, split, [layer]), cfg)
        for split_name in ("val", "test"):
            np.testing.assert_allclose(together.posteriors[split_name][:, layer], alone.posteriors[split_name][:, 0], atol=1e-5)
        np.testing.assert_array_equal(together.epoch[:, layer], alone.epoch[:, 0])
        np.testing.assert_array_equal(together.extra["epochs_run"][:, layer], alone.extra["epochs_run"][:, 0])


def test_stacked_network_is_the_study_mlp():
    """One group of StackedMLP computes Linear-LayerNorm-ReLU x3 -> Linear with the same weights."""
    torch.manual_seed(0)
    net = probe.StackedMLP(in_dim=20, hidden_sizes=[128, 64, 32], n_classes=5)
    net.init([torch.Generator().manual_seed(1)], "cpu")
    reference = torch.nn.Sequential(
        torch.nn.Linear(20, 128), torch.nn.LayerNorm(128), torch.nn.ReLU(),
        torch.nn.Linear(128, 64), torch.nn.LayerNorm(64), torch.nn.ReLU(),
        torch.nn.Linear(64, 32), torch.nn.LayerNorm(32), torch.nn.ReLU(),
        torch.nn.Linear(32, 5),
    )
    tensors = iter(t.detach()[0] for t in net.tensors)
    with torch.no_grad():
        for module in reference:
            if isinstance(module, torch.nn.Linear):
                module.weight.copy_(next(tensors))  # [out, in], nn.Linear's layout
                module.bias.copy_(next(tensors))
            elif isinstance(module, torch.nn.LayerNorm):
                module.weight.copy_(next(tensors))
                module.bias.copy_(next(tensors))
        x = torch.randn(7, 20)
        np.testing.assert_allclose(net.forward(x[None])[0].numpy(), reference(x).numpy(), atol=1e-5)
    # nn.Linear's default initialisation bound 1/sqrt(fan_in)
    assert net.tensors[0].abs().max() <= 1 / np.sqrt(20)
    assert sum(t[0].numel() for t in net.tensors) == sum(p.numel() for p in reference.parameters())


@pytest.mark.parametrize("hidden, mix", [([9, 7], None), ([], None), ([6], 3)])
def test_hand_written_backward_equals_autograd(hidden, mix):
    """StackedMLP.backward gives autograd's gradients of the summed per-group mean cross-entropy."""
    torch.manual_seed(0)
    n_groups, batch, dim, n_classes = 3, 5, 8, 4
    net = probe.StackedMLP(dim, hidden, n_classes, mix_layers=mix)
    net.init([torch.Generator().manual_seed(g) for g in range(n_groups)], "cpu")
    for t in net.tensors:  # move LayerNorm/mixing parameters off their trivial initial values
        t.add_(0.1 * torch.randn_like(t))
    x = torch.randn(n_groups, batch, *((mix,) if mix else ()), dim)
    y = torch.randint(0, n_classes, (n_groups, batch))

    leaves = [t.clone().requires_grad_(True) for t in net.tensors]
    logits = net.forward(x, leaves)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, n_classes), y.reshape(-1), reduction="none")
    loss.view(n_groups, batch).mean(dim=1).sum().backward()

    saved, grads = [], [torch.full_like(t, float("nan")) for t in net.tensors]
    with torch.no_grad():
        logits = net.forward(x, saved=saved)
        d_logits = torch.softmax(logits, dim=-1) - torch.nn.functional.one_hot(y, n_classes)
        net.backward(saved, d_logits / batch, grads)
    for (name, _shape, _init), leaf, grad in zip(net.spec, leaves, grads):
        assert leaf.grad.abs().max() > 0, name
        np.testing.assert_allclose(grad.numpy(), leaf.grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)


def test_stacked_adam_equals_torch_adam_per_group():
    """Each group's update is torch.optim.Adam's with that group's own learning rate, also after
    the rates diverge and after a group is dropped."""
    torch.manual_seed(0)
    shapes = [(4, 16), (6, 5), (6,)]  # the first goes to the kernel whole for all groups
    stacked = [torch.randn(3, *shape) for shape in shapes]
    reference = [[t[g].clone().requires_grad_(True) for t in stacked] for g in range(3)]
    adam = probe.StackedAdam(stacked, np.array([1e-2, 1e-2, 1e-2]), weight_decay=0.01)
    torch_adams = [torch.optim.Adam(params, lr=1e-2, weight_decay=0.01) for params in reference]
    rows = [0, 1, 2]  # original group of each stacked row
    for step in range(8):
        if step == 3:  # a plateau lowers group 1's rate
            adam.lrs[1] = 1e-3
            torch_adams[1].param_groups[0]["lr"] = 1e-3
        if step == 5:  # group 0 stops
            stacked = adam.keep([1, 2])
            rows = [1, 2]
        for local, g in enumerate(rows):
            for buffer, param in zip(adam.grads, reference[g]):
                grad = torch.randn_like(param)
                buffer[local] = grad
                param.grad = grad.clone()
            torch_adams[g].step()
        adam.step()
        for local, g in enumerate(rows):
            for t, param in zip(stacked, reference[g]):
                np.testing.assert_allclose(t[local].numpy(), param.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_zscore_uses_train_statistics_and_centres_constant_dimensions():
    rng = np.random.default_rng(0)
    features = (rng.normal(size=(500, 3, 7)) * 4 + 250).astype(np.float32)
    features[:, 1, 2] = 3.0  # constant
    train = np.sort(rng.choice(500, 300, replace=False))
    reference = features.astype(np.float64)
    mean, std = reference[train].mean(0), reference[train].std(0)
    std[std == 0] = 1.0
    got_mean, got_std = probe.zscore_inplace(features, train, chunk=64)  # several chunks
    np.testing.assert_allclose(got_mean, mean, rtol=1e-12)
    np.testing.assert_allclose(got_std, std, rtol=1e-10)
    np.testing.assert_allclose(features, (reference - mean) / std, atol=2e-5)
    assert np.all(features[:, 1, 2] == 0.0)


def test_mlp_learns_the_informative_layers_and_evaluate_best_or_last():
    features, labels, split = synthetic()
    data = probe_data(features, labels, split, [0, 1, 2])
    ids = {"dataset": "d", "model": "m", "probe": "mlp"}
    results = {}
    for evaluate in ("best", "last"):
        cfg = probe.resolve_probe_config("mlp", {"type": "mlp", "epochs": 8, "evaluate": evaluate, "n_boot": 200})
        data = probe_data(features, labels, split, [0, 1, 2])
        result = probe.fit_probe(data, cfg)
        scores, summary, best = probe.score_tables(data, result, ids, cfg)
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
    linear = probe.fit_probe(probe_data(features, labels, split, [0, 1, 2]),
                             probe.resolve_probe_config("lin", {"type": "linear", "epochs": 8}))
    y_test = labels[linear.rows["test"]]
    from bioprobe.metrics import uar
    assert uar(y_test, linear.posteriors["test"][0, 2].argmax(-1)) > 0.9
    ws_cfg = probe.resolve_probe_config("ws", {"type": "weighted_sum", "epochs": 8, "seeds": [1, 2]})
    ws = probe.fit_probe(probe_data(features, labels, split, [0, 1, 2]), ws_cfg)
    assert ws.layers == [probe.ALL_LAYERS]
    weights = ws.extra["mix_weights"]
    assert weights.shape == (2, N_LAYERS)
    np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-6)
    assert uar(y_test, ws.posteriors["test"][0, 0].argmax(-1)) > 0.9


def test_knn_matches_sklearn_on_zscored_features():
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler

    features, labels, split = synthetic()
    cfg = probe.resolve_probe_config("knn", {"type": "knn", "k": 7})
    result = probe.fit_probe(probe_data(features, labels, split, [1, 2]), cfg)
    train, test = split == "train", split == "test"
    for column, layer in enumerate([1, 2]):
        scaler = StandardScaler().fit(features[train, layer])
        knn = KNeighborsClassifier(n_neighbors=7).fit(scaler.transform(features[train, layer]), labels[train])
        expected = knn.predict_proba(scaler.transform(features[test, layer]))
        np.testing.assert_allclose(result.posteriors["test"][0, column], expected, atol=1e-5)


def test_run_probe_job_writes_complete_outputs(dataset_files, tmp_path):
    root, features, labels, split = dataset_files
    cfg = {"type": "mlp", "epochs": 4, "seeds": [5, 6], "n_boot": 100}
    out = tmp_path / "probe"
    probe.run_probe_job(root / "emb.h5", root / "manifest.csv", out, "toyset", "toy", "mlp", cfg, threads=1)
    scores = pd.read_csv(out / "scores.csv")
    assert len(scores) == 2 * N_LAYERS * 2  # seeds x layers x (val, test)
    assert set(scores.columns) >= {"dataset", "model", "layer", "probe", "seed", "split", "uar", "epoch", "ci_low", "ci_high"}
    assert (scores.ci_low <= scores.uar).all() and (scores.uar <= scores.ci_high).all()
    assert scores.dataset.unique().tolist() == ["toyset"] and scores.probe.unique().tolist() == ["mlp"]
    n_test = int((split == "test").sum())
    with h5py.File(out / "predictions.h5", "r") as h5:
        assert [c.decode() for c in h5["classes"][:]] == ["egg", "phee", "trill", "twitter"]  # sorted labels
        assert h5["test/posteriors"].shape == (2, N_LAYERS, n_test, N_CLASSES)
        assert h5["test/y_pred"].shape == (2, N_LAYERS, n_test)
        test_ids = [c.decode() for c in h5["test/clip_id"][:]]
        best = int(h5.attrs["best_layer"])
    manifest = pd.read_csv(root / "manifest.csv")
    assert test_ids == manifest.loc[manifest.split == "test", "clip_id"].tolist()
    confusion = pd.read_csv(out / "confusion.csv")
    assert confusion["count"].sum() == 2 * n_test and confusion.layer.unique().tolist() == [best]
    summary = pd.read_csv(out / "summary.csv")
    assert summary.query("is_best").layer.unique().tolist() == [best]
    assert not list(out.glob(".*part*"))  # no temporary files left


def test_same_seed_same_result_and_embedding_order_does_not_matter(dataset_files, tmp_path):
    root, features, labels, split = dataset_files
    cfg = {"type": "mlp", "epochs": 3, "n_boot": 0}
    probe.run_probe_job(root / "emb.h5", root / "manifest.csv", tmp_path / "a", "d", "m", "mlp", cfg, threads=1)
    probe.run_probe_job(root / "emb.h5", root / "manifest.csv", tmp_path / "b", "d", "m", "mlp", cfg, threads=1)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a/scores.csv"), pd.read_csv(tmp_path / "b/scores.csv"))
    # the shuffled embedding file gives the same result as the manifest-ordered features
    direct = probe.fit_probe(probe_data(features, labels, split, [0, 1, 2]), probe.resolve_probe_config("mlp", cfg))
    with h5py.File(tmp_path / "a/predictions.h5", "r") as h5:
        posteriors = h5["test/posteriors"][:]
    np.testing.assert_allclose(posteriors, direct.posteriors["test"], atol=1e-5)


def test_mismatched_embeddings_are_named(dataset_files, tmp_path):
    root, features, labels, split = dataset_files
    write_embeddings(tmp_path / "short.h5", features[:10], [f"clip{i:04d}" for i in range(10)], {})
    with pytest.raises(ValueError, match=r"short\.h5.*have no embedding"):
        probe.run_probe_job(tmp_path / "short.h5", root / "manifest.csv", tmp_path / "out", "d", "m", "mlp", {"type": "mlp"})
    assert not (tmp_path / "out" / "scores.csv").exists()


def test_excluded_clips_are_ignored_and_extra_embeddings_allowed(dataset_files, tmp_path):
    root, features, labels, split = dataset_files
    table = pd.read_csv(root / "manifest.csv", keep_default_na=False)
    table = table.drop(columns=["path", "start", "end"])
    excluded = np.zeros(N_CLIPS, dtype=bool)
    excluded[::7] = True
    excluded |= (table["label"] == "egg").to_numpy()  # a whole class excluded (e.g. drop_codes)
    table.loc[excluded, "split"] = "excluded"
    table.loc[excluded, "label"] = "dropped code"  # an excluded clip's label is not a class
    table.to_csv(tmp_path / "split.csv", index=False)
    data = probe.load_probe_data(root / "emb.h5", tmp_path / "split.csv")  # the embeddings hold every clip
    assert data.clip_ids == [c for c, e in zip(table["clip_id"], excluded) if not e]
    assert data.classes == ["phee", "trill", "twitter"]
    np.testing.assert_array_equal(data.features, features[~excluded])
    assert set(data.split) == {"train", "val", "test"}
    # a used clip without an embedding is still an error
    write_embeddings(tmp_path / "short.h5", features[1:], [f"clip{i:04d}" for i in range(1, N_CLIPS)], {})
    table.loc[0, "split"] = "train"
    table.to_csv(tmp_path / "split.csv", index=False)
    with pytest.raises(ValueError, match=r"short\.h5: 1 clip\(s\) of the split file have no embedding.*clip0000"):
        probe.load_probe_data(tmp_path / "short.h5", tmp_path / "split.csv")


@pytest.mark.parametrize("before", [False, True])
def test_training_restores_the_callers_denormal_setting(before):
    features, labels, split = synthetic(n=60)
    torch.set_flush_denormal(before)
    try:
        assert probe.denormals_flushed() is before
        seen = []
        real = probe._train_stacked

        def spy(*args, **kwargs):
            seen.append(probe.denormals_flushed())
            return real(*args, **kwargs)

        probe._train_stacked = spy
        try:
            cfg = probe.resolve_probe_config("mlp", {"type": "mlp", "epochs": 2, "seeds": [0]})
            probe.fit_probe(probe_data(features, labels, split, [0, 1]), cfg)
        finally:
            probe._train_stacked = real
        assert seen == [True]  # flushed while training
        assert probe.denormals_flushed() is before  # and the caller's setting is back afterwards
    finally:
        torch.set_flush_denormal(False)


@pytest.mark.parametrize(
    "cfg, message",
    [
        ({"type": "mlp", "evaluate": "final"}, "probes.p.evaluate"),
        ({"type": "mlp", "dropout": 0.1}, "unknown key"),
        ({"type": "linear", "hidden_sizes": [8]}, "unknown key"),
        ({"type": "mlp", "seeds": []}, "seeds"),
        ({"type": "mlp", "lr": -1}, "probes.p.lr"),
        ({"type": "knn", "k": 0}, "probes.p.k"),
        ({"type": "svm"}, "probes.p.type"),
    ],
)
def test_bad_probe_config_is_named(cfg, message):
    with pytest.raises(ValueError, match=message):
        probe.resolve_probe_config("p", cfg)


def test_study_defaults():
    cfg = probe.resolve_probe_config("mlp", {"type": "mlp", "protocol": "study"})
    assert cfg["hidden_sizes"] == [128, 64, 32] and cfg["epochs"] == 30 and cfg["lr"] == 1e-3
    assert cfg["batch_size"] == 16 and cfg["patience"] == 10 and cfg["lr_factor"] == 0.1 and cfg["lr_patience"] == 10
    assert cfg["evaluate"] == "best" and cfg["seeds"] == [42]


def test_schema_and_code_accept_the_same_keys():
    from pathlib import Path

    import jsonschema
    import yaml

    root = Path(__file__).resolve().parents[1]
    schema = yaml.safe_load((root / "workflow/schemas/probes.schema.yaml").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    assert set(schema["properties"]) == set().union(*probe._ALLOWED_KEYS.values())
    example = {**probe._COMMON_DEFAULTS, **probe._TRAINED_DEFAULTS, **probe._KNN_DEFAULTS}
    for probe_type, keys in probe._ALLOWED_KEYS.items():
        for key in set(schema["properties"]) - {"type"}:
            entry = {"type": probe_type, key: example[key]}
            assert validator.is_valid(entry) == (key in keys), (probe_type, key)
    for name, entry in yaml.safe_load((root / "config.yaml").read_text())["probes"].items():
        validator.validate(entry)
        probe.resolve_probe_config(name, entry)


def test_layer_subset_is_read_in_the_asked_order(dataset_files, tmp_path):
    root, features, labels, split = dataset_files
    data = probe.load_probe_data(root / "emb.h5", root / "manifest.csv", layers=[2, 0])
    np.testing.assert_array_equal(data.features, features[:, [2, 0]])
    assert data.layer_ids == [2, 0]
    with pytest.raises(ValueError, match=r"emb\.h5: has 3 layers"):
        probe.load_probe_data(root / "emb.h5", root / "manifest.csv", layers=[5])


def test_non_finite_features_are_named(dataset_files, tmp_path):
    root, features, labels, split = dataset_files
    broken = features.copy()
    broken[7, 1, 3] = np.nan
    write_embeddings(tmp_path / "nan.h5", broken, [f"clip{i:04d}" for i in range(N_CLIPS)], {})
    with pytest.raises(ValueError, match=r"nan\.h5: non-finite features for 1 clip.*clip0007"):
        probe.load_probe_data(tmp_path / "nan.h5", root / "manifest.csv")


def test_a_crash_while_writing_leaves_no_scores(dataset_files, tmp_path, monkeypatch):
    root, features, labels, split = dataset_files

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(probe, "confusion_table", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        probe.run_probe_job(root / "emb.h5", root / "manifest.csv", tmp_path / "out", "d", "m", "knn", {"type": "knn"})
    assert not (tmp_path / "out" / "scores.csv").exists()
    assert not [p for p in (tmp_path / "out").iterdir() if ".part" in p.name]
