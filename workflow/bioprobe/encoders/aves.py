"""AVES through its torchaudio port: ``model_config.json`` + state dict, no fairseq.

The port's config holds the keyword arguments of ``torchaudio.models.wav2vec2_model``; the
state dict loads with ``torch.load(weights_only=True)`` (no pickled code is executed).

Layer 0. ``Wav2Vec2Model.extract_features`` returns only the transformer layers, so layer 0 is
computed here, in one of two ways (the model entry's ``layer0``):

* ``study``: the CNN features through the encoder's feature projection, ``Linear(LayerNorm(CNN))``
  (torchaudio's ``encoder.feature_projection``, fairseq's ``post_extract_proj`` output, which
  the authors hooked). Used by ``config.yaml`` for AVES-bio.
* ``transformer_input`` (the default): the way Hugging Face defines ``hidden_states[0]``: the
  above, then the transformer's input step (plus the convolutional positional embedding, then
  the encoder LayerNorm for post-LN models such as AVES/HuBERT-base; no LayerNorm for pre-LN
  models), i.e. torchaudio's ``encoder._preprocess`` followed by
  ``encoder.transformer._preprocess``. For the same weights this equals the HF model's index 0
  exactly (checked in tests/test_encoders.py), so layer 0 means the same for every model.

Dropout is inactive in eval mode. Layers 1..N are the same either way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

from .base import Encoder

# Keys of the port's config that are not wav2vec2_model arguments we may pass.
IGNORED_CONFIG_KEYS = ("aux_num_out",)
LAYER0_DEFINITIONS = {
    "study": "feature_projection: Linear(LayerNorm(CNN features)), before the positional conv (the authors' post_extract_proj hook)",
    "transformer_input": "feature_projection+pos_conv+layer_norm (HF hidden_states[0])",
}
LAYER0_DEFAULT = "transformer_input"


def layer0_of(name: str, mcfg: Mapping) -> str:
    """The entry's ``layer0`` (default :data:`LAYER0_DEFAULT`), checked."""
    layer0 = mcfg.get("layer0", LAYER0_DEFAULT)
    if layer0 not in LAYER0_DEFINITIONS:
        raise ValueError(f"model {name!r}: layer0 must be one of {', '.join(LAYER0_DEFINITIONS)}, got {layer0!r}")
    return layer0


def read_aves_config(path: Path, name: str) -> dict:
    """The ``wav2vec2_model`` keyword arguments from an AVES ``model_config.json``."""
    try:
        config = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"model {name!r}: cannot read AVES config {path}: {err}") from err
    if not isinstance(config, dict) or "encoder_embed_dim" not in config:
        raise ValueError(f"model {name!r}: {path} is not a torchaudio wav2vec2_model config (no encoder_embed_dim)")
    return {k: v for k, v in config.items() if k not in IGNORED_CONFIG_KEYS}


def build_aves_model(name: str, config: dict):
    """A torchaudio ``Wav2Vec2Model`` from the config (random weights until loaded)."""
    from torchaudio.models import wav2vec2_model

    try:
        return wav2vec2_model(**config, aux_num_out=None)
    except TypeError as err:
        raise ValueError(f"model {name!r}: AVES config does not fit torchaudio.models.wav2vec2_model: {err}") from err


def load_aves_state(name: str, model, weights_path: Path) -> None:
    """Load the port's state dict strictly (a missing or extra key is an error)."""
    import torch

    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"model {name!r}: cannot read AVES weights {weights_path}: {err}") from err
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"model {name!r}: {weights_path} does not match the AVES config: {err}") from err


def conv_geometry(config: dict) -> tuple[int, int]:
    """``(hop_samples, receptive_field_samples)`` of the CNN front end."""
    hop, field = 1, 1
    for _channels, kernel, stride in config["extractor_conv_layer_config"] or []:
        field += (kernel - 1) * hop
        hop *= stride
    return hop, field


class AvesEncoder(Encoder):
    """A torchaudio wav2vec2/HuBERT model returning layer 0 (see ``layer0``) + every layer."""

    def __init__(self, name: str, model, config: dict, provenance: dict, device, source: str = "aves", layer0: str = LAYER0_DEFAULT):
        import torch

        if layer0 not in LAYER0_DEFINITIONS:
            raise ValueError(f"model {name!r}: layer0 must be one of {', '.join(LAYER0_DEFINITIONS)}, got {layer0!r}")
        self.layer0 = layer0
        self.name = name
        self.source = source
        self.model = model.to(device=device, dtype=torch.float32).eval()
        self.device = torch.device(device)
        self.dim = int(config["encoder_embed_dim"])
        self.n_layers = int(config["encoder_num_layers"]) + 1
        self.hop_samples, self.min_input_samples = conv_geometry(config)
        self.provenance = {**provenance, "layer0": layer0, "layer0_definition": LAYER0_DEFINITIONS[layer0]}

    def forward(self, wave):
        """``wave [batch, samples]`` -> ``[n_layers, batch, frames, dim]``."""
        import torch

        features, _ = self.model.feature_extractor(wave, None)  # [B, frames, conv_dim]
        encoder = self.model.encoder
        x, _mask = encoder._preprocess(features, None)  # feature projection: [B, frames, dim]
        projected = x
        x = encoder.transformer._preprocess(x)  # + positional conv (+ LayerNorm if post-LN)
        layers = [projected if self.layer0 == "study" else x]
        position_bias = None  # only WavLM-style torchaudio models use it
        for layer in encoder.transformer.layers:
            x, position_bias = layer(x, None, position_bias=position_bias)
            layers.append(x)
        return torch.stack(layers, dim=0)


def aves_provenance(lock: dict) -> dict:
    files = lock["files"]
    return {
        "config_url": files["config"]["url"],
        "config_sha256": files["config"]["sha256"],
        **({"weights_url": files["weights"]["url"], "weights_sha256": files["weights"]["sha256"]} if "weights" in files else {}),
    }


def load_aves_encoder(name: str, mcfg: Mapping, cache_dir: Path, device) -> AvesEncoder:
    """Load a ``source: aves`` model from the cache, checksums verified against the lock."""
    from ..weights import ensure_lock, locked_file

    lock = ensure_lock(name, mcfg, cache_dir)
    config = read_aves_config(locked_file(lock, "config", cache_dir), name)
    model = build_aves_model(name, config)
    load_aves_state(name, model, locked_file(lock, "weights", cache_dir))
    return AvesEncoder(name, model, config, aves_provenance(lock), device, layer0=layer0_of(name, mcfg))
