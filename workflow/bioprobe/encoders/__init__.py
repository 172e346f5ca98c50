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

This module stays free of torch imports at module level: the Snakefile imports it cheaply.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

MODEL_SOURCES: tuple[str, ...] = ("huggingface", "aves", "logmel", "mfcc", "random_init")
PRETRAINED_SOURCES: tuple[str, ...] = ("huggingface", "aves")
SAMPLE_RATE = 16000


class Encoder:
    """Common interface of all encoders (subclasses set the attributes in ``__init__``).

    Attributes:
        name: the model's name in the config (``hubert``, ``aves_bio``, ...).
        source: one of :data:`MODEL_SOURCES`.
        n_layers: number of layers returned by :meth:`forward` (13 for base models: index 0 is
            the transformer input, 1..12 the transformer layers).
        dim: feature size of every layer.
        hop_samples: input samples between consecutive output frames (320 for wav2vec2-style).
        min_input_samples: shortest input that yields at least one frame.
        provenance: what identifies the weights (id, revision, resolved commit, sha256s, seed).
        device: the torch device the encoder runs on.
        standardize_input: whether the embed step standardises each clip (zero mean, unit
            variance) before :meth:`forward`, because the checkpoint declares it (``do_normalize``).
    """

    name: str
    source: str
    n_layers: int
    dim: int
    hop_samples: int
    min_input_samples: int
    sample_rate: int = SAMPLE_RATE
    provenance: dict
    device: object = "cpu"
    standardize_input: bool = False

    def forward(self, wave):
        """``wave [batch, samples]`` float32 tensor on ``self.device`` -> ``[n_layers, batch, frames, dim]``."""
        raise NotImplementedError

    def __call__(self, wave):
        return self.forward(wave)

    def describe(self) -> dict:
        """Attributes recorded in the embedding file."""
        return {
            "model": self.name,
            "source": self.source,
            "n_layers": self.n_layers,
            "dim": self.dim,
            "hop_samples": self.hop_samples,
            "standardize_input": bool(self.standardize_input),
            **{k: v for k, v in self.provenance.items() if k not in ("name", "source")},
        }


def check_source(name: str, mcfg: Mapping) -> str:
    """Return ``mcfg['source']`` or raise a clear error if it is missing or not supported."""
    if not isinstance(mcfg, Mapping):
        raise ValueError(f"model {name!r}: its config entry must be a mapping, got {type(mcfg).__name__}")
    source = mcfg.get("source")
    if source not in MODEL_SOURCES:
        raise ValueError(
            f"model {name!r}: unknown source {source!r}; supported sources are {', '.join(MODEL_SOURCES)}"
        )
    required = {"huggingface": ("id",), "aves": ("config_url", "weights_url"), "random_init": ("of",)}
    for key in required.get(source, ()):
        if not mcfg.get(key):
            raise ValueError(f"model {name!r} (source {source}): missing required key {key!r}")
    return source


def is_local_path(ref: str) -> bool:
    """True if a model reference (``id``, URL) points to the local file system."""
    ref = str(ref)
    if ref.startswith("file://"):
        return True
    if "://" in ref:
        return False
    return ref.startswith(("/", "./", "../", "~")) or os.path.exists(os.path.expanduser(ref))


def resolve_architecture(name: str, mcfg: Mapping, models: Mapping | None = None) -> dict:
    """For a ``random_init`` entry, the entry of the model whose architecture it copies.

    ``of`` may name another entry of ``models`` (``of: hubert``), be a full entry (a mapping),
    a Hugging Face repo id or a local model folder.
    """
    of = mcfg.get("of")
    if isinstance(of, Mapping):
        base = dict(of)
    elif isinstance(of, str) and models is not None and of in models:
        base = dict(models[of])
    elif isinstance(of, str) and of:
        if "/" not in of and not is_local_path(of):
            raise ValueError(
                f"model {name!r}: random_init of={of!r} is neither a model under models: "
                f"{'(pass the models: section) ' if models is None else ''}nor a Hugging Face id (org/name) nor a folder"
            )
        base = {"source": "huggingface", "id": of, "revision": mcfg.get("revision", "main")}
    else:
        raise ValueError(f"model {name!r}: random_init needs `of` (a model name, Hugging Face id or folder)")
    if base.get("source") not in PRETRAINED_SOURCES:
        raise ValueError(
            f"model {name!r}: random_init `of` must be a huggingface or aves model, got source {base.get('source')!r}"
        )
    return base


DESCRIPTIVE_KEYS = ("label", "group", "base", "enabled")


def resolve_model_entry(name: str, models: Mapping) -> dict:
    """Model ``name``'s entry, self-contained: a ``random_init``'s ``of: <model name>`` is inlined.

    Lets the workflow pass one entry to :func:`bioprobe.weights.fetch_weights`,
    :func:`load_encoder` and :func:`bioprobe.embed.embed_dataset` without the whole
    ``models:`` section. Cheap (no torch): usable at Snakefile parse time.
    """
    if name not in models:
        raise KeyError(f"model {name!r} is not under models: (known: {', '.join(models)})")
    entry = dict(models[name])
    of = entry.get("of")
    if entry.get("source") == "random_init" and isinstance(of, str) and of in models:
        entry["of"] = {k: v for k, v in models[of].items() if k not in DESCRIPTIVE_KEYS}
    return entry


def resolve_device(device: str | None = "auto"):
    """``auto`` -> CUDA when available, else CPU; ``cpu`` / ``cuda`` / ``cuda:N`` as given."""
    import torch

    device = device or "auto"
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available on this machine")
    return dev


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
    the weights are fetched first (which needs network access).
    """
    source = check_source(name, mcfg)
    device = resolve_device(device) if isinstance(device, str) else device
    cache_dir = Path(cache_dir)
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
