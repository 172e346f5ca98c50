"""Baselines run through the same per-layer protocol as the pretrained models.

* ``logmel``: log mel filterbank energies; ``mfcc``: mel cepstral coefficients. Each feature
  type is one "layer"; with ``deltas: true`` the first and second time derivatives are two more
  layers (so 1 or 3 layers). Pooling (mean + std over time) then gives the classic
  "filterbank statistics" features.
* ``random_init``: the architecture of another model (``of``) with seeded random weights: only
  its config is fetched. It tells how much of a layer's score comes from the architecture and
  the pooling alone rather than from pre-training.

Parameters (keys of the model entry, defaults in brackets): ``n_mels`` [64], ``n_mfcc`` [20],
``n_fft`` [400 = 25 ms], ``hop_length`` [160 = 10 ms], ``deltas`` [false], ``seed`` [0].
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Mapping

from ..models import resolve_architecture
from .base import SAMPLE_RATE, Encoder

FEATURE_DEFAULTS = {"n_mels": 64, "n_mfcc": 20, "n_fft": 400, "hop_length": 160, "deltas": False}
LOG_FLOOR = 1e-6  # avoids log(0) on digital silence


def feature_params(name: str, mcfg: Mapping) -> dict:
    """The baseline's parameters with defaults filled in and checked."""
    params = {key: mcfg.get(key, default) for key, default in FEATURE_DEFAULTS.items()}
    for key in ("n_mels", "n_mfcc", "n_fft", "hop_length"):
        if not isinstance(params[key], int) or params[key] < 1:
            raise ValueError(f"model {name!r}: {key} must be a positive integer, got {params[key]!r}")
    if mcfg["source"] == "mfcc" and params["n_mfcc"] > params["n_mels"]:
        raise ValueError(f"model {name!r}: n_mfcc ({params['n_mfcc']}) cannot exceed n_mels ({params['n_mels']})")
    if not isinstance(params["deltas"], bool):
        raise ValueError(f"model {name!r}: deltas must be true or false, got {params['deltas']!r}")
    return params


class FeatureEncoder(Encoder):
    """Log-mel or MFCC frames (10 ms hop by default), optionally with deltas as extra layers."""

    def __init__(self, name: str, source: str, params: dict, device):
        import torch
        import torchaudio

        self.name = name
        self.source = source
        self.params = params
        self.device = torch.device(device)
        melkwargs = dict(n_fft=params["n_fft"], hop_length=params["hop_length"], n_mels=params["n_mels"], center=True)
        if source == "logmel":
            self.transform = torchaudio.transforms.MelSpectrogram(sample_rate=SAMPLE_RATE, **melkwargs)
            self.dim = params["n_mels"]
        elif source == "mfcc":
            self.transform = torchaudio.transforms.MFCC(
                sample_rate=SAMPLE_RATE, n_mfcc=params["n_mfcc"], log_mels=True, melkwargs=melkwargs
            )
            self.dim = params["n_mfcc"]
        else:
            raise ValueError(f"model {name!r}: {source!r} is not a feature baseline (logmel, mfcc)")
        self.transform = self.transform.to(self.device)
        self.n_layers = 3 if params["deltas"] else 1
        self.hop_samples = params["hop_length"]
        self.min_input_samples = params["n_fft"] // 2 + 1  # reflect padding needs more than n_fft/2
        self.provenance = {"params": params}

    def forward(self, wave):
        """``wave [batch, samples]`` -> ``[n_layers, batch, frames, dim]``."""
        import torch
        import torchaudio

        feats = self.transform(wave.float())  # [B, dim, frames]
        if self.source == "logmel":
            feats = torch.log(feats + LOG_FLOOR)
        layers = [feats]
        if self.params["deltas"]:
            delta = torchaudio.functional.compute_deltas(feats)
            layers += [delta, torchaudio.functional.compute_deltas(delta)]
        return torch.stack(layers, dim=0).transpose(2, 3).contiguous()  # [L, B, frames, dim]


def build_feature_encoder(name: str, mcfg: Mapping, device) -> FeatureEncoder:
    return FeatureEncoder(name, mcfg["source"], feature_params(name, mcfg), device)


def state_dict_sha256(model) -> str:
    """Digest of a model's parameters and buffers (names, shapes and values), for provenance."""
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def load_random_init_encoder(name: str, mcfg: Mapping, cache_dir: Path, device, models: Mapping | None = None) -> Encoder:
    """The architecture of ``mcfg['of']`` with weights drawn from ``torch.manual_seed(seed)``."""
    from ..weights import ensure_lock, locked_file

    seed = int(mcfg.get("seed", 0))
    base = resolve_architecture(name, mcfg, models)
    lock = ensure_lock(name, mcfg, cache_dir, models)
    arch = lock["architecture"]
    if base["source"] == "huggingface":
        from .huggingface import build_hf_encoder, load_hf_model, snapshot_folder

        locked_file(lock, "config.json", cache_dir)
        folder = snapshot_folder(lock, cache_dir)
        model = load_hf_model(name, folder, random_seed=seed)
        of = {"of_id": arch["id"], "of_revision": arch.get("revision"), "of_commit": lock.get("commit")}
        provenance = {**of, "seed": seed, "weights_sha256": state_dict_sha256(model)}
        return build_hf_encoder(name, model, folder, provenance, device, source="random_init")
    import torch

    from .aves import AvesEncoder, build_aves_model, layer0_of, read_aves_config

    config_file = locked_file(lock, "config", cache_dir)
    config = read_aves_config(config_file, name)
    torch.manual_seed(seed)
    model = build_aves_model(name, config)
    provenance = {
        "of_config_url": arch["config_url"],
        "of_config_sha256": lock["files"]["config"]["sha256"],
        "seed": seed,
        "weights_sha256": state_dict_sha256(model),
    }
    return AvesEncoder(name, model, config, provenance, device, source="random_init", layer0=layer0_of(name, base))
