"""Judge every clip of a dataset before any step uses it: rejected, accepted with a warning, or fine.

The ``audit`` rule (one per dataset) runs :func:`run_audit` on the clip list. Each source file
is opened once and decoded once, in blocks (a long multichannel recording is never whole in
memory); every clip of the file is judged from statistics gathered over its own frames.

Rejected (the clip cannot be embedded; ``on_bad_audio`` decides what happens):

* ``missing``: the file does not exist below the dataset's root;
* ``unreadable``: libsndfile cannot open it (not audio, unknown or corrupt header);
* ``zero-length``: the file is empty (0 bytes) or holds 0 frames;
* ``truncated``: the header promises more audio than the file holds, or decoding fails part way
  (every clip of that file is rejected: what is left of it cannot be trusted);
* ``non-finite``: NaN or infinite samples in the clip's frames;
* ``outside the file``: start/end past the end of the file (an end up to
  :data:`bioprobe.audio.END_TOLERANCE_S` past it is cut at the end, as the resampler does);
* ``empty``: the segment holds no sample of the file, or (``empty at {rate} Hz``) so few that
  resampling leaves none.

Accepted with a warning (features are finite but may mean little; listed in the warnings file):

* ``silent``: every sample is 0 (peak normalisation leaves it at 0, it divides by no zero);
* ``near-silent``: peak below :data:`NEAR_SILENT_DBFS`;
* ``DC-only``: a constant offset, its variation below :data:`NEAR_SILENT_DBFS`;
* ``channels cancel``: averaging the channels to mono removes most of the energy
  (phase-inverted stereo), mono energy :data:`CANCEL_DB` or more below the channels';
* ``shorter than the receptive field``: under :data:`RECEPTIVE_FIELD_SAMPLES` samples at 16 kHz
  (one frame of the study's models); the embed step repeat-pads every clip to
  ``embed.min_samples`` (5000 by default), so the model does see a whole frame.

``on_bad_audio: fail`` (the default) stops with one error that names every bad file and why;
``skip`` writes the accepted clips and goes on. Either way ``rejected.csv`` lists what was
rejected (a header only when nothing was) and nothing is dropped silently.
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .audio import BLOCK_FRAMES, AudioError, confined_path, iter_blocks, open_audio, segment_bounds

log = logging.getLogger("bioprobe.audit")

POLICIES = ("fail", "skip")
#: A clip whose peak (or, for DC-only, whose variation) is below this level is near-silent.
NEAR_SILENT_DBFS = -60.0
#: Mono energy this many dB below the channels' mean energy: the channels cancel.
CANCEL_DB = -30.0
#: One frame of HuBERT/wav2vec2/WavLM/AVES: 400 samples at 16 kHz (25 ms).
RECEPTIVE_FIELD_SAMPLES = 400
RECEPTIVE_FIELD_RATE = 16000
#: At most this many rejections and warnings are repeated in the log (the CSVs hold all).
LOG_LISTED = 50

REJECTED_COLUMNS = ("path", "clip_id", "reason")
WARNING_COLUMNS = ("path", "clip_id", "warning")


class BadAudioError(ValueError):
    """``on_bad_audio: fail`` and some clips were rejected; the message names every bad file."""


@dataclass
class _Stats:
    """Running statistics of one clip's frames (source rate, before down-mixing and after)."""

    start: int
    end: int
    n_out: int = 0  # samples at the target rate, as the resampler will cut them
    frames: int = 0
    nonfinite: int = 0
    peak: float = 0.0  # over all channels
    mono_mean: float = 0.0
    mono_m2: float = 0.0  # sum of squared deviations of the mono signal
    mono_energy: float = 0.0
    channel_energy: float = 0.0  # mean over channels of the sum of squares

    def add(self, block: np.ndarray) -> None:
        finite = np.isfinite(block)
        if not finite.all():
            self.nonfinite += int((~finite.all(axis=1)).sum())
            block = np.where(finite, block, np.float32(0))
        n = block.shape[0]
        if n == 0:
            return
        mono = block.mean(axis=1, dtype=np.float64)
        self.peak = max(self.peak, float(block.max()), -float(block.min()))
        mean = float(mono.mean())
        m2 = float(np.square(mono - mean).sum())
        total = self.frames + n
        delta = mean - self.mono_mean
        self.mono_m2 += m2 + delta * delta * self.frames * n / total
        self.mono_mean += delta * n / total
        self.frames = total
        self.mono_energy += float(np.dot(mono, mono))
        # float32 products summed per channel: ample precision for a -30 dB threshold
        self.channel_energy += float(np.einsum("ij,ij->j", block, block).astype(np.float64).mean())


@dataclass
class AuditResult:
    """What :func:`audit_clips` found: the accepted rows, and a row per rejection and warning."""

    accepted: object  # pandas DataFrame: the accepted rows of the clip list, in its order
    rejected: list[dict] = field(default_factory=list)  # path, clip_id, reason
    warnings: list[dict] = field(default_factory=list)  # path, clip_id, warning
    n_clips: int = 0
    n_files: int = 0

    def rejected_frame(self):
        import pandas as pd

        return pd.DataFrame(self.rejected, columns=list(REJECTED_COLUMNS))

    def warnings_frame(self):
        import pandas as pd

        return pd.DataFrame(self.warnings, columns=list(WARNING_COLUMNS))

    def bad_files(self) -> dict[str, list[str]]:
        """``{path: [distinct reasons]}`` of every file with a rejected clip, in clip-list order."""
        out: dict[str, list[str]] = {}
        for row in self.rejected:
            reasons = out.setdefault(row["path"], [])
            if row["reason"] not in reasons:
                reasons.append(row["reason"])
        return out

    def summary(self) -> str:
        n_rej, n_warn = len(self.rejected), len({w["clip_id"] for w in self.warnings})
        return (f"{self.n_clips} clips in {self.n_files} files: {self.n_clips - n_rej} accepted "
                f"({n_warn} with a warning), {n_rej} rejected from {len(self.bad_files())} files")


def _dbfs(value: float) -> str:
    return f"{20 * math.log10(value):.0f} dBFS" if value > 0 else "-inf dBFS"


#: libsndfile's log lines for a header whose audio size exceeds the file: ``data`` (WAV), ``SSND``
#: (AIFF), ``Data Size`` (AU) and ``riff`` (W64; WAV's ``RIFF`` line is left out, as streaming
#: recorders often leave it wrong over complete audio), as ``<chunk> : <declared> (should be <held>)``.
DECLARED_BYTES = re.compile(r"^\s*(?:data|SSND|Data Size|riff)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
#: RF64 states its frame count in the ds64 chunk; libsndfile logs a shortfall as below.
DECLARED_FRAMES = re.compile(r"Calculated frame count (\d+) does not match value from 'ds64' chunk of (\d+)")


def _declared_truncation(snd) -> str | None:
    """The header's audio size when it exceeds what the file holds (libsndfile's log of WAV, AIFF, AU, W64, RF64).

    libsndfile then opens the file with the frames that are there: without this check a truncated
    recording would be used, cut short, as if whole.
    """
    info = getattr(snd, "extra_info", "") or ""
    match = DECLARED_BYTES.search(info)
    if match and int(match.group(1)) > int(match.group(2)):
        return f"truncated: the header declares {match.group(1)} bytes of audio, the file holds {match.group(2)}"
    match = DECLARED_FRAMES.search(info)
    if match and int(match.group(2)) > int(match.group(1)):
        return f"truncated: the header declares {match.group(2)} frames, the file holds {match.group(1)}"
    return None


def judge_clip(stats: _Stats, channels: int, sr: int, sample_rate: int) -> tuple[str | None, list[str]]:
    """``(reason it is rejected or None, warnings)`` for one clip's statistics."""
    if stats.nonfinite:
        return f"non-finite: {stats.nonfinite} of {stats.frames} frames hold NaN or infinite samples", []
    if stats.frames == 0:
        return f"empty: the segment holds no sample at the file's {sr} Hz", []
    n_out = stats.n_out
    if n_out <= 0:
        return (f"empty at {sample_rate} Hz: {stats.frames} frames at {sr} Hz leave no sample after resampling"), []
    warnings = []
    field_out = RECEPTIVE_FIELD_SAMPLES * sample_rate // RECEPTIVE_FIELD_RATE
    if n_out < field_out:
        warnings.append(f"shorter than the receptive field: {n_out} samples at {sample_rate} Hz, a model frame "
                        f"is {field_out}; repeat-padded to embed.min_samples")
    near = 10 ** (NEAR_SILENT_DBFS / 20)
    ac_rms = math.sqrt(max(stats.mono_m2, 0.0) / stats.frames)
    if stats.peak == 0:
        warnings.append("silent: every sample is 0 (its features describe silence; peak normalisation leaves it at 0)")
    elif stats.peak < near:
        warnings.append(f"near-silent: peak {_dbfs(stats.peak)}, below {NEAR_SILENT_DBFS:.0f} dBFS")
    elif ac_rms < near and abs(stats.mono_mean) >= near:
        warnings.append(f"DC-only: a constant offset of {stats.mono_mean:.3g}, its variation {_dbfs(ac_rms)} (rms)")
    elif channels > 1 and stats.channel_energy > 0:
        ratio = stats.mono_energy / stats.channel_energy
        if ratio < 10 ** (CANCEL_DB / 10):
            level = f"{10 * math.log10(ratio):.0f} dB" if ratio > 0 else "-inf dB"
            warnings.append(f"channels cancel: the mono mix is {level} below the channels "
                            f"(phase-inverted channels?); the models see the mono mix")
    return None, warnings


def _samples_out(n_frames: int, sr: int, sample_rate: int, start, end) -> int:
    """The clip's length at ``sample_rate`` as :func:`bioprobe.audio.resample_manifest` cuts it (0: none).

    soxr makes ``round(n_frames * sample_rate / sr)`` samples of a file; the clip is cut from
    them with the same bounds rule as at the source rate.
    """
    n = int(round(n_frames * sample_rate / sr))
    try:
        s, e = segment_bounds(n, sample_rate, start, end, "") if n else (0, 0)
    except AudioError:
        return 0
    return max(0, e - s)


def _judge_file(path: Path, clips: list[tuple[str, object, object]], sample_rate: int, block_frames: int):
    """``{clip_id: (reason or None, warnings)}`` for the clips ``(clip_id, start, end)`` of one file."""
    def every(reason: str):
        return {cid: (reason, []) for cid, _s, _e in clips}

    if not path.is_file():
        return every("missing: no such file")
    if path.stat().st_size == 0:
        return every("zero-length: the file is empty (0 bytes)")
    try:
        snd = open_audio(path)
    except AudioError as err:
        return every(f"unreadable: {str(err).split(': ', 1)[-1]}")
    with snd:
        sr, n_frames, channels = int(snd.samplerate), int(snd.frames), int(snd.channels)
        if n_frames == 0:
            return every("zero-length: the file holds no audio (0 frames)")
        truncated = _declared_truncation(snd)
        if truncated:
            return every(truncated)
        verdicts, active = {}, []
        for cid, start, end in clips:
            try:
                s, e = segment_bounds(n_frames, sr, start, end, "")
            except AudioError as err:
                verdicts[cid] = (f"outside the file: {str(err).lstrip(': ')}", [])
                continue
            active.append((cid, _Stats(s, e, _samples_out(n_frames, sr, sample_rate, start, end))))
        active.sort(key=lambda item: item[1].start)
        pos, done = 0, 0
        try:
            for block in iter_blocks(snd, path, block_frames):
                stop = pos + block.shape[0]
                for _cid, st in active:
                    if st.start < stop and st.end > pos:
                        st.add(block[max(st.start, pos) - pos : min(st.end, stop) - pos])
                pos = stop
                done = pos
        except AudioError as err:
            return every(f"truncated: {str(err).split(': ', 1)[-1]}")
        if done < n_frames:
            return every(f"truncated: the header says {n_frames} frames, {done} could be decoded")
    for cid, st in active:
        verdicts[cid] = judge_clip(st, channels, sr, sample_rate)
    return verdicts


def audit_clips(clips, audio_root, sample_rate: int = 16000, block_frames: int = BLOCK_FRAMES,
                progress: bool = False) -> AuditResult:
    """Judge every clip of ``clips`` (a DataFrame with ``clip_id, path`` and optional ``start, end``).

    Each file is read once. Paths leaving ``audio_root`` are an error whatever the policy.
    """
    root = Path(audio_root)
    has_times = "start" in clips.columns and "end" in clips.columns
    by_file: dict[str, list[tuple[str, object, object]]] = {}
    for rec in clips.to_dict("records"):
        start, end = (rec["start"], rec["end"]) if has_times else (None, None)
        by_file.setdefault(str(rec["path"]), []).append((str(rec["clip_id"]), start, end))
    verdicts: dict[str, tuple[str | None, list[str]]] = {}
    from tqdm import tqdm

    for rel, file_clips in tqdm(by_file.items(), disable=not progress, desc="audit", unit="file", mininterval=2.0):
        verdicts.update(_judge_file(confined_path(root, rel), file_clips, sample_rate, block_frames))
    result = AuditResult(accepted=None, n_clips=len(clips), n_files=len(by_file))
    keep = []
    for rec in clips.to_dict("records"):
        cid, rel = str(rec["clip_id"]), str(rec["path"])
        reason, warnings = verdicts[cid]
        keep.append(reason is None)
        if reason is not None:
            result.rejected.append({"path": rel, "clip_id": cid, "reason": reason})
        result.warnings += [{"path": rel, "clip_id": cid, "warning": w} for w in warnings]
    result.accepted = clips[np.asarray(keep, dtype=bool)].reset_index(drop=True)
    return result


def policy_for(config: dict, dataset: str) -> str:
    """``on_bad_audio`` of ``dataset``: its own entry's, else the top level's, else ``fail``."""
    return (config.get("datasets", {}).get(dataset) or {}).get("on_bad_audio") or config.get("on_bad_audio") or "fail"


def failure_message(result: AuditResult, dataset: str) -> str:
    """One message naming every bad file (path and reason) and how to go on without them."""
    bad = result.bad_files()
    lines = [f"dataset {dataset!r}: {len(result.rejected)} of {result.n_clips} clips in {len(bad)} of "
             f"{result.n_files} audio files cannot be used (on_bad_audio: fail):"]
    for path, reasons in bad.items():
        lines.append(f"  {path}: {'; '.join(reasons)}")
    lines.append("Fix or remove these files, or set on_bad_audio: skip (top level or in the dataset's entry; "
                 "on the command line: --config on_bad_audio=skip) to go on without them; the skipped clips "
                 "are listed in rejected.csv.")
    return "\n".join(lines)


def run_audit(dataset: str, clips_csv, audio_root, accepted_out, rejected_out, warnings_out,
              policy: str = "fail", sample_rate: int = 16000) -> AuditResult:
    """The audit rule: judge ``clips_csv``; write the accepted clips, ``rejected.csv`` and the warnings.

    With ``policy == "fail"`` and any clip rejected, raises :class:`BadAudioError` (nothing is
    written). All three files are written atomically; each always has its header.
    """
    import pandas as pd

    from .fileio import write_csv

    if policy not in POLICIES:
        raise ValueError(f"on_bad_audio must be one of {', '.join(POLICIES)}, got {policy!r}")
    clips = pd.read_csv(clips_csv, dtype={"clip_id": str, "path": str}, keep_default_na=False)
    for column in ("clip_id", "path"):
        if column not in clips.columns:
            raise ValueError(f"{clips_csv}: missing column {column!r}")
    for column in ("start", "end"):
        if column in clips.columns:
            clips[column] = pd.to_numeric(clips[column].replace("", float("nan")))
    result = audit_clips(clips, audio_root, sample_rate=sample_rate, progress=bool(os.environ.get("BIOPROBE_PROGRESS")))
    log.info("audit of %s: %s", dataset, result.summary())
    for kind, rows, key in (("rejected", result.rejected, "reason"), ("warning", result.warnings, "warning")):
        for row in rows[:LOG_LISTED]:
            log.warning("%s %s (clip %s): %s", kind, row["path"], row["clip_id"], row[key])
        if len(rows) > LOG_LISTED:
            log.warning("... and %d more (all in %s)", len(rows) - LOG_LISTED,
                        rejected_out if kind == "rejected" else warnings_out)
    if result.rejected and policy == "fail":
        raise BadAudioError(failure_message(result, dataset))
    if result.accepted.empty:
        raise BadAudioError(f"dataset {dataset!r}: every clip was rejected; nothing is left to embed\n"
                            + failure_message(result, dataset))
    write_csv(rejected_out, result.rejected_frame())
    write_csv(warnings_out, result.warnings_frame())
    write_csv(accepted_out, result.accepted)
    return result


def rejected_footnote(rejected_csvs: dict) -> str:
    """A footnote for the result tables: per dataset, how many clips the audit rejected.

    ``rejected_csvs`` maps each dataset to its ``rejected.csv``.
    """
    import pandas as pd

    parts = []
    for dataset, path in rejected_csvs.items():
        n = len(pd.read_csv(path))
        files = pd.read_csv(path)["path"].nunique() if n else 0
        parts.append(f"{dataset}: {n} clip(s) rejected by the audit" + (f" ({files} file(s), listed in {path})" if n else ""))
    return "Audio audit (on_bad_audio): " + "; ".join(parts) + "." if parts else ""


def add_footnote(markdown_path, note: str) -> None:
    """Append ``note`` as a last paragraph to a Markdown file, atomically (nothing when empty)."""
    from pathlib import Path

    from .fileio import write_text

    if note:
        text = Path(markdown_path).read_text().rstrip("\n")
        write_text(markdown_path, f"{text}\n\n{note}\n")
