"""Audio decoding, down-mixing and resampling to one HDF5 file per dataset, as a stream.

Decoding uses soundfile (libsndfile: WAV 8/16/24/32-bit integer and 32/64-bit float, FLAC, OGG,
MP3); resampling uses soxr by default (a well-kept, fast, band-limited resampler whose output
does not depend on torch's version), or torchaudio's windowed-sinc resampler on request. The
resampler and its version are recorded in the output file, since embeddings change with them.

Long recordings are never held whole: a file is decoded in blocks of :data:`BLOCK_FRAMES`
frames, each block is averaged to mono and fed to soxr's streaming resampler (its output is
bit-identical to resampling the whole file at once), and a file whose resampled audio is longer
than :data:`IN_MEMORY_SAMPLES` is spooled to an unlinked temporary file beside the output, from
which its clips are copied block by block. Peak memory is bounded by the block size and the
in-memory limit, whatever the length and channel count (see bench/bench_audio.py).
``torchaudio_sinc`` has no streaming form: it resamples each file whole.
"""

from __future__ import annotations

import os
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Iterator

import numpy as np

from . import __version__
from .store import AudioWriter

RESAMPLERS = ("soxr_hq", "soxr_vhq", "torchaudio_sinc")

# A segment whose end lies this far past the end of its file is cut at the end of the file;
# further past is an error (annotation times are rounded, files are not).
END_TOLERANCE_S = 0.05

#: Frames decoded at a time (x channels x 4 bytes: 2 MB for 8 channels).
BLOCK_FRAMES = 1 << 16
#: A file whose resampled mono audio has more samples than this is spooled to disk (64 MB).
IN_MEMORY_SAMPLES = 1 << 24


class AudioError(ValueError):
    """Bad input audio; the message names the file (and clip) and what is wrong."""


def open_audio(path: str | os.PathLike):
    """Open ``path`` with soundfile for reading in blocks; :class:`AudioError` naming it if that fails."""
    import soundfile as sf

    try:
        return sf.SoundFile(str(path))
    except Exception as err:  # soundfile raises LibsndfileError, RuntimeError, TypeError...
        raise AudioError(f"{path}: cannot decode audio ({_short(err)})") from err


def _short(err: BaseException) -> str:
    """An error message without the file name soundfile repeats (the caller names the file)."""
    text = str(err)
    if text.startswith("Error opening "):
        text = text.split(": ", 1)[-1]
    return text.strip() or type(err).__name__


def iter_blocks(snd, path, block_frames: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
    """Yield float32 ``[frames, channels]`` blocks of an open soundfile until its end.

    A decoding error part way (a truncated or corrupt file) raises :class:`AudioError` naming
    ``path`` and the frame where decoding stopped.
    """
    done = 0
    while True:
        try:
            block = snd.read(block_frames, dtype="float32", always_2d=True)
        except Exception as err:
            raise AudioError(f"{path}: decoding failed after {done} of {snd.frames} frames, the file is "
                             f"truncated or corrupt ({_short(err)})") from err
        if block.shape[0] == 0:
            return
        done += block.shape[0]
        yield block


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Decode a whole file to float32 ``[frames, channels]`` and its sample rate (short files only)."""
    with open_audio(path) as snd:
        blocks = list(iter_blocks(snd, path))
        wave = np.concatenate(blocks) if blocks else np.zeros((0, snd.channels), np.float32)
        return wave, int(snd.samplerate)


def to_mono(wave: np.ndarray) -> np.ndarray:
    """Average the channels of ``[frames, channels]`` (or pass 1-D audio through)."""
    if wave.ndim == 1:
        return wave.astype(np.float32, copy=False)
    return wave.mean(axis=1, dtype=np.float32)


def resample(wave: np.ndarray, sr_in: int, sr_out: int, method: str = "soxr_hq") -> np.ndarray:
    """Resample mono float32 audio from ``sr_in`` to ``sr_out`` Hz."""
    _check_method(method)
    wave = np.ascontiguousarray(wave, dtype=np.float32)
    if sr_in == sr_out or wave.size == 0:
        return wave
    if method.startswith("soxr"):
        import soxr

        return soxr.resample(wave, sr_in, sr_out, quality=_soxr_quality(method)).astype(np.float32, copy=False)
    import torch
    import torchaudio.functional as AF

    out = AF.resample(torch.from_numpy(wave), int(sr_in), int(sr_out))
    return out.numpy().astype(np.float32, copy=False)


def _check_method(method: str) -> None:
    if method not in RESAMPLERS:
        raise ValueError(f"unknown resampler {method!r}; choose one of {', '.join(RESAMPLERS)}")


def _soxr_quality(method: str) -> str:
    return "VHQ" if method == "soxr_vhq" else "HQ"


def resampled_blocks(blocks, sr_in: int, sr_out: int, method: str = "soxr_hq") -> Iterator[np.ndarray]:
    """Down-mix ``[frames, channels]`` blocks to mono and resample them as a stream (mono float32 blocks).

    With soxr the output equals :func:`resample` of the whole down-mixed file, sample for
    sample; ``torchaudio_sinc`` gathers the file first (it has no streaming form).
    """
    _check_method(method)
    if sr_in == sr_out:
        for block in blocks:
            yield to_mono(block)
        return
    if not method.startswith("soxr"):
        mono = [to_mono(b) for b in blocks]
        yield resample(np.concatenate(mono) if mono else np.zeros(0, np.float32), sr_in, sr_out, method)
        return
    import soxr

    stream = soxr.ResampleStream(sr_in, sr_out, 1, dtype="float32", quality=_soxr_quality(method))
    for block in blocks:
        out = stream.resample_chunk(to_mono(block))
        if out.size:
            yield out
    out = stream.resample_chunk(np.zeros(0, np.float32), last=True)
    if out.size:
        yield out


def resampler_version(method: str) -> str:
    if method.startswith("soxr"):
        import soxr

        return f"soxr {soxr.__version__}"
    import torchaudio

    return f"torchaudio {torchaudio.__version__}"


def segment_bounds(n_frames: int, sr: int, start, end, where: str) -> tuple[int, int]:
    """``[start, end)`` seconds as sample indices into a recording of ``n_frames`` at ``sr`` Hz.

    Empty start/end mean the file's edges; an end up to :data:`END_TOLERANCE_S` past the end of
    the file is cut there; anything else outside the file is an :class:`AudioError`.
    """
    duration = n_frames / sr
    s = 0.0 if _missing(start) else float(start)
    e = duration if _missing(end) else float(end)
    if s < 0 or e <= s:
        raise AudioError(f"{where}: bad segment times start={start} end={end}")
    if s >= duration:
        raise AudioError(f"{where}: segment starts at {s:.3f} s but the file lasts {duration:.3f} s")
    if e > duration + END_TOLERANCE_S:
        raise AudioError(f"{where}: segment ends at {e:.3f} s but the file lasts {duration:.3f} s")
    return int(round(s * sr)), min(n_frames, int(round(e * sr)))


def cut_segment(wave: np.ndarray, sr: int, start, end, where: str) -> np.ndarray:
    """Cut ``[start, end)`` seconds out of mono ``wave``; empty start/end mean the file's edges."""
    s, e = segment_bounds(wave.shape[0], sr, start, end, where)
    return wave[s:e]


def _missing(value) -> bool:
    return value is None or value == "" or (isinstance(value, float) and np.isnan(value))


def check_clip(wave: np.ndarray, where: str) -> None:
    """Reject audio that no model should see: empty, or not finite."""
    if wave.size == 0:
        raise AudioError(f"{where}: the clip is empty (0 samples after resampling)")
    if not np.isfinite(wave).all():
        raise AudioError(f"{where}: the clip contains NaN or infinite samples")


def confined_path(root: Path, rel: str) -> Path:
    """``root / rel``, refusing (``ValueError``) a path that leaves ``root``, through ``..`` or a link."""
    root_resolved = Path(root).resolve()
    full = Path(root) / rel
    if Path(rel).is_absolute() or not full.resolve().is_relative_to(root_resolved):
        raise AudioError(f"{full}: path {rel!r} of the clip list leaves the dataset root {str(root)!r} "
                         f"(absolute, '..' or a link pointing outside)")
    return full


class _Resampled:
    """One file's resampled mono audio: in memory, or spooled to an unlinked file when long."""

    def __init__(self, blocks, expected: int, spool_dir: Path):
        self.n = 0
        self._memory: list[np.ndarray] | None = [] if expected <= IN_MEMORY_SAMPLES else None
        self._spool = None if self._memory is not None else tempfile.TemporaryFile(dir=spool_dir, prefix=".resample-spool-")
        try:
            self._fill(blocks)
        except BaseException:
            self.close()
            raise

    def _fill(self, blocks) -> None:
        for block in blocks:
            if self._memory is not None:
                self._memory.append(block)
            else:
                self._spool.write(np.ascontiguousarray(block, dtype=np.float32).tobytes())
            self.n += block.shape[0]
        if self._memory is not None:
            self._wave = np.concatenate(self._memory) if self._memory else np.zeros(0, np.float32)
            self._memory = None

    def span(self, start: int, end: int, block: int = IN_MEMORY_SAMPLES // 4) -> Iterator[np.ndarray]:
        if self._spool is None:
            yield self._wave[start:end]
            return
        for pos in range(start, end, block):
            count = min(block, end - pos)
            self._spool.seek(pos * 4)
            yield np.frombuffer(self._spool.read(count * 4), dtype=np.float32)

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()


def nonfinite_to_zero(blocks, bad: list[tuple[int, int]]) -> Iterator[np.ndarray]:
    """Pass blocks on with NaN/Inf set to 0, recording the source frames that held them in ``bad``.

    A non-finite sample would spread through the resampling filter into neighbouring clips; the
    clips whose own frames hold one are refused by name (see :func:`resample_manifest`).
    """
    pos = 0
    for block in blocks:
        finite = np.isfinite(block)
        if not finite.all():
            bad.extend((pos + a, pos + b) for a, b in runs(~finite.all(axis=1)))
            block = np.where(finite, block, np.float32(0))
        pos += block.shape[0]
        yield block


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` index ranges of the True runs of a 1-D boolean array."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def resample_manifest(manifest_csv, audio_root, out_h5, sample_rate: int = 16000, resampler: str = "soxr_hq",
                      progress: bool = True) -> int:
    """Decode, down-mix and resample every clip of a clip list into one ragged HDF5 file.

    ``manifest_csv`` has columns ``clip_id, path`` and optionally ``start, end`` (seconds).
    Each source file is decoded and resampled once, as a stream, however many clips (segments)
    it holds: clips are written grouped by file, in order of the file's first appearance and,
    within a file, in row order. Segments are cut at the target rate from the resampled
    recording, so neighbouring calls share no resampling edge effects. Returns the number of
    clips written; any bad clip is an :class:`AudioError` naming the file and clip, leaving no
    output (the ``audit`` rule removes bad clips before this runs).
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
            path = confined_path(root, rel)
            if not path.is_file():
                raise AudioError(f"{path}: file listed in {manifest_csv} does not exist")
            with open_audio(path) as snd:
                sr, n_frames = int(snd.samplerate), int(snd.frames)
                if n_frames == 0:
                    raise AudioError(f"{path}: the file holds no audio (0 samples)")
                spans = {}
                for i in rows:
                    row = manifest.iloc[i]
                    where = f"{path} (clip {row['clip_id']})"
                    start, end = (row["start"], row["end"]) if has_times else ("", "")
                    spans[i] = (where, segment_bounds(n_frames, sr, start, end, where), start, end)
                bad: list[tuple[int, int]] = []
                blocks = resampled_blocks(nonfinite_to_zero(iter_blocks(snd, path), bad), sr, sample_rate, resampler)
                audio = _Resampled(blocks, n_frames * sample_rate // sr + 1, out_h5_dir(out_h5))
            try:
                for i in rows:
                    where, (src_s, src_e), start, end = spans[i]
                    if any(b0 < src_e and src_s < b1 for b0, b1 in bad):
                        raise AudioError(f"{where}: the clip contains NaN or infinite samples")
                    s, e = segment_bounds(audio.n, sample_rate, start, end, where) if audio.n else (0, 0)
                    if e <= s:
                        raise AudioError(f"{where}: the clip is empty (0 samples after resampling)")
                    writer.append_blocks(str(manifest.iloc[i]["clip_id"]), audio.span(s, e), manifest_row=i)
                    bar.update(1)
            finally:
                audio.close()
    bar.close()
    return len(manifest)


def out_h5_dir(out_h5) -> Path:
    folder = Path(out_h5).parent
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _progress(total: int, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="clip", mininterval=2.0)
