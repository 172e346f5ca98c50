"""Encoders with a fixed input window (Whisper: 30 s, AST: 1024 filterbank frames).

Such a model always sees a window of fixed size: its feature extractor pads a shorter input
and cuts a longer one. :class:`WindowedEncoder` turns it into an ordinary encoder
(``forward(wave [B, T]) -> [n_layers, B, frames, dim]`` for any ``T``):

* the audio is cut into consecutive windows starting every ``window_step`` samples; a window
  reads ``window_context`` samples beyond its step when its last frame needs them (AST's
  25 ms filterbank frames), so that the windows' frames tile one global frame grid;
* each window goes through the checkpoint's own feature extractor (which pads the last one)
  and the model; only the frames (Whisper) or patch tokens (AST) that cover real audio are
  returned, never those of the padding;
* the windows' frames are concatenated in time order, so mean/std pooling over a clip is
  pooling over the frames of all its windows, and a long clip can be streamed chunk by chunk
  (:func:`window_spans` with ``windows_per_span > 1`` gives chunks made of whole windows,
  see :func:`bioprobe.embed.embed_long_clip`) with exactly the same result.

Only the frame bookkeeping lives here; the families are in :mod:`.whisper` and :mod:`.ast`.
"""

from __future__ import annotations

import json
from pathlib import Path

from .base import Encoder

# Model types (transformers ``config.model_type``) that are run window by window.
WINDOWED_MODEL_TYPES = ("whisper", "audio-spectrogram-transformer")


def window_spans(n_samples: int, step: int, context: int, min_samples: int, windows_per_span: int = 1) -> list[tuple[int, int]]:
    """``[(start, end), ...]``: spans of ``windows_per_span`` whole windows covering ``n_samples``.

    Span ``k`` starts at ``k * windows_per_span * step`` and reads ``context`` samples past its
    last step (cut at the clip's end). A remainder shorter than ``min_samples`` (no frame of its
    own: its samples only serve as the previous span's context, or are too few for one frame)
    starts no span. An input of fewer than ``min_samples`` gives one span over all of it.
    """
    if step <= 0 or windows_per_span < 1:
        raise ValueError(f"window step {step} and windows per span {windows_per_span} must be positive")
    stride = step * windows_per_span
    spans = [(0, min(stride + context, n_samples))]
    start = stride
    while n_samples - start >= max(min_samples, 1) and n_samples - start > context:
        spans.append((start, min(start + stride + context, n_samples)))
        start += stride
    return spans


def read_preprocessor_config(folder: Path) -> dict | None:
    """The checkpoint's ``preprocessor_config.json`` as a dict, or None if it has none."""
    path = Path(folder) / "preprocessor_config.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err


def load_feature_extractor(name: str, folder: Path, expected: str):
    """The checkpoint's feature extractor (class ``expected``) from ``folder``, offline."""
    from transformers import AutoFeatureExtractor

    if read_preprocessor_config(folder) is None:
        raise ValueError(
            f"model {name!r}: {folder} has no preprocessor_config.json; a {expected} checkpoint needs it "
            "(its mel front end and normalisation are defined there)"
        )
    extractor = AutoFeatureExtractor.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
    if type(extractor).__name__ != expected:
        raise ValueError(f"model {name!r}: {folder}/preprocessor_config.json is a {type(extractor).__name__}, expected {expected}")
    if int(extractor.sampling_rate) != 16000:
        raise ValueError(f"model {name!r}: its feature extractor expects {extractor.sampling_rate} Hz; bioprobe feeds 16 kHz")
    return extractor


def fit_extractor_to_model(name: str, extractor, wanted: dict) -> tuple[object, dict]:
    """The feature extractor with its shape parameters (``wanted``: mel bins, window length) set to
    what the model takes, and ``{key: (declared, used)}`` for those that differed.

    The model's config decides: its weights only accept that input shape (transformers itself
    fails on a mismatch). Public checkpoints agree with their extractor; a differing one (e.g. a
    model saved with a default extractor) is adapted, recorded in the provenance and logged.
    """
    import inspect
    import logging

    changed = {k: (getattr(extractor, k), v) for k, v in wanted.items() if getattr(extractor, k) != v}
    if not changed:
        return extractor, {}
    cls = type(extractor)
    params = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "kwargs")]
    kwargs = {p: getattr(extractor, p) for p in params if hasattr(extractor, p)}
    fitted = cls(**{**kwargs, **wanted})
    logging.getLogger(__name__).warning(
        "model %r: its feature extractor declares %s; the model takes %s: using the model's",
        name, {k: a for k, (a, _b) in changed.items()}, {k: b for k, (_a, b) in changed.items()},
    )
    return fitted, changed


class WindowedEncoder(Encoder):
    """Base class: subclasses set ``window_step``, ``window_context`` and define
    ``forward_rows(rows) -> [[n_layers, kept_j, dim], ...]`` for a list of windows of any lengths
    (each ``<= window_step + window_context`` samples), returning only each window's frames over
    real audio.

    Attributes (besides :class:`~bioprobe.encoders.Encoder`'s):
        window_step: samples between the starts of consecutive windows.
        window_context: samples a window reads beyond its step (0 for Whisper, 240 for AST).
        frames_per_step: output frames per ``hop_samples`` of audio (1 for Whisper; for AST the
            number of patch tokens per time position, one per frequency band).
    """

    window_step: int
    window_context: int = 0
    frames_per_step: int = 1
    # Every window is padded to the model's window on its own by the feature extractor, and the
    # model mixes nothing across the rows of a batch: windows of clips of any length share a pass.
    masked_batching = True

    def forward(self, wave):
        """``wave [batch, samples]`` -> ``[n_layers, batch, frames, dim]``: every window's real frames, in order."""
        import torch

        spans = window_spans(int(wave.shape[1]), self.window_step, self.window_context, self.min_input_samples)
        outs = [self.forward_window(wave[:, start:end]) for start, end in spans]
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)

    def forward_masked(self, waves):
        """Clips of unequal length in one pass: every window of every clip is one row of the batch.

        ``waves``: 1-D tensors. Returns ``(out [n_layers, B, T, dim], n_frames [B])``, each clip's
        frames (its windows' frames in time order, as :meth:`forward`) first, zeros after.
        """
        import torch

        rows, owner = [], []
        for i, wave in enumerate(waves):
            for start, end in window_spans(int(wave.shape[0]), self.window_step, self.window_context, self.min_input_samples):
                rows.append(wave[start:end])
                owner.append(i)
        frames = self.forward_rows(rows)  # [n_layers, kept_j, dim] per window
        per_clip = [torch.cat([f for f, o in zip(frames, owner) if o == i], dim=1) for i in range(len(waves))]
        n_frames = torch.tensor([int(f.shape[1]) for f in per_clip], dtype=torch.long)
        out = per_clip[0].new_zeros((self.n_layers, len(waves), int(n_frames.max()), self.dim))
        for i, f in enumerate(per_clip):
            out[:, i, : f.shape[1]] = f
        return out.float(), n_frames

    def forward_window(self, wave):
        """``wave [B, m]`` (one window each) -> ``[n_layers, B, kept, dim]``: :meth:`forward_rows` stacked."""
        import torch

        return torch.stack(self.forward_rows(list(wave)), dim=1)

    def feature_inputs(self, rows):
        """Rows (1-D tensors, any lengths) as float32 numpy arrays for a transformers feature extractor."""
        return [row.detach().float().cpu().numpy() for row in rows]
