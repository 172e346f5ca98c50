"""Benchmark: the cost of the label-efficiency job relative to one normal probe job.

Same synthetic data as ``bench_probe.py`` (Watkins size by default: 1,697 clips x 13 layers x
1536 dims, 32 classes, 70/20/10 split). Times, in one process and interleaved:

``probe``             one normal probe job (:func:`bioprobe.probes.fit_probe`, all 13 layers, the
                      study's protocol: 30 epochs, early stopping with patience 10), ``--seeds`` seeds;
``label_efficiency``  :func:`bioprobe.probes.label_efficiency.fit_label_efficiency` on the same
                      data: every k of ``--k`` x ``--draws`` draws x 13 layers.

    python3 bench/bench_label_efficiency.py --threads 2
    python3 bench/bench_label_efficiency.py --clips 73000 --classes 11 --device cuda   # IMV size

Prints one JSON line with both times and their ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_probe import synthetic_features  # noqa: E402

from bioprobe.probes import ProbeData, fit_probe, resolve_probe_config  # noqa: E402
from bioprobe.probes.label_efficiency import fit_label_efficiency, resolve_label_efficiency_config  # noqa: E402


def data_of(features, labels, split) -> ProbeData:
    return ProbeData(features=features.copy(), labels=labels, split=split, clip_ids=[str(i) for i in range(labels.size)],
                     classes=[str(c) for c in range(labels.max() + 1)], layer_ids=list(range(features.shape[1])))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=1697)
    parser.add_argument("--classes", type=int, default=32)
    parser.add_argument("--layers", type=int, default=13)
    parser.add_argument("--dim", type=int, default=1536)
    parser.add_argument("--seeds", type=int, default=1, help="seeds of the normal probe job")
    parser.add_argument("--k", nargs="+", default=["1", "2", "4", "8", "16", "32", "64", "all"])
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--validation", default="proportional", choices=["proportional", "full"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    features, labels, split = synthetic_features(args.clips, args.layers, args.dim, args.classes, seed=0)
    cfg = resolve_probe_config("mlp", {"type": "mlp", "seeds": list(range(42, 42 + args.seeds)), "n_boot": 0})
    le = resolve_label_efficiency_config({"k": [k if k == "all" else int(k) for k in args.k], "draws": args.draws,
                                          "validation": args.validation})
    start = time.perf_counter()
    fit_probe(data_of(features, labels, split), cfg, args.device)
    probe_s = time.perf_counter() - start
    start = time.perf_counter()
    rows = fit_label_efficiency(data_of(features, labels, split), cfg, le, args.device)
    le_s = time.perf_counter() - start
    by_k = {}
    for r in rows:
        by_k.setdefault(str(r["k"]), []).append(r["uar"])
    print(json.dumps({
        "clips": args.clips, "classes": args.classes, "layers": args.layers, "dim": args.dim, "device": args.device,
        "threads": args.threads, "probe_seeds": args.seeds, "k": args.k, "draws": args.draws, "validation": args.validation,
        "probe_job_seconds": round(probe_s, 1), "label_efficiency_seconds": round(le_s, 1),
        "label_efficiency_over_probe_job": round(le_s / probe_s, 2),
        "mean_test_uar_by_k": {k: round(float(np.mean(v)), 4) for k, v in by_k.items()},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
