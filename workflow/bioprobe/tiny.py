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

TINY_HF_KINDS = ("hubert", "wav2vec2", "wavlm", "wav2vec2_ctc", "wav2vec2_stable")

# The real wav2vec2/HuBERT feature encoder geometry, with 16 channels instead of 512.
CONV_KERNEL = (10, 3, 3, 3, 3, 2, 2)
CONV_STRIDE = (5, 2, 2, 2, 2, 2, 2)
CONV_DIM = (16,) * 7


def tiny_hf_config(kind: str):
    """A transformers config of the real architecture ``kind`` with hidden size 32 and 2 layers."""
    from transformers import HubertConfig, Wav2Vec2Config, WavLMConfig

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
    raise ValueError(f"unknown tiny model kind {kind!r}; choose one of {', '.join(TINY_HF_KINDS)}")


def save_tiny_hf_model(kind: str, out_dir, seed: int = 0) -> Path:
    """Build a tiny random ``kind`` model (see :data:`TINY_HF_KINDS`) and ``save_pretrained`` it.

    Returns the folder, which loads with ``AutoModel.from_pretrained(folder)``.
    """
    import torch
    from transformers import AutoModel, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC

    config = tiny_hf_config(kind)
    torch.manual_seed(seed)
    model = Wav2Vec2ForCTC(config) if kind == "wav2vec2_ctc" else AutoModel.from_config(config)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True, return_attention_mask=False
    ).save_pretrained(out_dir)
    return out_dir


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
