"""Tiny random models saved in the same on-disk formats as the real ones.

Real pretrained weights cannot be downloaded in tests or in the offline demo, so these builders
make models with the real architectures (the real CNN front end: 320-sample hop, 400-sample
receptive field) but tiny widths, and save them exactly like the real sources serve them:

* Hugging Face: ``save_pretrained`` folder (``config.json`` + ``model.safetensors``) plus the
  ``preprocessor_config.json`` the hub repos carry; loads with ``AutoModel.from_pretrained``.
* AVES: the torchaudio port's ``model_config.json`` (keyword arguments of
  ``torchaudio.models.wav2vec2_model``) and a ``state_dict`` ``.pt`` file.
"""

from __future__ import annotations

import json
from pathlib import Path

TINY_HF_KINDS = (
    "hubert",
    "wav2vec2",
    "wavlm",
    "wav2vec2_ctc",
    "wav2vec2_stable",
    "data2vec_audio",
    "unispeech_sat",
    "wav2vec2_conformer",
    "whisper",
    "ast",
)
# Families run window by window on log-mel features (real front ends: Whisper's 30 s of 80 mel
# bins, AST's 1024 frames of 128 bins), saved with their own feature extractor configs.
TINY_WINDOWED_KINDS = ("whisper", "ast")

# The real wav2vec2/HuBERT feature encoder geometry, with 16 channels instead of 512.
CONV_KERNEL = (10, 3, 3, 3, 3, 2, 2)
CONV_STRIDE = (5, 2, 2, 2, 2, 2, 2)
CONV_DIM = (16,) * 7


def tiny_hf_config(kind: str):
    """A transformers config of the real architecture ``kind`` with hidden size 32 and 2 layers."""
    from transformers import (
        ASTConfig,
        Data2VecAudioConfig,
        HubertConfig,
        UniSpeechSatConfig,
        Wav2Vec2Config,
        Wav2Vec2ConformerConfig,
        WavLMConfig,
        WhisperConfig,
    )

    if kind == "whisper":  # the real 30 s window (1500 positions) and 80 mel bins, tiny widths
        return WhisperConfig(
            d_model=32, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=64, decoder_layers=1,
            decoder_attention_heads=2, decoder_ffn_dim=64, num_mel_bins=80, max_source_positions=1500,
            max_target_positions=32, vocab_size=64, pad_token_id=0, bos_token_id=1, eos_token_id=2,
            decoder_start_token_id=1, begin_suppress_tokens=None, suppress_tokens=None,
        )
    if kind == "ast":  # the real 1024 x 128 input and 16 x 16 patches every 10, tiny widths
        return ASTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_length=1024, num_mel_bins=128)
    common = dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=CONV_DIM,
        conv_stride=CONV_STRIDE,
        conv_kernel=CONV_KERNEL,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        feat_extract_norm="group",  # as wav2vec2-base / HuBERT-base: no attention mask allowed
        do_stable_layer_norm=False,
    )
    if kind == "hubert":
        return HubertConfig(**common)
    if kind == "wav2vec2":
        return Wav2Vec2Config(**common, codevector_dim=16, proj_codevector_dim=16, num_codevectors_per_group=8)
    if kind == "wav2vec2_ctc":  # an ASR fine-tuned checkpoint: encoder + CTC head
        return Wav2Vec2Config(**common, vocab_size=12, architectures=["Wav2Vec2ForCTC"])
    if kind == "wav2vec2_stable":  # large-model style: layer-norm feature encoder, pre-LN transformer
        return Wav2Vec2Config(**{**common, "feat_extract_norm": "layer", "do_stable_layer_norm": True})
    if kind == "wavlm":
        return WavLMConfig(**common, num_buckets=32, max_bucket_distance=100)
    if kind == "data2vec_audio":  # as facebook/data2vec-audio-base: layer-norm CNN, conv positional layers
        return Data2VecAudioConfig(**{**common, "feat_extract_norm": "layer", "num_conv_pos_embeddings": 5}, conv_pos_kernel_size=19)
    if kind == "unispeech_sat":
        return UniSpeechSatConfig(**common, codevector_dim=16, proj_codevector_dim=16, num_codevectors_per_group=8, num_clusters=4)
    if kind == "wav2vec2_conformer":  # as the public checkpoints: rotary positions, pre-LN, layer-norm CNN
        return Wav2Vec2ConformerConfig(
            **{**common, "feat_extract_norm": "layer", "do_stable_layer_norm": True},
            position_embeddings_type="rotary", conv_depthwise_kernel_size=7,
            codevector_dim=16, proj_codevector_dim=16, num_codevectors_per_group=8,
        )
    raise ValueError(f"unknown tiny model kind {kind!r}; choose one of {', '.join(TINY_HF_KINDS)}")


def save_tiny_hf_model(kind: str, out_dir, seed: int = 0) -> Path:
    """Build a tiny random ``kind`` model (see :data:`TINY_HF_KINDS`) and ``save_pretrained`` it.

    Returns the folder, which loads with ``AutoModel.from_pretrained(folder)``.
    """
    import torch
    from transformers import AutoModel, Wav2Vec2ForCTC

    config = tiny_hf_config(kind)
    torch.manual_seed(seed)
    model = Wav2Vec2ForCTC(config) if kind == "wav2vec2_ctc" else AutoModel.from_config(config)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    feature_extractor(kind, config).save_pretrained(out_dir)
    return out_dir


def feature_extractor(kind: str, config):
    """The feature extractor the public checkpoints of ``kind`` carry, fitted to ``config``."""
    from transformers import ASTFeatureExtractor, Wav2Vec2FeatureExtractor, WhisperFeatureExtractor

    if kind == "whisper":
        return WhisperFeatureExtractor(feature_size=config.num_mel_bins, chunk_length=2 * config.max_source_positions // 100)
    if kind == "ast":
        return ASTFeatureExtractor(num_mel_bins=config.num_mel_bins, max_length=config.max_length)
    # data2vec-audio, unispeech-sat and wav2vec2-conformer checkpoints ask for attention masks
    # (they are layer-norm models); bioprobe never pads a batch, so it passes none
    return Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
        return_attention_mask=kind in ("data2vec_audio", "unispeech_sat", "wav2vec2_conformer"),
    )


def tiny_aves_config() -> dict:
    """``wav2vec2_model`` keyword arguments of a tiny HuBERT-style model, as in AVES's model_config.json."""
    return {
        "extractor_mode": "group_norm",
        "extractor_conv_layer_config": [[c, k, s] for c, k, s in zip(CONV_DIM, CONV_KERNEL, CONV_STRIDE)],
        "extractor_conv_bias": False,
        "encoder_embed_dim": 32,
        "encoder_projection_dropout": 0.1,
        "encoder_pos_conv_kernel": 16,
        "encoder_pos_conv_groups": 4,
        "encoder_num_layers": 2,
        "encoder_num_heads": 2,
        "encoder_attention_dropout": 0.1,
        "encoder_ff_interm_features": 64,
        "encoder_ff_interm_dropout": 0.0,
        "encoder_dropout": 0.1,
        "encoder_layer_norm_first": False,
        "encoder_layer_drop": 0.05,
    }


def legacy_weight_norm_keys(state_dict: dict) -> dict:
    """Rename parametrized weight-norm keys to the pre-2.1 ``weight_g``/``weight_v`` names.

    Checkpoints ported with older torchaudio (as the AVES port was) store the positional
    convolution this way; torch converts them on load.
    """
    renamed = {}
    for key, value in state_dict.items():
        key = key.replace("parametrizations.weight.original0", "weight_g")
        key = key.replace("parametrizations.weight.original1", "weight_v")
        renamed[key] = value
    return renamed


def save_tiny_aves_model(
    out_dir,
    seed: int = 0,
    legacy_keys: bool = True,
    config_name: str = "config.json",
    weights_name: str = "model.pt",
) -> tuple[Path, Path]:
    """Save a tiny AVES-format model: ``(config JSON, state dict .pt)`` paths in ``out_dir``.

    The content has the port's format (the real files are named
    ``aves-base-bio.torchaudio.model_config.json`` and ``aves-base-bio.torchaudio.pt``; any
    name works, the lock records the URL).
    """
    import torch
    from torchaudio.models import wav2vec2_model

    config = tiny_aves_config()
    torch.manual_seed(seed)
    model = wav2vec2_model(**config, aux_num_out=None)
    state = model.state_dict()
    if legacy_keys:
        state = legacy_weight_norm_keys(state)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config_path = out_dir / config_name
    weights_path = out_dir / weights_name
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    torch.save(state, weights_path)
    return config_path, weights_path


def install_in_hub_cache(folder, repo_id: str, hf_cache, commit: str | None = None, revision: str = "main") -> Path:
    """Lay a saved model folder out as a Hugging Face hub cache entry, as ``snapshot_download`` does.

    ``hf_cache/models--org--name/{blobs/<sha256>, snapshots/<commit>/<file> -> blob, refs/<revision>}``.
    Lets a machine without internet access (tests, the offline demo) use ``id: org/name``.
    Returns the snapshot folder.
    """
    import hashlib
    import os
    import shutil

    folder, hf_cache = Path(folder), Path(hf_cache)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if commit is None:  # a stable fake commit id derived from the content
        digest = hashlib.sha1()
        for p in files:
            digest.update(p.relative_to(folder).as_posix().encode() + p.read_bytes())
        commit = digest.hexdigest()
    storage = hf_cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = storage / "snapshots" / commit
    for p in files:
        blob_id = hashlib.sha256(p.read_bytes()).hexdigest()
        blob = storage / "blobs" / blob_id
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            shutil.copyfile(p, blob)
        link = snapshot / p.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(os.path.relpath(blob, link.parent), link)
    (storage / "refs").mkdir(parents=True, exist_ok=True)
    (storage / "refs" / revision).write_text(commit)
    return snapshot
