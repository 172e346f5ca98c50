"""Budget dry run: disk size of every embedding file and audio hours per model, before extracting.

    python -m bioprobe.budget --config config.yaml [--results results] [--rtf 0.12]

Clip lengths come from ``results/{dataset}/audio16k.h5`` when resampling is done, else from
``results/{dataset}/clips.csv`` (``start``/``end``, or the audio file's header when ``end`` is
empty). Layer count and width come from the model's cached config when the weights were fetched,
else the base-model shape (13 layers x 768) is assumed and marked so. ``--rtf`` (seconds of
compute per second of audio, see docs/models.md for measured values) adds compute hours.
No torch import: this runs in a second.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Mapping

import numpy as np

from .embed import EMBED_DEFAULTS

BASE_GEOMETRY = {"n_layers": 13, "dim": 768, "hop_samples": 320, "geometry": "assumed (base model)"}
HDF5_OVERHEAD_BYTES = 64 * 1024  # superblock, attributes, chunk index: small and roughly fixed


def _product(values) -> int:
    return int(math.prod(int(v) for v in values))


# Public checkpoints of the families beyond the study's (config.yaml's switched-off block), so
# that their estimate is right before their config is fetched.
PUBLIC_GEOMETRY = {
    "facebook/data2vec-audio-base": {"n_layers": 13, "dim": 768, "hop_samples": 320},
    "microsoft/unispeech-sat-base": {"n_layers": 13, "dim": 768, "hop_samples": 320},
    "facebook/wav2vec2-conformer-rel-pos-large": {"n_layers": 25, "dim": 1024, "hop_samples": 320},
    "openai/whisper-small": {"n_layers": 13, "dim": 768, "hop_samples": 320, "window_samples": 480_000},
    "MIT/ast-finetuned-audioset-10-10-0.4593": {
        "n_layers": 13, "dim": 768, "hop_samples": 1600, "frames_per_hop": 12, "window_samples": 163_840,
    },
}


def _hf_geometry(config: Mapping) -> dict:
    """Layers, width and frame rate from a transformers ``config.json``; windowed families also
    give their window (Whisper 30 s, AST 1024 frames) and AST its patch tokens per time step."""
    if config.get("model_type") == "whisper":
        return {
            "n_layers": int(config["encoder_layers"]) + 1,
            "dim": int(config["d_model"]),
            "hop_samples": 320,
            "window_samples": 2 * int(config.get("max_source_positions", 1500)) * 160,
        }
    if config.get("model_type") == "audio-spectrogram-transformer":
        patch = int(config.get("patch_size", 16))
        return {
            "n_layers": int(config["num_hidden_layers"]) + 1,
            "dim": int(config["hidden_size"]),
            "hop_samples": 160 * int(config.get("time_stride", 10)),
            "frames_per_hop": (int(config.get("num_mel_bins", 128)) - patch) // int(config.get("frequency_stride", 10)) + 1,
            "window_samples": 160 * int(config.get("max_length", 1024)),
        }
    return {
        "n_layers": int(config["num_hidden_layers"]) + 1,
        "dim": int(config["hidden_size"]),
        "hop_samples": _product(config.get("conv_stride", (5, 2, 2, 2, 2, 2, 2))),
    }


def _aves_geometry(config: Mapping) -> dict:
    return {
        "n_layers": int(config["encoder_num_layers"]) + 1,
        "dim": int(config["encoder_embed_dim"]),
        "hop_samples": _product(stride for _c, _k, stride in config["extractor_conv_layer_config"]),
    }


def _cached_config(name: str, cache_dir: Path, key: str) -> dict | None:
    from .weights import read_lock

    lock = read_lock(name, cache_dir)
    if not lock or key not in lock.get("files", {}):
        return None
    path = Path(lock["files"][key]["path"])
    path = path if path.is_absolute() else cache_dir / path
    return json.loads(path.read_text()) if path.exists() else None


def model_geometry(name: str, mcfg: Mapping, cache_dir, models: Mapping | None = None) -> dict:
    """``{n_layers, dim, hop_samples, geometry}`` of a model without loading it."""
    from .models import resolve_architecture
    from .encoders.baselines import FEATURE_DEFAULTS

    cache_dir = Path(cache_dir)
    source = mcfg.get("source")
    if source in ("logmel", "mfcc"):
        params = {k: mcfg.get(k, v) for k, v in FEATURE_DEFAULTS.items()}
        return {
            "n_layers": 3 if params["deltas"] else 1,
            "dim": params["n_mels"] if source == "logmel" else params["n_mfcc"],
            "hop_samples": params["hop_length"],
            "geometry": "from parameters",
        }
    arch = resolve_architecture(name, mcfg, models) if source == "random_init" else mcfg
    hf = arch.get("source") == "huggingface"
    config = _cached_config(name, cache_dir, "config.json" if hf else "config")
    if config is None and hf and Path(str(arch.get("id", ""))).joinpath("config.json").is_file():
        config = json.loads(Path(arch["id"]).joinpath("config.json").read_text())
    if config is None and hf and arch.get("id") in PUBLIC_GEOMETRY:
        return {**PUBLIC_GEOMETRY[arch["id"]], "geometry": "known checkpoint"}
    if config is None:
        return dict(BASE_GEOMETRY)
    return {**(_hf_geometry(config) if hf else _aves_geometry(config)), "geometry": "from config"}


def clip_lengths(dataset: str, dcfg: Mapping, results_dir: Path, data_dir: Path, sample_rate: int) -> tuple[np.ndarray | None, str]:
    """Clip lengths in samples at ``sample_rate`` and where they came from (None if unknown yet)."""
    audio = results_dir / dataset / "audio16k.h5"
    if audio.exists():
        from .store import AudioReader

        with AudioReader(audio) as reader:
            return reader.lengths.astype(np.int64), str(audio)
    manifest = results_dir / dataset / "clips.csv"
    if not manifest.exists():
        return None, "no clip list yet (run the clips rule first: snakemake --until clips)"
    import pandas as pd

    rows = pd.read_csv(manifest)
    start = pd.to_numeric(rows.get("start"), errors="coerce").fillna(0.0).to_numpy()
    end = pd.to_numeric(rows.get("end"), errors="coerce").to_numpy()
    missing = np.isnan(end)
    if missing.any():
        end[missing] = _file_durations(dataset, dcfg, data_dir, rows.loc[missing, "path"])
    seconds = np.clip(end - start, 0, None)
    return np.round(seconds * sample_rate).astype(np.int64), str(manifest)


def _file_durations(dataset: str, dcfg: Mapping, data_dir: Path, paths) -> np.ndarray:
    """Durations (s) of whole-file clips from their headers (NaN where unreadable)."""
    import soundfile

    try:
        from .datasets import audio_root

        root = Path(audio_root(dataset, dcfg, data_dir))
    except Exception:  # the dataset module is not there or the data is not downloaded
        return np.full(len(paths), np.nan)
    out = []
    for rel in paths:
        try:
            out.append(soundfile.info(str(root / rel)).duration)
        except Exception:
            out.append(np.nan)
    return np.asarray(out, dtype=np.float64)


def estimate(config: Mapping, results_dir="results", rtf: float | None = None) -> list[dict]:
    """One row per (dataset, model): clips, audio hours, expected embedding file size."""
    results_dir = Path(results_dir)
    data_dir = Path(config.get("data_dir", "resources/data"))
    cache_dir = Path(config.get("model_cache", "resources/models"))
    embed = {**EMBED_DEFAULTS, **dict(config.get("embed") or {})}
    sample_rate = int((config.get("audio") or {}).get("sample_rate", 16000))
    itemsize = 2 if embed["store_dtype"] == "float16" else 4
    models = config.get("models") or {}
    rows = []
    for dataset, dcfg in (config.get("datasets") or {}).items():
        if not dcfg.get("enabled", True):
            continue
        lengths, origin = clip_lengths(dataset, dcfg, results_dir, data_dir, sample_rate)
        for name, mcfg in models.items():
            geo = model_geometry(name, mcfg, cache_dir, models)
            row = {"dataset": dataset, "model": name, "enabled": bool(mcfg.get("enabled", True)), "lengths_from": origin, **geo}
            if lengths is None:
                rows.append({**row, "n_clips": None, "audio_hours": None, "embedding_bytes": None})
                continue
            known = lengths[lengths >= 0]
            padded = np.maximum(known, int(embed["min_samples"]))
            frames = int(np.sum(padded // geo["hop_samples"])) * geo.get("frames_per_hop", 1)
            pooled = len(known) * geo["n_layers"] * 2 * geo["dim"] * itemsize
            ids = len(known) * 48  # variable-length utf-8 clip ids
            frame_bytes = frames * geo["n_layers"] * geo["dim"] * 2 if embed["frame_level"] else 0
            row.update(
                n_clips=int(len(known)),
                audio_hours=float(np.sum(padded)) / sample_rate / 3600,
                embedding_bytes=int(pooled + ids + frame_bytes + HDF5_OVERHEAD_BYTES),
                frame_level_bytes=int(frame_bytes),
            )
            window = geo.get("window_samples")
            # a windowed model (Whisper, AST) computes whole windows, however short the clip
            row["model_input_hours"] = (
                float(np.sum(-(-padded // window))) * window / sample_rate / 3600 if window else row["audio_hours"]
            )
            if rtf is not None:
                row["compute_hours"] = row["model_input_hours"] * rtf
            rows.append(row)
    return rows


def human_bytes(n: float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TB"


def format_report(rows: list[dict]) -> str:
    """A plain-text table plus totals per model and overall."""
    dw = max([12] + [len(str(r["dataset"])) for r in rows])  # column widths that fit every name
    mw = max([14] + [len(str(r["model"])) for r in rows])
    lines = [f"{'dataset':<{dw}} {'model':<{mw}} {'clips':>8} {'audio h':>9} {'layers x feat':>13} {'embedding file':>15}  notes"]
    for r in rows:
        hours = "?" if r["audio_hours"] is None else f"{r['audio_hours']:.2f}"
        clips = "?" if r["n_clips"] is None else str(r["n_clips"])
        notes = [] if r["n_clips"] is not None else [r["lengths_from"]]
        if not r.get("enabled", True):
            notes.append("disabled (enabled: false): not in totals")
        if r["geometry"].startswith("assumed"):
            notes.append("shape assumed (weights not fetched)")
        if r.get("window_samples") and r["n_clips"] is not None:
            notes.append(f"{r['model_input_hours']:.2f} h of {r['window_samples'] / 16000:g} s windows")
        if r.get("compute_hours") is not None:
            notes.append(f"~{r['compute_hours']:.2f} compute h")
        lines.append(
            f"{r['dataset']:<{dw}} {r['model']:<{mw}} {clips:>8} {hours:>9} {str(r['n_layers']) + ' x ' + str(2 * r['dim']):>13} "
            f"{human_bytes(r['embedding_bytes']):>15}  {'; '.join(notes)}"
        )
    known = [r for r in rows if r["embedding_bytes"] is not None and r.get("enabled", True)]
    lines.append("")
    for model in dict.fromkeys(r["model"] for r in rows if r.get("enabled", True)):
        mine = [r for r in known if r["model"] == model]
        lines.append(
            f"model {model:<{mw}} audio {sum(r['audio_hours'] for r in mine):8.2f} h   embeddings {human_bytes(sum(r['embedding_bytes'] for r in mine)):>10}"
        )
    lines.append(f"total embeddings: {human_bytes(sum(r['embedding_bytes'] for r in known))}")
    if any(r["embedding_bytes"] is None for r in rows):
        lines.append("(datasets marked ? are not prepared yet: their sizes are not counted)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bioprobe.budget", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="config.yaml", help="the study config (default config.yaml)")
    parser.add_argument("--results", default=None, help="results folder (default: the config's results_dir, results)")
    parser.add_argument("--rtf", type=float, default=None, help="compute seconds per audio second, to estimate compute hours")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    args = parser.parse_args(argv)
    from .config import load_config

    config = load_config(args.config)
    rows = estimate(config, args.results or config["results_dir"], args.rtf)
    print(json.dumps(rows, indent=2) if args.json else format_report(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
