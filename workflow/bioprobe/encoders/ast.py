"""The Audio Spectrogram Transformer (``ASTModel``; ``ASTForAudioClassification`` checkpoints load their encoder).

Front end: the checkpoint's own ``ASTFeatureExtractor`` (``preprocessor_config.json``): Kaldi
log-mel filterbank (128 bins, 25 ms frames every 10 ms, no centring), cut or zero-padded to
``max_length`` frames (1024 = 10.24 s for the public checkpoints), then normalised with the
checkpoint's statistics: ``(fbank - mean) / (2 * std)`` when ``do_normalize`` (AudioSet:
mean -4.27, std 4.57). The model accepts exactly ``max_length`` frames.

* Tokens: 16 x 16 patches every ``frequency_stride`` bins and ``time_stride`` frames (10 and
  10: 12 frequency x 101 time positions), plus two special tokens (CLS and distillation) in
  front. Patch ``(f, t)`` spans frames ``[10 t, 10 t + 16)``; it covers real audio when at
  least half of its frames are real (``10 t + 8 <= real frames``). Only those patch tokens
  enter the pooling, time position by time position (each time position gives 12 "frames",
  one per frequency band): ``hop_samples`` is 1600 (0.1 s) and ``frames_per_step`` 12.
* Special tokens are kept apart: they attend over the whole window, padding included, and a
  long clip has one pair per window, so they are not pooled with the patches.
  :meth:`ASTEncoder.window_outputs` returns them beside the patches for anyone who wants them.
* Long clips: windows every 1024 frames (163,840 samples), each reading 240 samples more so
  that its last frame is complete: the frames of consecutive windows tile one 10 ms grid.
* Layer 0 is the embedding output (patch projection + CLS/distillation tokens + positions),
  ``hidden_states[0]``; layer ``i`` the output of block ``i``, before the final LayerNorm
  (transformers applies that LayerNorm to ``last_hidden_state`` only).
"""

from __future__ import annotations

from .windowed import WindowedEncoder, fit_extractor_to_model, load_feature_extractor

FRAME_LENGTH = 400  # Kaldi fbank at 16 kHz: 25 ms frames ...
FRAME_SHIFT = 160  # ... every 10 ms, snip_edges (first frame starts at sample 0)
N_SPECIAL_TOKENS = 2  # CLS and distillation


def real_frames(n_samples: int) -> int:
    """Filterbank frames Kaldi computes from ``n_samples`` samples (snip_edges)."""
    return 0 if n_samples < FRAME_LENGTH else 1 + (n_samples - FRAME_LENGTH) // FRAME_SHIFT


class ASTEncoder(WindowedEncoder):
    """All hidden states of an AST, window by window; patch tokens over real audio only."""

    def __init__(self, name: str, model, folder, provenance: dict, device, source: str = "huggingface"):
        import torch

        config = model.config
        extractor, adapted = fit_extractor_to_model(
            name,
            load_feature_extractor(name, folder, "ASTFeatureExtractor"),
            {"num_mel_bins": int(config.num_mel_bins), "max_length": int(config.max_length)},
        )
        self.name = name
        self.source = source
        self.extractor = extractor
        self.model = model.to(device=device, dtype=torch.float32).eval()
        self.device = torch.device(device)
        self.dim = int(config.hidden_size)
        self.n_layers = int(config.num_hidden_layers) + 1
        self.patch = int(config.patch_size)
        self.time_stride = int(config.time_stride)
        self.n_freq = (int(config.num_mel_bins) - self.patch) // int(config.frequency_stride) + 1
        self.n_time = (int(config.max_length) - self.patch) // self.time_stride + 1
        self.max_frames = int(config.max_length)
        self.hop_samples = self.time_stride * FRAME_SHIFT  # 1600 samples between time positions
        self.frames_per_step = self.n_freq
        self.window_step = self.max_frames * FRAME_SHIFT  # 163,840 samples = 10.24 s
        self.window_context = FRAME_LENGTH - FRAME_SHIFT  # the last frame's remaining 240 samples
        self.min_input_samples = FRAME_LENGTH + (self.patch // 2 - 1) * FRAME_SHIFT  # half a patch of frames
        normalization = (
            f"Kaldi fbank ({extractor.num_mel_bins} bins, 25 ms / 10 ms), (fbank - mean) / (2 * std) with the "
            f"checkpoint's mean {extractor.mean} and std {extractor.std}"
            if extractor.do_normalize
            else f"Kaldi fbank ({extractor.num_mel_bins} bins, 25 ms / 10 ms), not normalised (do_normalize: false)"
        )
        self.provenance = {
            **provenance,
            "model_type": config.model_type,
            "model_class": type(model).__name__,
            "layer0": "embedding output (patches + CLS/distillation tokens + positions)",
            "window_seconds": self.window_step / self.sample_rate,
            "frames": (
                f"{self.n_freq} patch tokens per 0.1 s time position; only patches with at least half their "
                f"{self.patch} frames in real audio; CLS and distillation tokens not pooled"
            ),
            "frames_per_step": self.n_freq,
            "input_normalization": normalization,
            "attention_mask": False,
            **({"feature_extractor_adapted": {k: list(v) for k, v in adapted.items()}} if adapted else {}),
        }

    def kept_time_positions(self, n_samples: int) -> int:
        """Time positions whose patches have at least half their frames in the ``n_samples`` real samples."""
        frames = min(real_frames(n_samples), self.max_frames)
        if frames < self.patch // 2:
            return 0
        return min(self.n_time, (frames - self.patch // 2) // self.time_stride + 1)

    def token_grid(self, rows):
        """Windows (1-D tensors, any lengths) -> ``(grid [L, B, n_freq, n_time, dim], special [L, B, 2, dim])``.

        The feature extractor pads (or cuts) each window to the model's 1024 frames on its own.
        """
        return self.grid_of_values(self.window_values(rows))

    def window_values(self, rows):
        """The checkpoint's filterbank of each window (1-D tensors), cut or padded to ``max_length`` frames."""
        import torch

        with torch.autocast(device_type=self.device.type, enabled=False):  # the filterbank in float32
            return self.extractor(self.feature_inputs(rows), sampling_rate=self.sample_rate, return_tensors="pt")["input_values"]

    def grid_of_values(self, values):
        """:meth:`token_grid` from filterbank ``values`` (moved to the model's device)."""
        import torch

        out = self.model(values.to(self.device), output_hidden_states=True, return_dict=True)
        hidden = torch.stack(out.hidden_states, dim=0)  # [L, B, 2 + F * T, D]
        n_layers, batch, tokens, dim = hidden.shape
        if n_layers != self.n_layers or tokens != N_SPECIAL_TOKENS + self.n_freq * self.n_time:
            raise RuntimeError(f"model {self.name!r}: unexpected hidden states of shape {tuple(hidden.shape)}")
        special = hidden[:, :, :N_SPECIAL_TOKENS]
        grid = hidden[:, :, N_SPECIAL_TOKENS:].reshape(n_layers, batch, self.n_freq, self.n_time, dim)  # frequency-major
        return grid, special

    def kept_patches(self, grid, keep: int):
        """``grid [L, n_freq, n_time, dim]`` of one window -> ``[L, keep * n_freq, dim]``, by time then band."""
        return grid[:, :, :keep].transpose(1, 2).reshape(grid.shape[0], keep * self.n_freq, grid.shape[-1])

    def window_outputs(self, wave):
        """``wave [B, m]`` -> ``(patches [L, B, kept * n_freq, dim], special [L, B, 2, dim])``.

        Patches are ordered by time position, then frequency band.
        """
        import torch

        keep = self.kept_time_positions(int(wave.shape[1]))
        grid, special = self.token_grid(list(wave))
        return torch.stack([self.kept_patches(grid[:, j], keep) for j in range(grid.shape[1])], dim=1), special

    def forward_rows(self, rows):
        """Windows of any lengths -> ``[L, kept_j * n_freq, dim]`` each, one pass."""
        grid, _ = self.token_grid(rows)
        return [self.kept_patches(grid[:, j], self.kept_time_positions(int(row.shape[0]))) for j, row in enumerate(rows)]
