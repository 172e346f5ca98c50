"""Embed every clip of an audio file with one model: all layers, pooled, into one HDF5 file.

Decisions made here (each a small function with a unit test):

* Batching (:mod:`bioprobe.batching`): ``masked`` by default, length buckets run with one masked
  transformer pass; ``equal_length`` as the option and the fallback. Both equal one clip at a
  time; features come out in the clips' own order. ``batching: study_repeat_pad`` reproduces the
  authors' batches instead: ``batch_size`` consecutive clips in manifest order, each
  repeat-padded to the longest of its batch, padding kept in pooling; long clips are cut into
  back-to-back chunks of exactly ``chunk_seconds`` (:func:`study_chunk_spans`).
* Short clips (:func:`prepare_clip`): peak-normalised (optional; a silent clip stays zeros) and
  repeat-padded (tiled) to ``min_samples``, as in the study.
* Long clips (:func:`chunk_spans`, :func:`owned_frames`): embedded in chunks of
  ``chunk_seconds`` with ``chunk_overlap_seconds`` of overlap; a frame seen by two chunks is
  counted once (each chunk owns the frames up to the middle of its overlaps), and pooling is
  streamed across chunks, so memory stays bounded whatever the length.
* Pooling: mean and std over time; std unbiased (``std_ddof: 1``, ``torch.std``) by default.
* Precision: fp32 by default; bf16/fp16 autocast as an option. Pooled features are float32
  (or float16 with ``store_dtype``). NaN/Inf in a model's output is an error naming the clip.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np

from .batching import BATCHINGS, batching_attrs, choose_batching
from .pooling import POOLING, STD_DDOF, StreamingMeanStd, batch_moments, check_ddof, finalize_mean_std, masked_batch_moments

EMBED_DEFAULTS: dict = {
    "batching": "masked",
    "length_ratio": 1.25,
    "std_ddof": STD_DDOF,
    "batch_size": 16,
    "max_batch_seconds": 200.0,
    "min_samples": 5000,
    "peak_normalize": True,
    "chunk_seconds": 120.0,
    "chunk_overlap_seconds": 0.0,
    "precision": "fp32",
    "store_dtype": "float32",
    "frame_level": False,
    "device": "auto",
}
PRECISIONS = ("fp32", "bf16", "fp16")
STORE_DTYPES = ("float32", "float16")
DEVICES = ("auto", "cpu", "cuda")


def embed_options(embed_cfg: Mapping | None) -> dict:
    """The ``embed:`` section with defaults filled in; unknown keys and bad values are errors."""
    embed_cfg = dict(embed_cfg or {})
    unknown = sorted(set(embed_cfg) - set(EMBED_DEFAULTS))
    if unknown:
        raise ValueError(f"embed: unknown option(s) {unknown}; known: {sorted(EMBED_DEFAULTS)}")
    opts = {**EMBED_DEFAULTS, **embed_cfg}

    def positive(key, kind=(int, float)):
        if isinstance(opts[key], bool) or not isinstance(opts[key], kind) or opts[key] <= 0:
            raise ValueError(f"embed: {key} must be a positive number, got {opts[key]!r}")

    positive("batch_size", int)
    ratio = opts["length_ratio"]
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or ratio < 1:
        raise ValueError(f"embed: length_ratio must be a number >= 1, got {ratio!r}")
    positive("max_batch_seconds")
    positive("chunk_seconds")
    if isinstance(opts["min_samples"], bool) or not isinstance(opts["min_samples"], int) or opts["min_samples"] < 0:
        raise ValueError(f"embed: min_samples must be a non-negative integer, got {opts['min_samples']!r}")
    overlap = opts["chunk_overlap_seconds"]
    if not isinstance(overlap, (int, float)) or isinstance(overlap, bool) or not 0 <= overlap < opts["chunk_seconds"]:
        raise ValueError(f"embed: chunk_overlap_seconds must be in [0, chunk_seconds), got {overlap!r}")
    for key in ("peak_normalize", "frame_level"):
        if not isinstance(opts[key], bool):
            raise ValueError(f"embed: {key} must be true or false, got {opts[key]!r}")
    try:
        check_ddof(opts["std_ddof"])
    except ValueError as err:
        raise ValueError(f"embed: {err}") from None
    for key, allowed in (("precision", PRECISIONS), ("store_dtype", STORE_DTYPES), ("batching", tuple(BATCHINGS))):
        if opts[key] not in allowed:
            raise ValueError(f"embed: {key} must be one of {', '.join(allowed)}, got {opts[key]!r}")
    device = str(opts["device"])
    if device not in DEVICES and not device.startswith("cuda:"):
        raise ValueError(f"embed: device must be auto, cpu, cuda or cuda:N, got {device!r}")
    return opts


# ----------------------------------------------------------------------------------------------
# clip preparation, batching, chunking: pure functions


def prepare_clip(wave: np.ndarray, clip_id: str, min_samples: int, peak_normalize: bool, source: str = "", standardize: bool = False) -> np.ndarray:
    """Peak-normalise (optional) and repeat-pad a clip to ``min_samples``; float32 ``[samples]``.

    With ``standardize`` (a checkpoint that declares ``do_normalize``), the padded clip is then
    brought to zero mean and unit variance, as the checkpoint's feature extractor does.
    A silent clip is left at zeros (no division by a zero peak). An empty or non-finite clip is
    an error naming the clip.
    """
    where = f"clip {clip_id!r}" + (f" in {source}" if source else "")
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise ValueError(f"{where}: expected mono 1-D audio, got shape {wave.shape}")
    if wave.size == 0:
        raise ValueError(f"{where}: empty clip (0 samples); it should have been rejected at resampling")
    if not np.isfinite(wave).all():
        raise ValueError(f"{where}: audio contains NaN or Inf samples")
    if peak_normalize:
        peak = float(np.abs(wave).max())
        if peak > 0:
            wave = wave / peak
    if wave.size < min_samples:
        wave = np.resize(wave, min_samples)  # tiles the clip, then cuts at min_samples
    if standardize:
        wave = standardized(wave, float(np.mean(wave, dtype=np.float64)), float(np.var(wave, dtype=np.float64)))
    return wave


STANDARDIZE_EPS = 1e-7  # transformers' zero_mean_unit_var_norm: (x - mean) / sqrt(var + 1e-7)


def standardized(wave: np.ndarray, mean: float, var: float) -> np.ndarray:
    """``(wave - mean) / sqrt(var + 1e-7)`` in float32, as transformers' feature extractors do."""
    return ((wave - mean) / np.sqrt(var + STANDARDIZE_EPS)).astype(np.float32)


def study_chunk_spans(n_samples: int, chunk_samples: int, min_samples: int) -> list[tuple[int, int]]:
    """Back-to-back spans of exactly ``chunk_samples`` (the authors' cut), the last one shorter.

    A last piece shorter than ``min_samples`` joins the one before, as in :func:`chunk_spans`.
    """
    spans = [(start, min(start + chunk_samples, n_samples)) for start in range(0, n_samples, chunk_samples)]
    if len(spans) > 1 and spans[-1][1] - spans[-1][0] < min_samples:
        spans[-2:] = [(spans[-2][0], n_samples)]
    return spans


def chunk_spans(n_samples: int, chunk_samples: int, overlap_samples: int, hop: int, min_samples: int) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` sample spans covering a clip; one span if it fits in one chunk.

    Chunk starts are multiples of ``hop`` so that every chunk's frames sit on the same global
    frame grid. A last chunk shorter than ``min_samples`` is merged into the one before.
    """
    if n_samples <= chunk_samples:
        return [(0, n_samples)]
    step = ((chunk_samples - overlap_samples) // hop) * hop
    if step <= 0:
        raise ValueError(
            f"chunk of {chunk_samples} samples with {overlap_samples} overlap leaves no step of {hop}-sample frames"
        )
    spans = []
    start = 0
    while True:
        end = min(start + chunk_samples, n_samples)
        spans.append((start, end))
        if end >= n_samples:
            break
        start += step
    if len(spans) > 1 and spans[-1][1] - spans[-1][0] < min_samples:
        spans[-2:] = [(spans[-2][0], n_samples)]
    return spans


def owned_frames(spans: Sequence[tuple[int, int]], k: int, hop: int) -> tuple[int, int | None]:
    """Local frame range ``[lo, hi)`` that chunk ``k`` contributes (``hi`` None: to its end).

    Global frame ``g`` (starting at sample ``g * hop``) belongs to the chunk in whose half of
    the overlap it starts, so an overlapping frame is counted exactly once.
    """

    def boundary(prev_end: int, next_start: int) -> int:  # first global frame of the later chunk
        mid2 = next_start + prev_end  # twice the middle of the overlap, in samples
        return -(-mid2 // (2 * hop))

    first = spans[k][0] // hop
    lo = boundary(spans[k - 1][1], spans[k][0]) - first if k > 0 else 0
    hi = boundary(spans[k][1], spans[k + 1][0]) - first if k + 1 < len(spans) else None
    return max(lo, 0), hi


# ----------------------------------------------------------------------------------------------
# running the encoder


def autocast_context(device, precision: str):
    """Autocast for bf16/fp16; fp16 needs CUDA (CPU fp16 autocast is slow and overflow-prone)."""
    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("embed: precision fp16 needs a CUDA device; use bf16 or fp32 on CPU")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def forward_checked(encoder, batch: np.ndarray, clip_ids: Sequence[str], precision: str, source: str = ""):
    """Run ``encoder`` on ``batch [B, samples]``; float32 ``[n_layers, B, frames, dim]`` on its device.

    Non-finite output is an error naming the offending clips.
    """
    return check_output(encoder, run_forward(encoder, batch, precision), clip_ids, precision, source)


def run_forward(encoder, batch: np.ndarray, precision: str):
    """The device side of :func:`forward_checked`: float32 ``[n_layers, B, frames, dim]``, unchecked."""
    import torch

    wave = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(encoder.device)
    with torch.inference_mode(), autocast_context(encoder.device, precision):
        out = encoder.forward(wave)
    return out.float()


def forward_masked_checked(encoder, waves: Sequence[np.ndarray], clip_ids: Sequence[str], precision: str, source: str = ""):
    """Run ``encoder.forward_masked`` on clips of unequal length; ``(out [n_layers, B, T, dim], n_frames [B])``.

    Padded frames are zeros; non-finite output is an error naming the offending clips.
    """
    out, n_frames = run_masked(encoder, waves, precision)
    if bool((n_frames < 1).any()):
        raise RuntimeError(f"model {encoder.name!r}: a clip of the batch {list(clip_ids)} gave no frames")
    return check_output(encoder, out, clip_ids, precision, source), n_frames


def run_masked(encoder, waves: Sequence[np.ndarray], precision: str):
    """The device side of :func:`forward_masked_checked`: ``(out float32, n_frames)``, unchecked."""
    import torch

    tensors = [torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32)).to(encoder.device) for w in waves]
    with torch.inference_mode(), autocast_context(encoder.device, precision):
        out, n_frames = encoder.forward_masked(tensors)
    return out.float(), n_frames


def check_output(encoder, out, clip_ids: Sequence[str], precision: str, source: str = ""):
    """``out [n_layers, B, frames, dim]`` unchanged, or an error naming the clips with NaN/Inf."""
    import torch

    finite = finite_clips(out)
    if not bool(finite.all()):
        bad = [clip_ids[i] for i in torch.nonzero(~finite).flatten().tolist()]
        raise FloatingPointError(
            f"model {encoder.name!r}: NaN/Inf in the output for clip(s) {bad}"
            + (f" of {source}" if source else "")
            + f" (precision {precision}); try precision fp32"
        )
    if out.shape[1] != len(clip_ids) or out.shape[2] == 0:
        raise RuntimeError(f"model {encoder.name!r}: output shape {tuple(out.shape)} for a batch of {len(clip_ids)}")
    return out


def finite_clips(out):
    """``[B]`` bool on ``out``'s device: whether clip ``j`` of ``out [n_layers, B, frames, dim]`` is all finite."""
    import torch

    return torch.isfinite(out).flatten(2).all(dim=2).all(dim=0)


class FrameSpill:
    """Frame-level features spilled to a temporary HDF5 file as they come (bounded memory).

    :meth:`mapping` gives a lazy ``{clip_id: [n_layers, frames, dim] float16}`` view for
    :func:`bioprobe.store.write_embeddings`, which reads one clip at a time.
    """

    def __init__(self, out_h5: Path):
        import h5py

        self.path = out_h5.parent / f".{out_h5.name}.frames-spill.h5"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._h5 = h5py.File(self.path, "w")
        self.order: list[str] = []

    def append(self, clip_id: str, frames) -> None:
        """Append frames ``[n_layers, n, dim]`` (torch or numpy) to clip ``clip_id``."""
        arr = frames.detach().to("cpu").numpy() if hasattr(frames, "detach") else np.asarray(frames)
        arr = arr.astype(np.float16)
        if clip_id not in self._h5:
            self._h5.create_dataset(clip_id, data=arr, maxshape=(arr.shape[0], None, arr.shape[2]), chunks=True)
            self.order.append(clip_id)
            return
        dset = self._h5[clip_id]
        start = dset.shape[1]
        dset.resize(start + arr.shape[1], axis=1)
        dset[:, start:] = arr

    def mapping(self) -> Mapping[str, np.ndarray]:
        spill = self

        class _Lazy(Mapping):
            def __getitem__(self, key):
                return spill._h5[key][()]

            def __iter__(self) -> Iterator[str]:
                return iter(spill.order)

            def __len__(self) -> int:
                return len(spill.order)

        return _Lazy()

    def close(self) -> None:
        self._h5.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def embed_waves(
    encoder,
    get_wave: Callable[[int], np.ndarray],
    lengths: Sequence[int],
    clip_ids: Sequence[str],
    opts: Mapping,
    frame_sink: FrameSpill | None = None,
    progress: bool = False,
    source: str = "",
    get_span: Callable[[int, int, int], np.ndarray] | None = None,
    order: Sequence[int] | None = None,
) -> tuple[np.ndarray, dict]:
    """Pooled features ``[n_clips, n_layers, 2 * dim]`` float32 of every clip, plus run statistics.

    ``get_wave(i)`` returns clip ``i``'s raw samples; ``lengths[i]`` its length. ``opts`` is
    :func:`embed_options`' result. ``get_span(i, start, end)``, if given, reads part of a clip:
    long clips are then read chunk by chunk, so memory stays bounded whatever their length.
    ``order`` (clip indices in manifest order, default as given) sets the batches of
    ``batching: study_repeat_pad``; features are returned in the clips' own order either way.
    """
    from tqdm import tqdm

    sr = encoder.sample_rate
    min_samples = max(int(opts["min_samples"]), encoder.min_input_samples)
    chunk_samples = int(round(opts["chunk_seconds"] * sr))
    if getattr(encoder, "window_step", None):  # a windowed encoder: chunks are whole windows
        chunk_samples = windows_per_chunk(encoder, chunk_samples) * encoder.window_step + encoder.window_context
    standardize = bool(getattr(encoder, "standardize_input", False))
    overlap_samples = int(round(opts["chunk_overlap_seconds"] * sr))
    padded = [max(int(n), min_samples) for n in lengths]
    ddof = int(opts["std_ddof"])
    if order is not None and sorted(order) != list(range(len(clip_ids))):
        raise ValueError(f"embed: the manifest order of {source or 'the clips'} is not a permutation of its {len(clip_ids)} clips")
    batching = choose_batching(opts["batching"], encoder)
    batches = batching.plan(padded, opts, sr, chunk_samples, range(len(clip_ids)) if order is None else order)
    features = np.zeros((len(clip_ids), encoder.n_layers, 2 * encoder.dim), dtype=np.float32)
    stats = {"n_repeat_padded": 0, "n_chunked": 0, "n_batches": len(batches), "n_frames": 0}
    bar = tqdm(total=len(clip_ids), unit="clip", desc=f"embed {encoder.name}", disable=not progress, file=sys.stderr, mininterval=2.0)
    if get_span is None:
        get_span = lambda i, start, end: get_wave(i)[start:end]  # noqa: E731
    for batch in batches:
        ids = [clip_ids[i] for i in batch]
        if padded[batch[0]] > chunk_samples:  # a long clip, alone
            i = batch[0]
            read = LongClipReader(lambda start, end, i=i: get_span(i, start, end), int(lengths[i]), clip_ids[i], opts["peak_normalize"], chunk_samples, source, standardize)
            features[i] = embed_long_clip(encoder, read, ids[0], opts, chunk_samples, overlap_samples, min_samples, frame_sink, source, stats)
            stats["n_chunked"] += 1
            bar.update(1)
            continue
        # each clip's own (tiled) length, or (study_repeat_pad) the longest of its batch
        targets = [max(padded[i] for i in batch)] * len(batch) if batching.pad_to_longest else [padded[i] for i in batch]
        waves = [prepare_clip(get_wave(i), clip_ids[i], t, opts["peak_normalize"], source, standardize) for i, t in zip(batch, targets)]
        stats["n_repeat_padded"] += sum(int(lengths[i]) < t for i, t in zip(batch, targets))
        if batching.masked:  # unequal lengths: one masked pass, each clip's own frames pooled
            out, n_frames = forward_masked_checked(encoder, waves, ids, opts["precision"], source)
            counts, mean, m2 = masked_batch_moments(out, n_frames)  # [B], [B, L, D], [B, L, D]
        else:
            out = forward_checked(encoder, np.stack(waves), ids, opts["precision"], source)  # [L, B, T, D]
            count, mean, m2 = batch_moments(out)  # [B, L, D] each
            counts = np.full(len(batch), count)
        for j, i in enumerate(batch):
            features[i] = finalize_mean_std(int(counts[j]), mean[j], m2[j], ddof)
        stats["n_frames"] += int(counts.sum())
        if frame_sink is not None:
            for j, cid in enumerate(ids):
                frame_sink.append(cid, out[:, j, : int(counts[j])])
        bar.update(len(batch))
    bar.close()
    return features, stats


class LongClipReader:
    """Reads a long clip span by span, checked and normalised like :func:`prepare_clip`.

    The peak (and, with ``standardize``, the whole clip's mean and variance) is found in a first
    pass over blocks, so no more than one block or chunk of the clip is in memory at a time.
    """

    def __init__(self, read_span: Callable[[int, int], np.ndarray], length: int, clip_id: str, peak_normalize: bool, block: int, source: str = "", standardize: bool = False):
        self.read_span = read_span
        self.length = length
        self.where = f"clip {clip_id!r}" + (f" in {source}" if source else "")
        self.peak = 0.0  # 0: leave samples as they are (no normalisation, or a silent clip)
        self.moments: tuple[float, float] | None = None  # (mean, variance) of the normalised clip
        if peak_normalize or standardize:
            total, squares = 0.0, 0.0
            for start in range(0, length, block):
                wave = self._checked(start, min(start + block, length)).astype(np.float64)
                self.peak = max(self.peak, float(np.abs(wave).max())) if peak_normalize else 0.0
                total, squares = total + float(wave.sum()), squares + float(np.square(wave).sum())
            if standardize:
                scale = self.peak if self.peak > 0 else 1.0
                mean = total / length
                self.moments = (mean / scale, max(squares / length - mean * mean, 0.0) / scale**2)

    def _checked(self, start: int, end: int) -> np.ndarray:
        wave = np.asarray(self.read_span(start, end), dtype=np.float32)
        if not np.isfinite(wave).all():
            raise ValueError(f"{self.where}: audio contains NaN or Inf samples")
        return wave

    def __call__(self, start: int, end: int) -> np.ndarray:
        wave = self._checked(start, end)
        wave = wave / self.peak if self.peak > 0 else wave  # the same division as prepare_clip
        return wave if self.moments is None else standardized(wave, *self.moments)


def windows_per_chunk(encoder, chunk_samples: int) -> int:
    """Whole windows of a windowed encoder (Whisper, AST) in one chunk of ``chunk_samples`` (at least 1)."""
    return max(1, chunk_samples // encoder.window_step)


def embed_long_clip(encoder, read: LongClipReader, clip_id, opts, chunk_samples, overlap_samples, min_samples, frame_sink, source, stats) -> np.ndarray:
    """Pooled ``[n_layers, 2 * dim]`` of one long clip, embedded chunk by chunk (streamed pooling)."""
    hop = encoder.hop_samples
    windowed = bool(getattr(encoder, "window_step", None))
    study = opts["batching"] == "study_repeat_pad"
    if windowed:  # chunks of whole windows, no overlap: the same windows as in one pass
        from .encoders.windowed import window_spans

        per_chunk = windows_per_chunk(encoder, chunk_samples)
        spans = window_spans(read.length, encoder.window_step, encoder.window_context, encoder.min_input_samples, per_chunk)
    elif study:  # the authors' cut: back to back, every chunk's frames concatenated
        spans = study_chunk_spans(read.length, chunk_samples, min_samples)
    else:
        spans = chunk_spans(read.length, chunk_samples, overlap_samples, hop, min_samples)
    acc = StreamingMeanStd(int(opts["std_ddof"]))
    for k, (start, end) in enumerate(spans):
        out = forward_checked(encoder, read(start, end)[None], [clip_id], opts["precision"], source)
        lo, hi = (0, None) if (windowed or study) else owned_frames(spans, k, hop)
        kept = out[:, 0, lo:hi]  # [L, frames owned by this chunk, D]
        acc.update(kept)
        if frame_sink is not None and kept.shape[1]:
            frame_sink.append(clip_id, kept)
    if acc.count == 0:
        raise RuntimeError(f"clip {clip_id!r}: chunking produced no frames")
    stats["n_frames"] += acc.count
    return acc.result()


# ----------------------------------------------------------------------------------------------
# the workflow's entry point


def library_versions() -> dict:
    import torch
    import torchaudio

    from . import __version__

    versions = {"bioprobe_version": __version__, "torch_version": str(torch.__version__), "torchaudio_version": str(torchaudio.__version__)}
    try:
        import transformers

        versions["transformers_version"] = transformers.__version__
    except ImportError:
        versions["transformers_version"] = None
    versions["numpy_version"] = np.__version__
    return versions


def chunking_attrs(encoder, opts: Mapping) -> dict:
    """How long clips were cut: chunks with overlap, or (windowed encoders) whole windows."""
    if getattr(encoder, "window_step", None):
        per_chunk = windows_per_chunk(encoder, int(round(opts["chunk_seconds"] * encoder.sample_rate)))
        return {
            "chunk_seconds": per_chunk * encoder.window_step / encoder.sample_rate,
            "chunk_overlap_seconds": 0.0,
            "windows": f"{encoder.window_step / encoder.sample_rate:g} s windows, {per_chunk} per chunk, no overlap "
            "(chunk_overlap_seconds does not apply)",
        }
    if opts["batching"] == "study_repeat_pad":
        return {
            "chunk_seconds": opts["chunk_seconds"],
            "cut": "back to back at multiples of chunk_seconds, frames concatenated (the authors' code)",
        }
    return {
        "chunk_seconds": opts["chunk_seconds"],
        "chunk_overlap_seconds": opts["chunk_overlap_seconds"],
        "overlap_frames": "counted once, split at the middle of the overlap",
    }


def embedding_attrs(encoder, opts: Mapping, audio_attrs: Mapping, audio_path, stats: Mapping) -> dict:
    """Provenance attributes of an embedding file."""
    sr = encoder.sample_rate
    attrs = {
        **encoder.describe(),
        "pooling": POOLING,
        "std_ddof": int(opts["std_ddof"]),
        "feature_dim": 2 * encoder.dim,
        "sample_rate": sr,
        "min_samples": int(opts["min_samples"]),
        "min_samples_effective": max(int(opts["min_samples"]), encoder.min_input_samples),
        "repeat_padding": "tile",
        "peak_normalize": bool(opts["peak_normalize"]),
        "chunking": chunking_attrs(encoder, opts),
        "precision": opts["precision"],
        "store_dtype": opts["store_dtype"],
        "batching": batching_attrs(encoder, opts),
        "frame_level": bool(opts["frame_level"]),
        "device": str(encoder.device),
        "audio_file": str(audio_path),
        **{k: v for k, v in stats.items()},
        **library_versions(),
    }
    for key, value in audio_attrs.items():
        attrs[f"audio_{key}"] = value
    return attrs


def embed_dataset(
    audio_h5,
    out_h5,
    name: str,
    mcfg: Mapping,
    embed_cfg: Mapping,
    cache_dir,
    threads: int | None = None,
    models: Mapping | None = None,
    progress: bool = True,
) -> None:
    """Embed every clip of ``audio_h5`` with model ``name`` and write ``out_h5`` atomically.

    ``mcfg`` is the model's config entry, ``embed_cfg`` the ``embed:`` section, ``cache_dir``
    the model cache filled by :func:`bioprobe.weights.fetch_weights`; ``threads`` sets torch's
    CPU threads; ``models`` (the ``models:`` section) resolves ``random_init``'s ``of``.
    Writes ``features [n_clips, n_layers, 2 * dim]`` and ``clip_id`` in the audio file's order.
    """
    import torch

    from .encoders import load_encoder, resolve_device
    from .store import AudioReader, write_embeddings

    opts = embed_options(embed_cfg)
    if threads:
        torch.set_num_threads(int(threads))
    device = resolve_device(str(opts["device"]))
    started = time.perf_counter()
    encoder = load_encoder(name, mcfg, cache_dir, device=device, models=models)
    out_h5 = Path(out_h5)
    spill = FrameSpill(out_h5) if opts["frame_level"] else None
    try:
        with AudioReader(audio_h5) as audio:
            if audio.sample_rate != encoder.sample_rate:
                raise ValueError(f"{audio_h5}: sample rate {audio.sample_rate} Hz, model {name!r} needs {encoder.sample_rate} Hz")
            if len(audio) == 0:
                raise ValueError(f"{audio_h5}: no clips to embed")
            order = audio.manifest_order()
            if opts["batching"] == "study_repeat_pad" and order is None and opts["batch_size"] > 1:
                raise ValueError(
                    f"{audio_h5}: written without manifest_row (an older bioprobe), so the manifest order that "
                    "batching study_repeat_pad needs is unknown; delete it and run the resample step again"
                )
            features, stats = embed_waves(
                encoder, lambda i: audio[i], audio.lengths, audio.clip_ids, opts, spill, progress, str(audio_h5),
                get_span=audio.span,  # slices of one clip, for long recordings
                order=order,
            )
            stats["embed_seconds"] = round(time.perf_counter() - started, 3)
            stats["audio_seconds"] = round(float(np.sum(audio.lengths)) / audio.sample_rate, 3)
            attrs = embedding_attrs(encoder, opts, audio.attrs, os.fspath(audio_h5), stats)
            write_embeddings(
                out_h5, features, audio.clip_ids, attrs, dtype=opts["store_dtype"], frames=spill.mapping() if spill else None
            )
    finally:
        if spill is not None:
            spill.close()
