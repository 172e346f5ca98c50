"""Layer-wise probes: train one classifier per layer of a model's pooled embeddings.

Probe types (``probes:`` entries of config.yaml; see docs/probes.md):

``mlp``           the study's MLP: z-scored input -> 128 -> 64 -> 32 -> C, LayerNorm + ReLU
                  after each hidden Linear, Adam 1e-3, batch 16, <= 30 epochs, early stopping on
                  validation UAR (patience 10), ReduceLROnPlateau on validation loss (0.1, 10).
``linear``        softmax regression (no hidden layer) with the same optimiser and schedule.
``weighted_sum``  SUPERB-style: a learned softmax-weighted sum of all z-scored layers feeds the
                  MLP head; one result per seed, reported as layer ``-1`` (:data:`ALL_LAYERS`).
``knn``           k-nearest neighbours per layer on z-scored features (deterministic, seed 0).

Modules, from the bottom of the import graph up:

``config``   probe types, the study's protocol, defaults and checks (:func:`resolve_probe_config`)
``data``     :class:`ProbeData` loading and alignment to the manifest, z-scoring, :class:`ProbeResult`
``mlp``      the stacked network (hand-written backward) and the stacked Adam
``knn``      the knn probe
``train``    the vectorised trainer (all layers x seeds of a job at once) and :func:`fit_probe`
``outputs``  scores/summary/confusion/history/predictions files and their readers
``job``      :func:`run_probe_job`, what the ``probe`` rule calls

This package face re-exports what the rest of bioprobe, the scripts and the benchmarks use.
"""

from .config import ALL_LAYERS, PROBE_TYPES, SPLITS, STUDY_PROTOCOL, resolve_probe_config
from .data import ProbeData, ProbeResult, class_names, load_probe_data, read_manifest
from .job import TorchSettings, resolve_device, run_probe_job
from .outputs import best_layer, read_predictions, read_scores, write_probe_outputs
from .train import fit_probe

__all__ = [
    "ALL_LAYERS",
    "PROBE_TYPES",
    "SPLITS",
    "STUDY_PROTOCOL",
    "ProbeData",
    "ProbeResult",
    "TorchSettings",
    "best_layer",
    "class_names",
    "fit_probe",
    "load_probe_data",
    "read_manifest",
    "read_predictions",
    "read_scores",
    "resolve_device",
    "resolve_probe_config",
    "run_probe_job",
    "write_probe_outputs",
]
