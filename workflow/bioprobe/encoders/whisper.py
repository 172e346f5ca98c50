"""Whisper's encoder (``WhisperModel`` / ``WhisperForConditionalGeneration`` checkpoints).

Only the encoder runs; the decoder is dropped after loading. The front end is the
checkpoint's own ``WhisperFeatureExtractor`` (``preprocessor_config.json``): an 80- or
128-bin log-mel spectrogram (25 ms windows, 10 ms hop), ``log10``, floored at the window's
maximum minus 8, then ``(x + 4) / 4``. The encoder accepts exactly one window of
``chunk_length`` seconds (30 s: 3000 mel frames), which the extractor fills by zero-padding.

* Frames: two convolutions (the second with stride 2) give 50 frames per second; frame ``j``
  of a window is centred on sample ``320 * j``. A frame covers real audio when its centre
  does: a window with ``m`` real samples contributes its first ``ceil(m / 320)`` frames, the
  rest (Whisper's padding) never enters the pooling.
* Long clips: consecutive 30 s windows (no overlap); every window's real frames, in order,
  so the 50 Hz grid continues across windows (see :mod:`.windowed`).
* Layer 0 is the input to the first transformer block (convolutions + GELU + sinusoidal
  positions), ``hidden_states[0]``; layer ``i`` the output of block ``i``; the last one has the
  encoder's final LayerNorm applied (as transformers returns it). ``encoder_layers + 1``
  layers (7 for whisper-base, 13 for whisper-small, 33 for large).
* ``do_normalize`` (waveform zero mean / unit variance) is applied per clip by the embed
  step when the checkpoint's preprocessor config declares it (the public ones do not).
"""

from __future__ import annotations

import logging

from .windowed import WindowedEncoder, fit_extractor_to_model, load_feature_extractor, read_preprocessor_config

CONV_STRIDE = 2  # conv1 stride 1, conv2 stride 2: one encoder frame per two mel frames


def whisper_encoder_module(model):
    """The ``WhisperEncoder`` of a loaded ``WhisperModel`` / ``WhisperForConditionalGeneration``."""
    encoder = model.get_encoder() if hasattr(model, "get_encoder") else model
    if type(encoder).__name__ != "WhisperEncoder":
        raise ValueError(f"expected a Whisper model with an encoder, got {type(model).__name__}")
    return encoder


class WhisperEncoder(WindowedEncoder):
    """All hidden states of Whisper's encoder, 30 s window by 30 s window, real frames only."""

    def __init__(self, name: str, model, folder, provenance: dict, device, source: str = "huggingface"):
        import torch

        config = model.config
        extractor, adapted = fit_extractor_to_model(
            name, load_feature_extractor(name, folder, "WhisperFeatureExtractor"), {"feature_size": int(config.num_mel_bins)}
        )
        self.name = name
        self.source = source
        self.extractor = extractor
        self.model = whisper_encoder_module(model).to(device=device, dtype=torch.float32).eval()
        self.device = torch.device(device)
        self.dim = int(config.d_model)
        self.n_layers = int(config.encoder_layers) + 1
        self.hop_samples = int(extractor.hop_length) * CONV_STRIDE  # 320: 50 frames per second
        # the window the encoder takes (3000 mel frames = 30 s for every public checkpoint); the
        # extractor pads to it (its own chunk_length says the same for consistent checkpoints)
        self.window_step = CONV_STRIDE * int(config.max_source_positions) * int(extractor.hop_length)
        if self.window_step != int(extractor.n_samples):
            adapted["window_samples"] = (int(extractor.n_samples), self.window_step)
            logging.getLogger(__name__).warning(
                "model %r: its feature extractor declares %d-sample windows; the encoder takes %d: using the encoder's",
                name, extractor.n_samples, self.window_step,
            )
        self.window_context = 0
        self.min_input_samples = self.hop_samples
        preprocessor = read_preprocessor_config(folder) or {}
        self.standardize_input = bool(preprocessor.get("do_normalize", False))
        self.provenance = {
            **provenance,
            "model_type": config.model_type,
            "model_class": type(model).__name__ + " (encoder only)",
            "layer0": "input to the first encoder block (conv stem + positions)",
            "window_seconds": self.window_step / self.sample_rate,
            "frames": "50 Hz; per window only the frames whose centre lies in real audio (ceil(m / 320))",
            "input_normalization": (
                f"log-mel ({extractor.feature_size} bins, n_fft {extractor.n_fft}, hop {extractor.hop_length}), "
                "log10, floor at window max - 8, (x + 4) / 4"
                + ("; waveform zero mean, unit variance per clip (do_normalize)" if self.standardize_input else "")
            ),
            "attention_mask": False,
            **({"feature_extractor_adapted": {k: list(v) for k, v in adapted.items()}} if adapted else {}),
        }

    def forward_rows(self, rows):
        """Windows (1-D tensors of ``m_j <= 30 s``) -> ``[n_layers, ceil(m_j / 320), dim]`` each, one pass."""
        keep = [-(-int(row.shape[0]) // self.hop_samples) for row in rows]
        return self.rows_of_features(self.window_features(rows), keep)

    def window_features(self, rows):
        """The checkpoint's log-mel front end of each window (1-D tensors), padded to 30 s: ``[rows, mel bins, 3000]``."""
        import torch

        with torch.autocast(device_type=self.device.type, enabled=False):  # the mel front end in float32
            features = self.extractor(
                self.feature_inputs(rows),  # each padded to the 30 s window on its own
                sampling_rate=self.sample_rate,
                return_tensors="pt",
                padding="max_length",
                max_length=self.window_step,
                do_normalize=False,  # standardisation, when declared, is done per clip by the embed step
                device=str(self.device),
            )["input_features"]
        return features

    def rows_of_features(self, features, keep):
        """The encoder on ``features`` (moved to its device): ``[n_layers, keep[j], dim]`` for window ``j``."""
        import torch

        out = self.model(features.to(self.device), output_hidden_states=True, return_dict=True)
        hidden = out.hidden_states
        if len(hidden) != self.n_layers:
            raise RuntimeError(f"model {self.name!r}: expected {self.n_layers} hidden states, got {len(hidden)}")
        stacked = torch.stack(hidden, dim=0)  # [L, rows, 1500, dim]
        return [stacked[:, j, :k] for j, k in enumerate(keep)]
