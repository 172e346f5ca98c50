"""Hugging Face transformers encoders: the wav2vec2 family (HuBERT, wav2vec2, WavLM, data2vec-audio,
UniSpeech(-SAT), wav2vec2-conformer and their ASR fine-tunings) here; Whisper and AST, which take
fixed windows of log-mel features, in :mod:`.whisper` and :mod:`.ast` (:func:`build_hf_encoder`
picks the class from the checkpoint's model type).

Weights come from the model cache through the lock of :mod:`bioprobe.weights` and are loaded
offline with ``AutoModel`` (an ASR checkpoint such as ``Wav2Vec2ForCTC`` yields its encoder;
the CTC head is dropped), in float32, never with remote code. All hidden states are returned:
index 0 is the transformer input (projected CNN features + positional convolution, then the
encoder LayerNorm for post-LN models), 1..N the transformer layers.

No attention mask is ever passed: batches hold clips of equal length only (see
:func:`bioprobe.embed.plan_batches`), which is the only correct way to batch models whose
feature encoder uses GroupNorm (wav2vec2-base, HuBERT-base: ``feat_extract_norm == "group"``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from ..models import is_local_path
from .base import Encoder
from .windowed import WINDOWED_MODEL_TYPES, read_preprocessor_config

# Model types whose CNN front end and hidden-state layout this module knows.
SUPPORTED_MODEL_TYPES = (
    "hubert",
    "wav2vec2",
    "wavlm",
    "data2vec-audio",
    "unispeech",
    "unispeech-sat",
    "wav2vec2-conformer",
    "whisper",
    "audio-spectrogram-transformer",
)
# The study's model families: their input is the raw (peak-normalised) waveform, as in the study,
# whatever their preprocessor config declares. Other checkpoints get the normalisation they declare.
STUDY_MODEL_TYPES = ("hubert", "wav2vec2", "wavlm")
# Parameters that pretrained checkpoints may lack without harm: used only for masking in training.
HARMLESS_MISSING = ("masked_spec_embed",)


def conv_geometry(config) -> tuple[int, int]:
    """``(hop_samples, receptive_field_samples)`` of the CNN feature encoder of ``config``."""
    hop, field = 1, 1
    for kernel, stride in zip(config.conv_kernel, config.conv_stride):
        field += (kernel - 1) * hop
        hop *= stride
    return hop, field


class HuggingFaceEncoder(Encoder):
    """A transformers speech encoder returning all hidden states."""

    def __init__(self, name: str, model, provenance: dict, device, source: str = "huggingface", preprocessor: dict | None = None):
        import torch

        config = model.config
        if config.model_type in WINDOWED_MODEL_TYPES:
            raise ValueError(f"model {name!r}: a {config.model_type} model runs window by window; build it with build_hf_encoder")
        if config.model_type not in SUPPORTED_MODEL_TYPES:
            raise ValueError(
                f"model {name!r}: model type {config.model_type!r} is not supported "
                f"(supported: {', '.join(SUPPORTED_MODEL_TYPES)})"
            )
        self.name = name
        self.source = source
        self.model = model.to(device=device, dtype=torch.float32).eval()
        self.device = torch.device(device)
        self.dim = int(config.hidden_size)
        self.n_layers = int(config.num_hidden_layers) + 1
        self.hop_samples, self.min_input_samples = conv_geometry(config)
        self.provenance = {
            **provenance,
            "model_type": config.model_type,
            "model_class": type(model).__name__,
            "feat_extract_norm": getattr(config, "feat_extract_norm", None),
            "attention_mask": False,
        }
        self.standardize_input, self.provenance["input_normalization"] = waveform_normalization(config.model_type, preprocessor)

    def forward(self, wave):
        """``wave [batch, samples]`` -> ``[n_layers, batch, frames, dim]``."""
        import torch

        out = self.model(wave, output_hidden_states=True, return_dict=True)
        hidden = out.hidden_states  # n_layers x [batch, frames, dim]
        if len(hidden) != self.n_layers:
            raise RuntimeError(f"model {self.name!r}: expected {self.n_layers} hidden states, got {len(hidden)}")
        return torch.stack(hidden, dim=0)


def waveform_normalization(model_type: str, preprocessor: dict | None) -> tuple[bool, str]:
    """``(standardize, description)``: whether the embed step standardises each clip (zero mean, unit variance).

    As the checkpoint declares it (``do_normalize`` in ``preprocessor_config.json``), except for
    the study's families (:data:`STUDY_MODEL_TYPES`), which keep the study's raw waveform.
    """
    declared = None if preprocessor is None else bool(preprocessor.get("do_normalize", False))
    if model_type in STUDY_MODEL_TYPES:
        return False, f"raw waveform (the study's protocol; checkpoint do_normalize={declared} not applied)"
    if declared:
        return True, "waveform zero mean, unit variance per clip (checkpoint do_normalize: true)"
    if declared is None:
        return False, "raw waveform (no preprocessor_config.json)"
    return False, "raw waveform (checkpoint do_normalize: false)"


def build_hf_encoder(name: str, model, folder: Path, provenance: dict, device, source: str = "huggingface") -> Encoder:
    """The encoder class for a loaded transformers model: Whisper, AST or the wav2vec2 family."""
    model_type = model.config.model_type
    if model_type == "whisper":
        from .whisper import WhisperEncoder

        return WhisperEncoder(name, model, folder, provenance, device, source=source)
    if model_type == "audio-spectrogram-transformer":
        from .ast import ASTEncoder

        return ASTEncoder(name, model, folder, provenance, device, source=source)
    return HuggingFaceEncoder(name, model, provenance, device, source=source, preprocessor=read_preprocessor_config(folder))


def load_hf_model(name: str, folder: Path, random_seed: int | None = None):
    """``AutoModel`` from a local folder, float32; with ``random_seed``, config only + random weights."""
    import torch
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
    if config.model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(
            f"model {name!r}: {folder} is a {config.model_type!r} model; supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    if random_seed is not None:
        torch.manual_seed(random_seed)
        return AutoModel.from_config(config, dtype=torch.float32, trust_remote_code=False)
    model, info = AutoModel.from_pretrained(
        folder,
        dtype=torch.float32,
        local_files_only=True,
        trust_remote_code=False,
        output_loading_info=True,
    )
    missing = [k for k in info.get("missing_keys", []) if not k.endswith(HARMLESS_MISSING)]
    if missing:
        raise ValueError(
            f"model {name!r}: checkpoint {folder} lacks encoder weights {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}; they would be random. Is this the right model?"
        )
    return model


def snapshot_folder(lock: dict, cache_dir: Path) -> Path:
    folder = Path(lock["snapshot"])
    return folder if folder.is_absolute() else Path(cache_dir) / folder


def hf_provenance(lock: dict) -> dict:
    return {
        "id": lock["id"],
        "revision": lock.get("revision"),
        "commit": lock.get("commit"),
        "files_sha256": {k: v["sha256"] for k, v in sorted(lock["files"].items())},
    }


def load_hf_encoder(name: str, mcfg: Mapping, cache_dir: Path, device) -> Encoder:
    """Load a ``source: huggingface`` model offline from the cache, through its lock."""
    from ..weights import ensure_lock, verify_lock

    lock = ensure_lock(name, mcfg, cache_dir)
    verify_lock(lock, cache_dir)
    folder = snapshot_folder(lock, cache_dir)
    model = load_hf_model(name, folder)
    provenance = hf_provenance(lock)
    provenance["local_dir"] = is_local_path(mcfg["id"])
    return build_hf_encoder(name, model, folder, provenance, device)
