"""Compute of a wav2vec2-style encoder run up to layer l, counted in floating-point operations.

Used by the cheapest-layer analysis (:mod:`bioprobe.cheapest`) to say what share of the full
model's compute the first l blocks cost. Counted per clip of ``seconds`` of 16 kHz audio, two
operations per multiply-add, for the matrix products and convolutions only (norms,
activations, softmax and WavLM's relative position gates are left out: a few per cent):

- front end (always run, layer 0): the CNN feature encoder (every conv layer:
  ``2 * kernel * c_in * c_out`` per output sample), the feature projection (``2 * c_last * D``
  per frame) and the convolutional positional embedding (``2 * kernel * D * D / groups`` per frame);
- each transformer block: Q, K, V and output projections (``8 * D^2`` per frame), the attention
  scores and their weighted sum (``4 * T * D`` per frame for T frames), the feed-forward network
  (``4 * D * D_ffn`` per frame).

An architecture is a plain dict (:func:`hf_architecture`, :func:`aves_architecture`):
``conv [(channels, kernel, stride), ...]``, ``dim``, ``ffn_dim``, ``n_blocks``,
``pos_conv_kernel``, ``pos_conv_groups``.
"""

from __future__ import annotations

from typing import Mapping

SAMPLE_RATE = 16000


def hf_architecture(config: Mapping) -> dict:
    """The architecture of a transformers wav2vec2/HuBERT/WavLM ``config.json`` (as a dict)."""
    try:
        return {
            "conv": [(int(c), int(k), int(s)) for c, k, s in zip(config["conv_dim"], config["conv_kernel"], config["conv_stride"])],
            "dim": int(config["hidden_size"]),
            "ffn_dim": int(config["intermediate_size"]),
            "n_blocks": int(config["num_hidden_layers"]),
            "pos_conv_kernel": int(config.get("num_conv_pos_embeddings", 128)),
            "pos_conv_groups": int(config.get("num_conv_pos_embedding_groups", 16)),
        }
    except KeyError as err:
        raise ValueError(f"not a wav2vec2-style transformers config: no key {err}") from None


def aves_architecture(config: Mapping) -> dict:
    """The architecture of a torchaudio ``wav2vec2_model`` config (AVES's ``model_config.json``)."""
    try:
        return {
            "conv": [(int(c), int(k), int(s)) for c, k, s in config["extractor_conv_layer_config"]],
            "dim": int(config["encoder_embed_dim"]),
            "ffn_dim": int(config["encoder_ff_interm_features"]),
            "n_blocks": int(config["encoder_num_layers"]),
            "pos_conv_kernel": int(config["encoder_pos_conv_kernel"]),
            "pos_conv_groups": int(config["encoder_pos_conv_groups"]),
        }
    except (KeyError, TypeError) as err:
        raise ValueError(f"not a torchaudio wav2vec2_model config: {err}") from None


def encoder_flops(arch: Mapping, seconds: float = 1.0) -> tuple[float, float, int]:
    """``(front_end, per_block, frames)`` operations for one clip of ``seconds``."""
    length = max(int(round(seconds * SAMPLE_RATE)), 1)
    c_in, front = 1, 0.0
    for c_out, kernel, stride in arch["conv"]:
        length = max((length - kernel) // stride + 1, 1)
        front += 2.0 * kernel * c_in * c_out * length
        c_in = c_out
    frames, dim = length, arch["dim"]
    front += 2.0 * c_in * dim * frames  # feature projection
    front += 2.0 * arch["pos_conv_kernel"] * dim * dim / arch["pos_conv_groups"] * frames  # positional conv
    block = (8.0 * dim * dim + 4.0 * frames * dim + 4.0 * dim * arch["ffn_dim"]) * frames
    return front, block, frames


def compute_fraction(arch: Mapping, layer: int, seconds: float = 1.0) -> float:
    """Share of the full model's operations spent to obtain layer ``layer`` (0 = the front end only)."""
    if not 0 <= layer <= arch["n_blocks"]:
        raise ValueError(f"layer {layer} is outside 0..{arch['n_blocks']}")
    front, block, _frames = encoder_flops(arch, seconds)
    return (front + layer * block) / (front + arch["n_blocks"] * block)
