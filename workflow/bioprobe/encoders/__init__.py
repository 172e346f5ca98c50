"""One interface over Hugging Face models, the torchaudio AVES port and baseline features.

Every encoder maps a batch of equal-length 16 kHz waveforms to the frame sequences of all its
layers at once::

    encoder.forward(wave)   # wave [batch, samples] float32 -> [n_layers, batch, frames, dim]

Frame ``j`` of an output starts at sample ``j * encoder.hop_samples`` of the input, which is
what chunked extraction relies on to stitch long recordings (see :mod:`bioprobe.embed`).

``load_encoder(name, mcfg, cache_dir)`` builds the encoder of one ``models:`` entry of the config.
Its ``source`` picks the implementation:

* ``huggingface``: a transformers checkpoint by repo id (+ ``revision``) or local folder
* ``aves``: the torchaudio port of AVES (``config_url`` + ``weights_url``)
* ``logmel`` / ``mfcc``: handcrafted baselines, one "layer" per feature type
* ``random_init``: the architecture of another model (``of``) with seeded random weights

A transformer model's entry may set ``max_layer: k`` (:mod:`bioprobe.encoders.truncate`).

Model entries themselves (sources, checks, ``of:`` resolution) belong to :mod:`bioprobe.models`;
the :class:`Encoder` interface lives in :mod:`bioprobe.encoders.base`. This package stays free of
torch imports at module level.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from ..models import check_source
from .base import SAMPLE_RATE, Encoder

__all__ = ["Encoder", "SAMPLE_RATE", "check_cuda_device", "load_encoder", "resolve_device"]


def resolve_device(device: str | None = "auto"):
    """``auto`` -> CUDA when available, else CPU; ``cpu`` / ``cuda`` / ``cuda:N`` as given."""
    import torch

    device = device or "auto"
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda":
        check_cuda_device(dev)
    return dev


def check_cuda_device(dev) -> None:
    """A ``RuntimeError`` naming the device unless CUDA is available and has device ``dev.index``."""
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError(f"device {str(dev)!r} requested but CUDA is not available on this machine")
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise RuntimeError(f"device {str(dev)!r} requested but this machine has {torch.cuda.device_count()} CUDA device(s)")


def load_encoder(
    name: str,
    mcfg: Mapping,
    cache_dir: str | os.PathLike,
    device="cpu",
    models: Mapping | None = None,
) -> Encoder:
    """Build the encoder of model ``name`` (its config entry ``mcfg``), in eval mode on ``device``.

    Pretrained weights are read from ``cache_dir`` through the lock written by
    :func:`bioprobe.weights.fetch_weights`, without network access; if there is no lock yet,
    the weights are fetched first (which needs network access). With ``max_layer: k`` in the
    entry, only blocks 1..k are ever run and the encoder returns layers 0..k.
    """
    encoder = _load_source(name, mcfg, Path(cache_dir), resolve_device(device) if isinstance(device, str) else device, models)
    if mcfg.get("max_layer") is not None:  # run only blocks 1..max_layer (see encoders/truncate.py)
        from .truncate import truncate_encoder

        truncate_encoder(encoder, mcfg["max_layer"])
    return encoder


def _load_source(name: str, mcfg: Mapping, cache_dir: Path, device, models: Mapping | None) -> Encoder:
    source = check_source(name, mcfg)
    if source == "huggingface":
        from .huggingface import load_hf_encoder

        return load_hf_encoder(name, mcfg, cache_dir, device)
    if source == "aves":
        from .aves import load_aves_encoder

        return load_aves_encoder(name, mcfg, cache_dir, device)
    if source in ("logmel", "mfcc"):
        from .baselines import build_feature_encoder

        return build_feature_encoder(name, mcfg, device)
    from .baselines import load_random_init_encoder

    return load_random_init_encoder(name, mcfg, cache_dir, device, models=models)
