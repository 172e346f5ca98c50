"""Synthetic animal calls for the offline demo and the workflow tests.

The calls are a learnable task with the awkward properties of real data: every class is a
harmonic tone with its own fundamental, frequency sweep and amplitude modulation, buried in
noise at a random SNR; clips vary in length (0.12 to 2.5 s), source sample rate (8 to 96 kHz),
channel count (1, 2 or 4), sample format and container (WAV, FLAC), and a quarter of them are segments of
longer recordings addressed by start/end times, like annotated field recordings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .fileio import write_csv

SAMPLE_RATES = (8000, 11025, 16000, 22050, 32000, 44100, 48000, 96000)
INDIVIDUALS = 6


def call_class_params(k: int) -> dict:
    """The acoustic signature of class ``k`` (deterministic)."""
    return {
        "f0": 220.0 + 260.0 * k,  # Hz; stays below 4 kHz (the 8 kHz files' Nyquist) for k < 12
        "sweep": (-1) ** k * (0.1 + 0.05 * (k % 3)),  # relative change of f0 over the call
        "am_hz": 4.0 + 3.0 * (k % 4),
    }


def synth_call(k: int, duration: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One call of class ``k``: float32 mono, ``duration`` seconds at ``sr`` Hz, peak about 0.5."""
    p = call_class_params(k)
    n = max(1, int(round(duration * sr)))
    t = np.arange(n) / sr
    f0 = p["f0"] * (1.0 + rng.normal(0, 0.03))  # individual variation
    inst_f = f0 * (1.0 + p["sweep"] * t / max(duration, 1e-3))
    phase = 2 * np.pi * np.cumsum(inst_f) / sr
    wave = np.zeros(n)
    for h in (1, 2, 3):
        if h * inst_f.max() < 0.45 * sr:
            wave += np.sin(h * phase) / h
    wave *= 0.6 + 0.4 * np.sin(2 * np.pi * p["am_hz"] * t)
    wave *= np.hanning(n) if n > 8 else 1.0
    snr_db = rng.uniform(6, 20)
    noise = rng.normal(0, 1, n) * np.sqrt(np.mean(wave**2) / 10 ** (snr_db / 10) + 1e-12)
    wave = wave + noise
    return (0.5 * wave / (np.abs(wave).max() + 1e-9)).astype(np.float32)


def make_synthetic_calls(out_dir, n_classes: int = 4, clips_per_class: int = 30, seed: int = 0) -> Path:
    """Write synthetic calls and ``labels.csv`` (path,label,group,start,end) into ``out_dir``.

    Returns the path of labels.csv, which is written last.
    """
    import soundfile as sf

    out_dir = Path(out_dir)
    audio_dir = out_dir / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n_classes):
        label = f"call_{chr(ord('a') + k)}"
        for j in range(clips_per_class):
            sr = int(rng.choice(SAMPLE_RATES))
            duration = float(rng.uniform(0.12, 2.5))
            call = synth_call(k, duration, sr, rng)
            channels = int(rng.choice([1, 1, 1, 2, 2, 4]))
            fmt = "flac" if rng.random() < 0.25 else "wav"
            subtype = "PCM_16" if fmt == "flac" or rng.random() < 0.5 else "FLOAT"
            group = f"animal{rng.integers(INDIVIDUALS)}"
            embedded = rng.random() < 0.25
            if embedded:  # a segment of a longer recording, addressed by start/end
                lead, tail = rng.uniform(0.2, 1.0, size=2)
                pad = lambda s: (rng.normal(0, 0.003, int(s * sr))).astype(np.float32)  # noqa: E731
                signal = np.concatenate([pad(lead), call, pad(tail)])
                start, end = round(lead, 4), round(lead + len(call) / sr, 4)
            else:
                signal, start, end = call, "", ""
            # extra channels: attenuated copies, as from a microphone array
            data = np.stack([signal * 0.8**c for c in range(channels)], axis=1) if channels > 1 else signal
            rel = f"audio/{label}_{j:03d}.{fmt}"
            sf.write(out_dir / rel, data, sr, subtype=subtype, format=fmt.upper())
            rows.append({"path": rel, "label": label, "group": group, "start": start, "end": end})
    import pandas as pd

    labels = out_dir / "labels.csv"
    write_csv(labels, pd.DataFrame(rows, columns=["path", "label", "group", "start", "end"]))
    return labels


def make_taped_calls(out_dir, n_classes: int = 4, tapes_per_class: int = 4, clips_per_tape: int = 12,
                     hum: bool = True, confound: float = 0.9, call_gain: float = 0.06, seed: int = 0) -> Path:
    """Calls recorded on "tapes": a set to test the leakage analysis (:mod:`bioprobe.leakage`).

    Each class is the main class of ``tapes_per_class`` tapes: a share ``confound`` of a tape's
    clips are calls of its class, the others calls of the other classes (classes and tapes partly
    confounded, as calls of one recording or one animal). Every clip is a faint call
    (``call_gain``) over background noise. With ``hum``, each tape adds its own hum (a tone at a
    tape-specific frequency with harmonics) and its own noise colour: a layer can then recognise
    the tape, and through it guess the class on a random split, but not on a split grouped by
    tape. Without ``hum`` the tapes sound alike (a clean set). 16 kHz mono WAV, 1 s clips;
    ``labels.csv`` (path,label,group) with group = the tape. Returns the path of labels.csv.
    """
    import pandas as pd
    import soundfile as sf

    sr, duration = 16000, 1.0
    out_dir = Path(out_dir)
    (out_dir / "audio").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_tapes = n_classes * tapes_per_class
    t = np.arange(int(sr * duration)) / sr
    rows = []
    for tape in range(n_tapes):
        main_class = tape % n_classes
        hum_hz = float(rng.uniform(90, 1900))
        cutoff = float(rng.uniform(0.05, 0.6))  # of Nyquist: the tape's noise colour
        hum_phase = rng.uniform(0, 2 * np.pi, size=3)
        n_main = int(round(confound * clips_per_tape))
        others = [k for k in range(n_classes) if k != main_class]
        classes = [main_class] * n_main + [others[j % len(others)] for j in range(clips_per_tape - n_main)]
        for j, k in enumerate(classes):
            call = synth_call(k, duration, sr, rng)
            noise = rng.normal(0, 0.05, len(t))
            if hum:
                spectrum = np.fft.rfft(noise)
                spectrum[int(cutoff * len(spectrum)):] *= 0.1
                noise = np.fft.irfft(spectrum, len(t))
                noise += sum(0.03 / (h + 1) * np.sin(2 * np.pi * hum_hz * (h + 1) * t + hum_phase[h]) for h in range(3))
            wave = (call_gain * call + noise).astype(np.float32)
            rel = f"audio/tape{tape:02d}_{j:02d}.wav"
            sf.write(out_dir / rel, wave, sr, subtype="FLOAT")
            rows.append({"path": rel, "label": f"call_{chr(ord('a') + k)}", "group": f"tape{tape:02d}"})
    labels = out_dir / "labels.csv"
    write_csv(labels, pd.DataFrame(rows, columns=["path", "label", "group"]))
    return labels
