"""The HDF5 layouts of the workflow: resampled audio and pooled per-layer embeddings.

Audio file (``results/{dataset}/audio16k.h5``)::

    /clip_id   [n]        utf-8 strings, grouped by source file (see resample_manifest)
    /manifest_row [n]     int64, each clip's row in the manifest (its order for study batching)
    /offsets   [n + 1]    int64; clip i is samples[offsets[i]:offsets[i+1]]
    /samples   [total]    float32 mono, concatenated (chunked, so reads of one clip are cheap)
    attrs: sample_rate, resampler, resampler_version, ... (provenance)

One ragged array is used instead of one HDF5 dataset per clip: 70,000 tiny datasets make
slow metadata; one contiguous array with offsets reads any clip with a single slice.

Embedding file (``results/{dataset}/embeddings/{model}.h5``)::

    /features  [n, n_layers, dim]  float32 (or float16 on request), pooled per layer
    /clip_id   [n]                 utf-8 strings, same order as the audio file
    /frames/{clip_id} [n_layers, n_frames, hidden]  float16, only when frame-level is on
    attrs: model, source, revision, pooling, sample_rate, library versions, ...
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Mapping

import h5py
import numpy as np

from .fileio import atomic_path, pause_after_first_write

STR = h5py.string_dtype(encoding="utf-8")


def _attr_value(value):
    """Return an HDF5-storable attribute value (nested structures become JSON text)."""
    if value is None:
        return "null"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, Path):
        return str(value)
    return value


def set_attrs(obj: h5py.HLObject, attrs: Mapping) -> None:
    for key, value in attrs.items():
        obj.attrs[key] = _attr_value(value)


def get_attrs(obj: h5py.HLObject) -> dict:
    out = {}
    for key, value in obj.attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        if isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


class AudioWriter:
    """Append clips to a ragged HDF5 audio file, written atomically on :meth:`close`.

    Use as a context manager; if the block raises, nothing is left at ``path``.
    """

    def __init__(self, path: str | os.PathLike, attrs: Mapping | None = None, chunk: int = 1 << 18):
        self.path = Path(path)
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._h5 = h5py.File(self._tmp, "w")
        self._samples = self._h5.create_dataset(
            "samples", shape=(0,), maxshape=(None,), dtype="float32", chunks=(chunk,)
        )
        self._offsets = [0]
        self._ids: list[str] = []
        self._rows: list[int | None] = []
        self._seen: set[str] = set()
        self.attrs = dict(attrs or {})

    def append(self, clip_id: str, wave: np.ndarray, manifest_row: int | None = None) -> None:
        self.append_blocks(clip_id, [wave], manifest_row)

    def append_blocks(self, clip_id: str, blocks: Iterable[np.ndarray], manifest_row: int | None = None) -> None:
        """Append one clip given as consecutive mono blocks (a long clip never has to be whole in memory)."""
        if clip_id in self._seen:
            raise ValueError(f"duplicate clip_id {clip_id!r}")
        end = self._offsets[-1]
        for wave in blocks:
            wave = np.asarray(wave, dtype=np.float32)
            if wave.ndim != 1:
                raise ValueError(f"clip {clip_id!r}: expected mono 1-D audio, got shape {wave.shape}")
            self._samples.resize((end + wave.shape[0],))
            self._samples[end : end + wave.shape[0]] = wave
            end += wave.shape[0]
        self._offsets.append(end)
        if len(self._offsets) == 2:
            self._h5.flush()
            pause_after_first_write("resample")
        self._ids.append(clip_id)
        self._rows.append(manifest_row)
        self._seen.add(clip_id)

    def close(self) -> None:
        self._h5.create_dataset("offsets", data=np.asarray(self._offsets, dtype=np.int64))
        if self._rows and all(r is not None for r in self._rows):
            self._h5.create_dataset("manifest_row", data=np.asarray(self._rows, dtype=np.int64))
        self._h5.create_dataset("clip_id", data=np.asarray(self._ids, dtype=object), dtype=STR)
        set_attrs(self._h5, self.attrs)
        self._h5.close()
        self._ctx.__exit__(None, None, None)

    def abort(self, exc: BaseException) -> None:
        self._h5.close()
        try:
            self._ctx.__exit__(type(exc), exc, exc.__traceback__)
        except BaseException:
            pass

    def __enter__(self) -> "AudioWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.close()
        else:
            self.abort(exc)


class AudioReader:
    """Random access to the clips of a ragged HDF5 audio file."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._h5 = h5py.File(self.path, "r")
        try:
            self.clip_ids: list[str] = [c.decode() if isinstance(c, bytes) else c for c in self._h5["clip_id"][:]]
            self.offsets: np.ndarray = self._h5["offsets"][:]
        except KeyError as err:
            self._h5.close()
            raise ValueError(f"{self.path}: not a bioprobe audio file (missing {err})") from err
        self.lengths: np.ndarray = np.diff(self.offsets)
        self.attrs = get_attrs(self._h5)
        self.sample_rate = int(self.attrs.get("sample_rate", 16000))
        self._index = {c: i for i, c in enumerate(self.clip_ids)}

    def __len__(self) -> int:
        return len(self.clip_ids)

    def __getitem__(self, i: int) -> np.ndarray:
        return self._h5["samples"][self.offsets[i] : self.offsets[i + 1]]

    def span(self, i: int, start: int, end: int) -> np.ndarray:
        """Samples ``start:end`` of clip ``i`` only (long recordings are read chunk by chunk)."""
        base = int(self.offsets[i])
        end = min(int(end), int(self.lengths[i]))
        return self._h5["samples"][base + int(start) : base + end]

    def get(self, clip_id: str) -> np.ndarray:
        return self[self._index[clip_id]]

    def manifest_order(self) -> list[int] | None:
        """Clip indices in manifest order, or None for a file written without ``manifest_row``."""
        if "manifest_row" not in self._h5:
            return None
        return [int(i) for i in np.argsort(self._h5["manifest_row"][:], kind="stable")]

    def close(self) -> None:
        self._h5.close()

    def __enter__(self) -> "AudioReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_embeddings(
    path: str | os.PathLike,
    features: np.ndarray,
    clip_ids: Iterable[str],
    attrs: Mapping | None = None,
    dtype: str = "float32",
    frames: Mapping[str, np.ndarray] | None = None,
) -> None:
    """Write pooled features ``[n, n_layers, dim]`` (and optional frame-level arrays) atomically."""
    clip_ids = list(clip_ids)
    if features.ndim != 3 or features.shape[0] != len(clip_ids):
        raise ValueError(f"features must be [n_clips, n_layers, dim] with n_clips={len(clip_ids)}, got {features.shape}")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.create_dataset("features", data=features.astype(dtype, copy=False), chunks=(min(len(clip_ids), 256) or 1, 1, features.shape[2]))
        h5.flush()
        pause_after_first_write("embed")
        h5.create_dataset("clip_id", data=np.asarray(clip_ids, dtype=object), dtype=STR)
        if frames:
            grp = h5.create_group("frames")
            for cid, arr in frames.items():
                grp.create_dataset(cid, data=np.asarray(arr, dtype=np.float16), chunks=True, compression="gzip")
        set_attrs(h5, dict(attrs or {}))


def read_embeddings(path: str | os.PathLike, layers: Iterable[int] | None = None):
    """Return ``(features [n, n_layers, dim] float32, clip_ids, attrs)``."""
    path = Path(path)
    with h5py.File(path, "r") as h5:
        if "features" not in h5 or "clip_id" not in h5:
            raise ValueError(f"{path}: not a bioprobe embedding file (needs /features and /clip_id)")
        dset = h5["features"]
        feats = dset[:, list(layers), :] if layers is not None else dset[:]
        clip_ids = [c.decode() if isinstance(c, bytes) else c for c in h5["clip_id"][:]]
        attrs = get_attrs(h5)
    return feats.astype(np.float32, copy=False), clip_ids, attrs
