"""What the Snakemake ``probe`` rule calls: :func:`run_probe_job` (resolve the config, load the
data, fit, write the outputs) and the per-job torch settings (:class:`TorchSettings`,
:func:`resolve_device`) that fusion jobs share."""

from __future__ import annotations

import logging
import os

from .config import SPLITS, resolve_probe_config
from .data import load_probe_data
from .outputs import write_probe_outputs
from .train import fit_probe

LOG = logging.getLogger(__name__)

class TorchSettings:
    """Threads and determinism for the duration of a job, restored afterwards."""

    def __init__(self, threads: int | None):
        self.threads = threads

    def __enter__(self):
        import torch

        self._threads = torch.get_num_threads()
        self._deterministic = torch.are_deterministic_algorithms_enabled()
        if self.threads:
            torch.set_num_threads(int(self.threads))
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
        torch.use_deterministic_algorithms(True, warn_only=True)
        return self

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self._threads)
        torch.use_deterministic_algorithms(self._deterministic)


def resolve_device(device: str | None) -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; anything else is passed to torch, a CUDA
    device only if this machine has it (else a ``RuntimeError`` naming it, before any work)."""
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if torch.device(device).type == "cuda":
        from ..encoders import check_cuda_device

        check_cuda_device(torch.device(device))
    return device


def run_probe_job(
    embeddings_h5,
    manifest_csv,
    out_dir,
    dataset: str,
    model: str,
    probe_name: str,
    probe_cfg: dict,
    threads: int | None = None,
    device: str = "cpu",
    log=None,
) -> None:
    """Train and evaluate every layer (x every seed) of one (dataset, model, probe).

    Reads ``embeddings_h5`` (``bioprobe.store`` layout) and ``manifest_csv`` (clip_id, label,
    split), writes into ``out_dir``: ``predictions.h5``, ``confusion.csv`` (best layer, test,
    summed over seeds), ``summary.csv`` (per layer mean/std over seeds + CI), ``history.csv``
    (per-epoch validation curves) and, last, ``scores.csv``. ``log`` is an optional callable
    receiving progress lines.
    """
    cfg = resolve_probe_config(probe_name, probe_cfg)
    data = load_probe_data(embeddings_h5, manifest_csv, cfg["layers"])
    ids = {"dataset": dataset, "model": model, "probe": probe_name}
    device = resolve_device(device)
    LOG.info("probe %s on %s/%s: %d clips (train %d, val %d, test %d), %d layers x %d dims, %d classes, seeds %s, device %s",
             probe_name, dataset, model, len(data.clip_ids), *(data.indices(s).shape[0] for s in SPLITS),
             data.features.shape[1], data.features.shape[2], len(data.classes), cfg["seeds"], device)
    with TorchSettings(threads):
        result = fit_probe(data, cfg, device, log)
    write_probe_outputs(out_dir, data, result, ids, cfg, extra_attrs={"probe_type": cfg["type"]})
    LOG.info("probe %s on %s/%s: wrote %s", probe_name, dataset, model, out_dir)
