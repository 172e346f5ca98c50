"""Benchmark: all layers of one model trained as one vectorised job vs one layer at a time.

The data set is synthetic but IMV-sized by default: 73,000 clips x 13 layers x 1536 dims
(mean+std pooled 768-dim features), 11 classes, a 70/20/10 split. Both variants run the very
same code (:func:`bioprobe.probe.fit_probe`); the sequential one calls it once per layer with
``layers=[l]``, exactly as a per-layer job would. Early stopping is switched off so both do
the same number of epochs.

    python3 bench/bench_probe.py --epochs 1 --threads 2            # CPU, 1 epoch
    python3 bench/bench_probe.py --epochs 30 --device cuda          # the study's 30 epochs

Prints one JSON line with the timings and the speed-up.
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

from bioprobe import probe  # noqa: E402


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


def run(features, labels, split, layers: list[int], cfg: dict, device: str) -> float:
    data = probe.ProbeData(
        # all layers: no copy (z-scoring is in place and idempotent); one layer: a small copy
        features=features if len(layers) == features.shape[1] else np.ascontiguousarray(features[:, layers, :]),
        labels=labels,
        split=split,
        clip_ids=[str(i) for i in range(labels.shape[0])],
        classes=[str(c) for c in range(int(labels.max()) + 1)],
        layer_ids=layers,
    )
    start = time.perf_counter()
    probe.fit_probe(data, cfg, device)
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=73_000)
    parser.add_argument("--layers", type=int, default=13)
    parser.add_argument("--dim", type=int, default=1536)
    parser.add_argument("--classes", type=int, default=11)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-sequential", action="store_true", help="time only the vectorised job")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = probe.resolve_probe_config("bench", {"type": "mlp", "epochs": args.epochs, "patience": None, "seeds": args.seeds})
    features, labels, split = synthetic_features(args.clips, args.layers, args.dim, args.classes, seed=0)
    all_layers = list(range(args.layers))
    vectorised = run(features, labels, split, all_layers, cfg, args.device)
    sequential = None
    if not args.skip_sequential:
        sequential = sum(run(features, labels, split, [layer], cfg, args.device) for layer in all_layers)
    print(json.dumps({
        "clips": args.clips, "layers": args.layers, "dim": args.dim, "classes": args.classes,
        "epochs": args.epochs, "seeds": args.seeds, "device": args.device, "threads": torch.get_num_threads(),
        "vectorised_s": round(vectorised, 2),
        "sequential_s": None if sequential is None else round(sequential, 2),
        "speedup": None if sequential is None else round(sequential / vectorised, 2),
        "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
    }))


if __name__ == "__main__":
    main()
