"""Audio loading, down-mixing and resampling to one HDF5 file per dataset.

Decoding uses soundfile (libsndfile: WAV, FLAC, OGG, MP3); resampling uses soxr by default
(a well-kept, fast, band-limited resampler whose output does not depend on torch's version),
or torchaudio's windowed-sinc resampler on request. The resampler and its version are
recorded in the output file, since embeddings change with the resampler.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

from . import __version__
from .store import AudioWriter

RESAMPLERS = ("soxr_hq", "soxr_vhq", "torchaudio_sinc")

# A segment whose end lies this far past the end of its file is cut at the end of the file;
# further past is an error (annotation times are rounded, files are not).
END_TOLERANCE_S = 0.05


class AudioError(ValueError):
    """Bad input audio; the message names the file (and clip) and what is wrong."""


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Decode a whole file to float32 ``[frames, channels]`` and its sample rate."""
    import soundfile as sf

    try:
        wave, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises LibsndfileError, RuntimeError, TypeError...
        raise AudioError(f"{path}: cannot decode audio ({err})") from err
    return wave, int(sr)


def to_mono(wave: np.ndarray) -> np.ndarray:
    """Average the channels of ``[frames, channels]`` (or pass 1-D audio through)."""
    if wave.ndim == 1:
        return wave.astype(np.float32, copy=False)
    return wave.mean(axis=1, dtype=np.float32)


def resample(wave: np.ndarray, sr_in: int, sr_out: int, method: str = "soxr_hq") -> np.ndarray:
    """Resample mono float32 audio from ``sr_in`` to ``sr_out`` Hz."""
    if method not in RESAMPLERS:
        raise ValueError(f"unknown resampler {method!r}; choose one of {', '.join(RESAMPLERS)}")
    wave = np.ascontiguousarray(wave, dtype=np.float32)
    if sr_in == sr_out or wave.size == 0:
        return wave
    if method.startswith("soxr"):
        import soxr

        quality = "VHQ" if method == "soxr_vhq" else "HQ"
        return soxr.resample(wave, sr_in, sr_out, quality=quality).astype(np.float32, copy=False)
    import torch
    import torchaudio.functional as AF

    out = AF.resample(torch.from_numpy(wave), int(sr_in), int(sr_out))
    return out.numpy().astype(np.float32, copy=False)


def resampler_version(method: str) -> str:
    if method.startswith("soxr"):
        import soxr

        return f"soxr {soxr.__version__}"
    import torchaudio

    return f"torchaudio {torchaudio.__version__}"


def cut_segment(wave: np.ndarray, sr: int, start, end, where: str) -> np.ndarray:
    """Cut ``[start, end)`` seconds out of mono ``wave``; empty start/end mean the file's edges."""
    n = wave.shape[0]
    duration = n / sr
    s = 0.0 if _missing(start) else float(start)
    e = duration if _missing(end) else float(end)
    if s < 0 or e <= s:
        raise AudioError(f"{where}: bad segment times start={start} end={end}")
    if s >= duration:
        raise AudioError(f"{where}: segment starts at {s:.3f} s but the file lasts {duration:.3f} s")
    if e > duration + END_TOLERANCE_S:
        raise AudioError(f"{where}: segment ends at {e:.3f} s but the file lasts {duration:.3f} s")
    return wave[int(round(s * sr)) : min(n, int(round(e * sr)))]


def _missing(value) -> bool:
    return value is None or value == "" or (isinstance(value, float) and np.isnan(value))


def check_clip(wave: np.ndarray, where: str) -> None:
    """Reject audio that no model should see: empty, or not finite."""
    if wave.size == 0:
        raise AudioError(f"{where}: the clip is empty (0 samples after resampling)")
    if not np.isfinite(wave).all():
        raise AudioError(f"{where}: the clip contains NaN or infinite samples")


def resample_manifest(manifest_csv, audio_root, out_h5, sample_rate: int = 16000, resampler: str = "soxr_hq", progress: bool = True) -> int:
    """Decode, down-mix and resample every clip of a manifest into one ragged HDF5 file.

    Each source file is decoded and resampled once, however many clips (segments) it holds:
    clips are written grouped by file, in order of the file's first appearance in the
    manifest and, within a file, in manifest order (for manifests whose rows are already
    grouped by file, that is the manifest order). Segments are cut at the target rate from
    the resampled recording, so neighbouring calls share no resampling edge effects.
    Returns the number of clips written.
    """
    import pandas as pd

    manifest = pd.read_csv(manifest_csv, dtype={"clip_id": str, "path": str}, keep_default_na=False)
    for column in ("clip_id", "path"):
        if column not in manifest.columns:
            raise AudioError(f"{manifest_csv}: missing column {column!r}")
    root = Path(audio_root)
    by_file: OrderedDict[str, list[int]] = OrderedDict()
    for i, rel in enumerate(manifest["path"]):
        by_file.setdefault(rel, []).append(i)

    attrs = {
        "sample_rate": int(sample_rate),
        "resampler": resampler,
        "resampler_version": resampler_version(resampler),
        "downmix": "mean of channels",
        "source_manifest": str(manifest_csv),
        "bioprobe_version": __version__,
    }
    bar = _progress(len(manifest), progress, "resample")
    has_times = "start" in manifest.columns and "end" in manifest.columns
    with AudioWriter(out_h5, attrs=attrs) as writer:
        for rel, rows in by_file.items():
            path = root / rel
            if not path.is_file():
                raise AudioError(f"{path}: file listed in {manifest_csv} does not exist")
            wave, sr = read_audio(path)
            if wave.shape[0] == 0:
                raise AudioError(f"{path}: the file holds no audio (0 samples)")
            wave = resample(to_mono(wave), sr, sample_rate, resampler)
            for i in rows:
                row = manifest.iloc[i]
                where = f"{path} (clip {row['clip_id']})"
                clip = cut_segment(wave, sample_rate, row["start"], row["end"], where) if has_times else wave
                check_clip(clip, where)
                writer.append(str(row["clip_id"]), clip, manifest_row=i)
                bar.update(1)
    bar.close()
    return len(manifest)


def _progress(total: int, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="clip", mininterval=2.0)
