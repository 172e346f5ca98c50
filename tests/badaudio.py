"""A set of broken and unusual audio files, made by hand, and what the audit should say of each.

Used by tests/test_audit.py (the library) and tests/test_workflow_badaudio.py (a ``folder``
dataset through the workflow). Each entry: the file (relative path), the CSV row's start/end
(seconds, "" for the whole file) and the expected verdict: ``ok``, ``warn:<kind>`` or
``reject:<kind>``, where kind is the start of the warning or reason.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def tone(sr: int, seconds: float, freq: float = 440.0, channels: int = 1, amp: float = 0.5) -> np.ndarray:
    n = max(1, int(round(sr * seconds)))
    t = np.arange(n) / sr
    freq = min(freq, sr / 4)
    wave = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    # each channel slightly different, none cancelling
    return np.stack([wave * (1 - 0.1 * c) for c in range(channels)], axis=1)


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def make_corpus(root: str | Path) -> list[tuple[str, object, object, str]]:
    """Write the files below ``root``; return ``[(path, start, end, expected)]``, one per clip."""
    root = Path(root)
    (root / "odd").mkdir(parents=True, exist_ok=True)
    (root / "broken").mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, object, object, str]] = []

    def wav(rel, wave, sr, expected, start="", end="", **kw):
        sf.write(root / rel, wave, sr, **kw)
        rows.append((rel, start, end, expected))

    # formats and bit depths
    for subtype in ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"):
        wav(f"odd/{subtype.lower()}.wav", tone(22050, 0.5), 22050, "ok", subtype=subtype)
    wav("odd/tone.flac", tone(44100, 0.5, channels=2), 44100, "ok")
    wav("odd/tone.ogg", tone(32000, 0.6), 32000, "ok", format="OGG", subtype="VORBIS")
    wav("odd/tone.mp3", tone(24000, 0.6, channels=2), 24000, "ok", format="MP3", subtype="MPEG_LAYER_III")
    # channel counts and sample rates
    for channels in (3, 8):
        wav(f"odd/ch{channels}.wav", tone(48000, 0.4, channels=channels), 48000, "ok")
    wav("odd/sr600.wav", tone(600, 2.0, freq=100), 600, "ok")
    wav("odd/sr384k.wav", tone(384000, 0.2, freq=5000, channels=2), 384000, "ok", subtype="PCM_24")
    # segments of a longer recording: one fine, one starting past the end, one ending far past it
    rec = tone(16000, 2.0)
    sf.write(root / "odd/recording.wav", rec, 16000)
    rows += [("odd/recording.wav", 0.5, 1.0, "ok"),
             ("odd/recording.wav", 2.5, 3.0, "reject:outside the file"),
             ("odd/recording.wav", 1.5, 4.0, "reject:outside the file")]
    # quiet and odd content: accepted with a warning
    wav("odd/silent.wav", np.zeros((8000, 1), np.float32), 16000, "warn:silent")
    wav("odd/near_silent.wav", tone(16000, 0.5, amp=1e-4), 16000, "warn:near-silent", subtype="FLOAT")
    wav("odd/dc.wav", np.full((8000, 1), 0.25, np.float32), 16000, "warn:DC-only")
    left = tone(16000, 0.5)[:, 0]
    wav("odd/cancel.wav", np.stack([left, -left], axis=1), 16000, "warn:channels cancel")
    wav("odd/short.wav", tone(48000, 0.005), 48000, "warn:shorter than the receptive field")
    # broken: rejected
    (root / "broken/not_audio.wav").write_text("this is not audio\n" * 20)
    rows.append(("broken/not_audio.wav", "", "", "reject:unreadable"))
    (root / "broken/empty.wav").write_bytes(b"")
    rows.append(("broken/empty.wav", "", "", "reject:zero-length"))
    wav("broken/no_frames.wav", np.zeros((0, 1), np.float32), 16000, "reject:zero-length")
    sf.write(root / "broken/truncated.wav", tone(16000, 1.0), 16000)
    _truncate(root / "broken/truncated.wav")
    rows.append(("broken/truncated.wav", "", "", "reject:truncated"))
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, (64000, 1)).astype(np.float32)
    sf.write(root / "broken/truncated.flac", noise, 16000)
    _truncate(root / "broken/truncated.flac")
    rows.append(("broken/truncated.flac", "", "", "reject:truncated"))
    nan = tone(16000, 0.5)
    nan[100:200] = np.nan
    wav("broken/nan.wav", nan, 16000, "reject:non-finite", subtype="FLOAT")
    inf = tone(16000, 0.5, channels=2)
    inf[300, 1] = np.inf
    wav("broken/inf.wav", inf, 16000, "reject:non-finite", subtype="FLOAT")
    wav("broken/one_frame.wav", tone(384000, 1 / 384000), 384000, "reject:empty at 16000 Hz")
    return rows


def bad_files(rows) -> set[str]:
    """The files with at least one rejected clip."""
    return {path for path, _s, _e, expected in rows if expected.startswith("reject:")}
