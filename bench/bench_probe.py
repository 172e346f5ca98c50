"""Benchmark: all layers of one model trained as one vectorised job vs one layer at a time.

The data set is synthetic but IMV-sized by default: 73,000 clips x 13 layers x 1536 dims
(mean+std pooled 768-dim features), 11 classes, a 70/20/10 split. Three ways to train the 13
layer probes, each timed from z-scoring to the last test prediction:

``vectorised``    one :func:`bioprobe.probes.fit_probe` job for all layers (what the pipeline runs);
``same_trainer``  :func:`bioprobe.probes.fit_probe` once per layer (``layers=[l]``), i.e. the very
                  same code, 13 times: this isolates what stacking the layers buys;
``conventional``  the usual way to run the study, one training per layer: StandardScaler,
                  ``nn.Sequential`` MLP, ``DataLoader(batch_size=16, shuffle=True)``,
                  ``torch.optim.Adam``, ``ReduceLROnPlateau``, validation UAR and loss every
                  epoch, the best epoch's weights kept (the study ran this recipe under
                  PyTorch Lightning, which adds its own overhead: this baseline is the leaner one).

Early stopping is off by default so all do the same number of epochs; ``--patience 10`` gives
all three the study's early stopping on validation UAR.

    python3 bench/bench_probe.py --epochs 1 --threads 2            # CPU, 1 epoch
    python3 bench/bench_probe.py --epochs 30 --device cuda          # the study's 30 epochs

Prints one JSON line with the timings and the speed-ups.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from bioprobe.probes import ProbeData, fit_probe, resolve_probe_config  # noqa: E402
from bioprobe.metrics import uar  # noqa: E402


def synthetic_features(n_clips: int, n_layers: int, dim: int, n_classes: int, seed: int):
    """Gaussian features with a weak, layer-dependent class signal; returns (X [n, L, D], y, split)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n_clips)
    features = rng.standard_normal((n_clips, n_layers, dim), dtype=np.float32)
    centres = rng.standard_normal((n_layers, n_classes, dim), dtype=np.float32)
    for layer in range(n_layers):  # in place, one layer at a time: the array is ~6 GB at IMV size
        features[:, layer, :] += (0.05 * (1 + layer % 5)) * centres[layer, labels]
    split = rng.choice(np.array(["train", "val", "test"]), n_clips, p=[0.7, 0.2, 0.1])
    return features, labels, split


def run(features, labels, split, layers: list[int], cfg: dict, device: str) -> tuple[float, list[float]]:
    """Seconds of one probe job over ``layers``, and each layer's test UAR (first seed).

    Timed from the full feature array in memory, as the other variants: a single layer's copy
    (a per-layer job would read only its layer) is inside the timing.
    """
    start = time.perf_counter()
    data = ProbeData(
        # all layers: no copy (z-scoring is in place and idempotent); one layer: its copy
        features=features if len(layers) == features.shape[1] else np.ascontiguousarray(features[:, layers, :]),
        labels=labels,
        split=split,
        clip_ids=[str(i) for i in range(labels.shape[0])],
        classes=[str(c) for c in range(int(labels.max()) + 1)],
        layer_ids=layers,
    )
    result = fit_probe(data, cfg, device)
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    y_test = labels[result.rows["test"]]
    return seconds, [uar(y_test, result.posteriors["test"][0, i].argmax(-1)) for i in range(len(layers))]


def run_conventional(features, labels, split, layer: int, cfg: dict, device: str) -> tuple[float, float]:
    """One layer's probes (every seed) trained the conventional way (see the module docstring):
    seconds, and the first seed's test UAR."""
    import copy

    import torch
    from sklearn.preprocessing import StandardScaler
    from torch import nn

    start = time.perf_counter()
    rows = {name: np.flatnonzero(split == name) for name in ("train", "val", "test")}
    scaler = StandardScaler().fit(features[rows["train"], layer, :])
    x = {name: torch.from_numpy(scaler.transform(features[idx, layer, :]).astype(np.float32)).to(device)
         for name, idx in rows.items()}
    y = {name: torch.from_numpy(labels[idx]).to(device) for name, idx in rows.items()}
    sizes = [features.shape[-1], *cfg["hidden_sizes"], int(labels.max()) + 1]
    loss_fn = nn.CrossEntropyLoss()
    test_uars = []
    for seed in cfg["seeds"]:
        torch.manual_seed(int(seed) * 1000 + layer)
        modules = []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            modules.append(nn.Linear(fan_in, fan_out))
            if i < len(sizes) - 2:
                modules += [nn.LayerNorm(fan_out), nn.ReLU()]
        net = nn.Sequential(*modules).to(device)
        optimizer = torch.optim.Adam(net.parameters(), lr=cfg["lr"])
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=cfg["lr_factor"], patience=cfg["lr_patience"]
        )
        loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(x["train"], y["train"]), batch_size=cfg["batch_size"], shuffle=True
        )
        best_uar, best_state, wait = -1.0, None, 0
        for _epoch in range(cfg["epochs"]):
            net.train()
            for xb, yb in loader:
                optimizer.zero_grad()
                loss_fn(net(xb), yb).backward()
                optimizer.step()
            net.eval()
            with torch.no_grad():
                logits = torch.cat([net(part) for part in x["val"].split(2048)])
                val_loss = loss_fn(logits, y["val"]).item()
                val_uar = uar(y["val"].cpu().numpy(), logits.argmax(1).cpu().numpy())
            scheduler.step(val_loss)
            if val_uar > best_uar:
                best_uar, best_state, wait = val_uar, copy.deepcopy(net.state_dict()), 0
            else:
                wait += 1
                if cfg["patience"] is not None and wait >= cfg["patience"]:
                    break  # early stopping on validation UAR
        net.load_state_dict(best_state)
        with torch.no_grad():
            posteriors = {name: torch.cat([net(part).softmax(1) for part in x[name].split(2048)]).cpu().numpy()
                          for name in ("val", "test")}
        test_uars.append(uar(y["test"].cpu().numpy(), posteriors["test"].argmax(-1)))
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, test_uars[0]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=73_000)
    parser.add_argument("--layers", type=int, default=13)
    parser.add_argument("--dim", type=int, default=1536)
    parser.add_argument("--classes", type=int, default=11)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--patience", type=int, default=None,
                        help="early stopping patience (default: off, so every variant runs all epochs)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--baselines", nargs="*", default=["same_trainer", "conventional"],
                        choices=["same_trainer", "conventional"], help="per-layer baselines to time (none: only the vectorised job)")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = resolve_probe_config("bench", {"type": "mlp", "epochs": args.epochs, "patience": args.patience, "seeds": args.seeds})
    features, labels, split = synthetic_features(args.clips, args.layers, args.dim, args.classes, seed=0)
    all_layers = list(range(args.layers))
    warm = slice(0, min(args.clips, 500))  # first calls pay one-off library start-up: not timed
    run(features[warm].copy(), labels[warm], split[warm], all_layers, cfg, args.device)
    if "conventional" in args.baselines:
        run_conventional(features[warm], labels[warm], split[warm], 0, cfg, args.device)
    vectorised, vectorised_uar = run(features, labels, split, all_layers, cfg, args.device)
    result = {
        "clips": args.clips, "layers": args.layers, "dim": args.dim, "classes": args.classes,
        "epochs": args.epochs, "patience": args.patience, "seeds": args.seeds, "device": args.device,
        "threads": torch.get_num_threads(),
        "vectorised_s": round(vectorised, 2),
        "vectorised_test_uar": [round(u, 3) for u in vectorised_uar],
    }
    for baseline in args.baselines:
        if baseline == "same_trainer":
            runs = [run(features, labels, split, [layer], cfg, args.device) for layer in all_layers]
            uars = [layer_uars[0] for _seconds, layer_uars in runs]
        else:
            runs = [run_conventional(features, labels, split, layer, cfg, args.device) for layer in all_layers]
            uars = [layer_uar for _seconds, layer_uar in runs]
        seconds = sum(seconds for seconds, _ in runs)
        result[f"{baseline}_per_layer_s"] = round(seconds, 2)
        result[f"speedup_vs_{baseline}"] = round(seconds / vectorised, 2)
        result[f"{baseline}_test_uar"] = [round(u, 3) for u in uars]
    result.update({"torch": torch.__version__, "cpu": platform.processor() or platform.machine()})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
