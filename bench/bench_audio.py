"""Benchmark of the audit and resample steps on one long multichannel recording (not a test).

Writes a WAV of ``--minutes`` minutes, ``--channels`` channels at ``--rate`` Hz, 16-bit (the
issue's case: 2 hours, 8 channels, 48 kHz, 5.5 GB) into ``--dir``, then runs, each in a fresh
Python process, the audit (every clip judged) and the resampling to 16 kHz mono HDF5 of a clip
list holding the whole recording and ten 5-second calls cut from it. Prints, per step, the wall
time and the peak resident memory (``ru_maxrss``) above the same process after its imports.
Everything it wrote is deleted at the end (``--keep`` keeps the WAV).

    python bench/bench_audio.py                                  # 2 h x 8 ch x 48 kHz, 5.5 GB in /tmp
    python bench/bench_audio.py --minutes 10 --dir /scratch      # quicker

Run from the repository root (or with bioprobe installed).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WORKFLOW = Path(__file__).resolve().parents[1] / "workflow"

# Runs in a child process: imports first, then the peak above them is the step's own.
CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
import numpy, pandas, soundfile, soxr, h5py, tqdm
from bioprobe.audio import resample_manifest
from bioprobe.audit import run_audit
step, clips, root, out = sys.argv[2:6]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
if step == "audit":
    result = run_audit("bench", clips, root, out + "/accepted.csv", out + "/rejected.csv", out + "/warnings.csv")
    extra = {"rejected": len(result.rejected), "warnings": len(result.warnings)}
else:
    extra = {"clips": resample_manifest(clips, root, out + "/audio16k.h5", progress=False)}
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"step": step, "seconds": round(seconds, 1), "baseline_mb": round(base / 1024),
                  "peak_mb": round(peak / 1024), "growth_mb": round((peak - base) / 1024), **extra}))
"""


def write_long_wav(path: Path, minutes: float, channels: int = 8, rate: int = 48000, subtype: str = "PCM_16") -> int:
    """Write a long WAV block by block (tones in noise, a different pitch per channel); return its frames.

    A RIFF WAV cannot hold more than 4 GiB (32-bit sizes): longer ones are written as RF64, the
    64-bit WAV that recorders switch to (same ``.wav`` name, read the same way by libsndfile).
    """
    import soundfile as sf

    frames = int(round(minutes * 60 * rate))
    fmt = "RF64" if frames * channels * 2 > (1 << 32) - 1024 else "WAV"
    second = np.arange(rate) / rate
    rng = np.random.default_rng(0)
    block = np.stack([0.3 * np.sin(2 * np.pi * (200 + 150 * c) * second) for c in range(channels)], axis=1)
    block = (block + 0.05 * rng.standard_normal(block.shape)).astype(np.float32)
    with sf.SoundFile(str(path), "w", samplerate=rate, channels=channels, subtype=subtype, format=fmt) as out:
        written = 0
        while written < frames:
            n = min(rate, frames - written)
            out.write(block[:n])
            written += n
    return frames


def write_clip_list(path: Path, wav_name: str, seconds: float) -> None:
    rows = ["clip_id,path,start,end", f"whole,{wav_name},,"]
    for i in range(10):
        start = (i + 0.5) * seconds / 11
        rows.append(f"call{i},{wav_name},{start:.3f},{start + 5:.3f}")
    path.write_text("\n".join(rows) + "\n")


def measure(step: str, clips: Path, root: Path, out: Path) -> dict:
    """Run one step in a fresh process; return its JSON line (seconds, baseline/peak/growth MB)."""
    done = subprocess.run([sys.executable, "-c", CHILD, str(WORKFLOW), step, str(clips), str(root), str(out)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{step} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=120.0)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--rate", type=int, default=48000)
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where the WAV and outputs are written")
    parser.add_argument("--keep", action="store_true", help="keep the WAV")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench_audio_", dir=args.dir))
    try:
        wav = work / "long.wav"
        t0 = time.perf_counter()
        write_long_wav(wav, args.minutes, args.channels, args.rate)
        report = {"minutes": args.minutes, "channels": args.channels, "rate": args.rate,
                  "wav_gb": round(wav.stat().st_size / 1e9, 2), "write_seconds": round(time.perf_counter() - t0, 1)}
        clips = work / "clips.csv"
        write_clip_list(clips, wav.name, args.minutes * 60)
        for step in ("audit", "resample"):
            report[step] = measure(step, clips, work, work)
        print(json.dumps(report))
        return report
    finally:
        if args.keep:
            for p in work.iterdir():
                if p.name != "long.wav":
                    p.unlink()
            print(f"kept {work / 'long.wav'}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
