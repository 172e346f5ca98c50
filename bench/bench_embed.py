"""Benchmark of the embed step (not a test): throughput, overhead over the bare model, memory.

Uses a full-size HuBERT-base architecture with random weights (``HubertConfig()``, 94M
parameters, nothing downloaded), run through the real ``random_init`` code path. Prints:

1. clips/s and real-time factor (compute seconds per audio second) of the embed step;
2. the embed step's time divided by the bare model forward time over the same audio and the
   same batches (target <= 1.10: preparation, pooling and checks should cost little);
3. peak memory while embedding one long recording (default 30 minutes) in chunks;
4. with ``--variable``, only this: a variable-length set (``--clips`` clips, lengths log-uniform
   between ``--min-seconds`` 0.3 and ``--max-seconds`` 30) embedded three ways, interleaved over
   ``--repeats`` rounds: ``batching: masked`` (length buckets, one masked transformer pass),
   ``batching: equal_length`` (batches of exactly equal length) and one clip at a time; prints
   each one's time and the ratios, and the largest difference of the masked features from the
   one-at-a-time ones (exactness at full size).
5. with ``--breakdown``, only this: for ``--batch-size`` clips of each of ``--lengths``, the
   time of the CNN front end and of the transformer encoder, run one clip at a time and as one
   batch (where batching pays on this device, and where it does not).
6. with ``--max-layers``: the bare forward time when the model runs only up to block k
   (``max_layer: k``), and the time saved per block dropped.

    python bench/bench_embed.py                      # CPU (or CUDA when available)
    python bench/bench_embed.py --device cuda --long-minutes 30
    python bench/bench_embed.py --skip-long --clips-per-length 4   # quick
    python bench/bench_embed.py --variable --clips 24 --device cpu
    python bench/bench_embed.py --variable --clips 512 --device cuda --json-out gpu_variable.json   # GPU
    python bench/bench_embed.py --breakdown --lengths 0.5 2 8 25 --batch-size 8 --device cpu
    python bench/bench_embed.py --skip-long --max-layers 0 3 6 9 12   # + time saved per block dropped

Run from the repository root (or with bioprobe installed).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

SR = 16000


def build_encoder(work: Path, device: str, max_layer: int | None = None):
    """HuBERT-base with seeded random weights, through load_encoder's random_init path."""
    from transformers import HubertConfig

    from bioprobe.encoders import load_encoder

    arch = work / "hubert_base_config"
    HubertConfig().save_pretrained(arch)  # config.json only
    mcfg = {"source": "random_init", "of": str(arch), "seed": 0}
    if max_layer is not None:
        mcfg["max_layer"] = max_layer
    return load_encoder("hubert_base_random", mcfg, work / "cache", device=device)


def synthetic_clips(lengths_s, per_length: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(int(s * SR))).astype(np.float32) for s in lengths_s for _ in range(per_length)]


def synchronize(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_embed_step(encoder, clips, opts) -> float:
    from bioprobe.embed import embed_waves

    synchronize(encoder.device)
    start = time.perf_counter()
    feats, _ = embed_waves(encoder, lambda i: clips[i], [len(c) for c in clips], [f"c{i}" for i in range(len(clips))], opts)
    synchronize(encoder.device)
    assert np.isfinite(feats).all()
    return time.perf_counter() - start


def time_bare_forward(encoder, clips, opts) -> float:
    """The model alone on the same batches: no preparation, pooling, checks or copies."""
    import torch

    from bioprobe.batching import plan_batches

    lengths = [max(len(c), opts["min_samples"]) for c in clips]
    batches = plan_batches(lengths, opts["batch_size"], int(opts["max_batch_seconds"] * SR), int(opts["chunk_seconds"] * SR))
    tensors = [torch.from_numpy(np.stack([np.resize(clips[i], lengths[i]) for i in b])).to(encoder.device) for b in batches]
    synchronize(encoder.device)
    start = time.perf_counter()
    with torch.inference_mode():
        for wave in tensors:
            encoder.model(wave, output_hidden_states=True)
    synchronize(encoder.device)
    return time.perf_counter() - start


def throughput(args) -> dict:
    import torch

    from bioprobe.embed import embed_options

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        encoder = build_encoder(Path(tmp), args.device)
    # equal-length batches: the bare forward below runs the same batches (equal lengths here anyway)
    opts = embed_options({"batch_size": args.batch_size, "precision": args.precision, "batching": "equal_length"})
    clips = synthetic_clips(args.lengths, args.clips_per_length)
    audio_s = sum(len(c) for c in clips) / SR
    warm = synthetic_clips([1.0], 1, seed=1)
    time_embed_step(encoder, warm, opts)  # first-call costs (allocator, kernels) out of the figures
    embed_times, bare_times = [], []
    for _ in range(args.repeats):  # interleaved, so that load from other processes hits both alike
        embed_times.append(time_embed_step(encoder, clips, opts))
        bare_times.append(time_bare_forward(encoder, clips, opts))
    embed_s, bare_s = min(embed_times), min(bare_times)
    return {
        "device": str(encoder.device),
        "threads": torch.get_num_threads(),
        "precision": args.precision,
        "clips": len(clips),
        "clip_seconds": args.lengths,
        "batch_size": args.batch_size,
        "audio_seconds": round(audio_s, 1),
        "embed_seconds": round(embed_s, 2),
        "bare_forward_seconds": round(bare_s, 2),
        "clips_per_second": round(len(clips) / embed_s, 2),
        "real_time_factor": round(embed_s / audio_s, 4),
        "embed_over_bare_forward": round(embed_s / bare_s, 3),
    }


def log_uniform_clips(n: int, low_s: float, high_s: float, seed: int = 0) -> list[np.ndarray]:
    """``n`` noise clips whose lengths are log-uniform between ``low_s`` and ``high_s`` seconds."""
    rng = np.random.default_rng(seed)
    seconds = np.exp(rng.uniform(np.log(low_s), np.log(high_s), size=n))
    return [(0.1 * rng.standard_normal(int(s * SR))).astype(np.float32) for s in seconds]


VARIABLE_MODES = {  # name -> embed: options
    "masked": {"batching": "masked"},
    "equal_length": {"batching": "equal_length"},
    "one_at_a_time": {"batching": "equal_length", "batch_size": 1},
}


def variable_lengths(args) -> dict:
    """Masked vs equal-length batching vs one clip at a time on clips of log-uniform lengths."""
    import torch

    from bioprobe.embed import embed_options, embed_waves

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        encoder = build_encoder(Path(tmp), args.device)
    clips = log_uniform_clips(args.clips, args.min_seconds, args.max_seconds)
    lengths, ids = [len(c) for c in clips], [f"c{i}" for i in range(len(clips))]
    audio_s = sum(lengths) / SR
    base = {"batch_size": args.batch_size, "precision": args.precision, "length_ratio": args.length_ratio}
    if args.max_batch_seconds is not None:
        base["max_batch_seconds"] = args.max_batch_seconds
    opts = {mode: embed_options({**base, **extra}) for mode, extra in VARIABLE_MODES.items()}
    time_embed_step(encoder, synthetic_clips([1.0, 1.3], 2, seed=1), opts["masked"])  # warm-up
    times: dict[str, list[float]] = {mode: [] for mode in VARIABLE_MODES}
    cpu_times: dict[str, list[float]] = {mode: [] for mode in VARIABLE_MODES}
    feats, batches = {}, {}
    for _ in range(args.repeats):  # interleaved, so that load from other processes hits all alike
        for mode in VARIABLE_MODES:
            synchronize(encoder.device)
            start, start_cpu = time.perf_counter(), time.process_time()
            feats[mode], stats = embed_waves(encoder, lambda i: clips[i], lengths, ids, opts[mode])
            synchronize(encoder.device)
            times[mode].append(round(time.perf_counter() - start, 2))
            cpu_times[mode].append(round(time.process_time() - start_cpu, 2))
            batches[mode] = stats["n_batches"]
    best = {mode: min(t) for mode, t in times.items()}
    best_cpu = {mode: min(t) for mode, t in cpu_times.items()}
    scale = float(np.abs(feats["one_at_a_time"]).max())
    return {
        "device": str(encoder.device),
        "threads": torch.get_num_threads(),
        "precision": args.precision,
        "clips": len(clips),
        "clip_seconds": f"log-uniform {args.min_seconds}-{args.max_seconds}",
        "audio_seconds": round(audio_s, 1),
        "batch_size": args.batch_size,
        "length_ratio": args.length_ratio,
        "max_batch_seconds": opts["masked"]["max_batch_seconds"],
        "n_batches": batches,
        "seconds_per_repeat": times,
        "process_cpu_seconds_per_repeat": cpu_times,  # this process's CPU time: less sensitive to other load
        "real_time_factor": {mode: round(t / audio_s, 4) for mode, t in best.items()},
        "masked_over_equal_length_speedup": round(best["equal_length"] / best["masked"], 3),
        "masked_over_one_at_a_time_speedup": round(best["one_at_a_time"] / best["masked"], 3),
        "equal_length_over_one_at_a_time_speedup": round(best["one_at_a_time"] / best["equal_length"], 3),
        "cpu_time_masked_over_equal_length": round(best_cpu["equal_length"] / best_cpu["masked"], 3),
        "cpu_time_masked_over_one_at_a_time": round(best_cpu["one_at_a_time"] / best_cpu["masked"], 3),
        "masked_vs_one_at_a_time_max_abs_diff_over_max_abs": float(np.abs(feats["masked"] - feats["one_at_a_time"]).max() / scale),
    }


def long_recording(args) -> dict:
    """Embed one long recording in chunks; report the peak memory (run in a fresh process)."""
    import torch

    from bioprobe.embed import embed_options, embed_waves

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        encoder = build_encoder(Path(tmp), args.device)
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    wave = (0.1 * np.random.default_rng(0).standard_normal(int(args.long_minutes * 60 * SR))).astype(np.float32)
    opts = embed_options({"chunk_seconds": args.chunk_seconds, "precision": args.precision})
    if encoder.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(encoder.device)
    start = time.perf_counter()
    feats, stats = embed_waves(encoder, lambda i: wave, [len(wave)], ["long"], opts)
    elapsed = time.perf_counter() - start
    out = {
        "device": str(encoder.device),
        "recording_minutes": args.long_minutes,
        "chunk_seconds": args.chunk_seconds,
        "frames": stats["n_frames"],
        "seconds": round(elapsed, 1),
        "real_time_factor": round(elapsed / (len(wave) / SR), 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_after_model_load_mb": round(rss_loaded, 1),
        "audio_array_mb": round(wave.nbytes / 2**20, 1),
        "finite": bool(np.isfinite(feats).all()),
    }
    if encoder.device.type == "cuda":
        out["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated(encoder.device) / 2**20, 1)
    return out


def layer_savings(args) -> dict:
    """Bare forward time with ``max_layer`` k for each k of ``--max-layers``, and the time saved per
    transformer block dropped (least-squares slope of time against k)."""
    import torch

    from bioprobe.embed import embed_options

    torch.set_num_threads(args.threads)
    opts = embed_options({"batch_size": args.batch_size, "precision": args.precision})
    clips = synthetic_clips(args.lengths, args.clips_per_length)
    audio_s = sum(len(c) for c in clips) / SR
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        encoders = {k: build_encoder(Path(tmp), args.device, max_layer=k) for k in args.max_layers}
    for encoder in encoders.values():
        time_bare_forward(encoder, synthetic_clips([1.0], 1, seed=1), opts)  # warm-up
    for _ in range(args.repeats):  # interleaved; the fastest counts
        for k, encoder in encoders.items():
            times[k] = min(times.get(k, float("inf")), time_bare_forward(encoder, clips, opts))
    ks = np.array(sorted(times), dtype=float)
    slope = float(np.polyfit(ks, [times[int(k)] for k in ks], 1)[0]) if len(ks) > 1 else float("nan")
    full = times[max(times)]
    return {
        "device": str(next(iter(encoders.values())).device),
        "threads": torch.get_num_threads(),
        "audio_seconds": round(audio_s, 1),
        "forward_seconds_by_max_layer": {int(k): round(t, 3) for k, t in sorted(times.items())},
        "share_of_full_by_max_layer": {int(k): round(t / full, 3) for k, t in sorted(times.items())},
        "seconds_saved_per_block_dropped": round(slope, 4),
        "share_saved_per_block_dropped": round(slope / full, 4),
    }


def batch_breakdown(args) -> dict:
    """Seconds of the CNN front end and of the encoder, one clip at a time vs one batch, per length."""
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model = build_encoder(Path(tmp), args.device).model
    device = next(model.parameters()).device

    def best(run) -> float:
        times = []
        for _ in range(max(args.repeats, 1) + 1):  # the first round warms up
            synchronize(device)
            start = time.perf_counter()
            run()
            synchronize(device)
            times.append(time.perf_counter() - start)
        return round(min(times[1:]), 4)

    rows = []
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for seconds in args.lengths:
            waves = torch.randn(args.batch_size, int(seconds * SR), generator=generator).to(device)
            hidden = model.feature_projection(model.feature_extractor(waves).transpose(1, 2))
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden
            row = {
                "seconds": seconds,
                "clips": args.batch_size,
                "cnn_one_at_a_time": best(lambda: [model.feature_extractor(waves[i : i + 1]) for i in range(len(waves))]),
                "cnn_batched": best(lambda: model.feature_extractor(waves)),
                "encoder_one_at_a_time": best(lambda: [model.encoder(hidden[i : i + 1]) for i in range(len(hidden))]),
                "encoder_batched": best(lambda: model.encoder(hidden)),
            }
            row["encoder_batching_speedup"] = round(row["encoder_one_at_a_time"] / row["encoder_batched"], 3)
            row["cnn_batching_speedup"] = round(row["cnn_one_at_a_time"] / row["cnn_batched"], 3)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return {"device": str(device), "threads": torch.get_num_threads(), "rows": rows}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--lengths", type=float, nargs="+", default=[2.0, 4.0, 6.0], help="clip lengths (s)")
    parser.add_argument("--clips-per-length", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=None, help="default 8 (throughput), 16 (--variable)")
    parser.add_argument("--repeats", type=int, default=2, help="timed repeats; the fastest counts")
    parser.add_argument("--long-minutes", type=float, default=30.0)
    parser.add_argument("--chunk-seconds", type=float, default=120.0)
    parser.add_argument("--skip-long", action="store_true")
    parser.add_argument("--variable", action="store_true", help="only the variable-length batching benchmark")
    parser.add_argument("--clips", type=int, default=24, help="--variable: number of clips (the size of the set)")
    parser.add_argument("--min-seconds", type=float, default=0.3)
    parser.add_argument("--max-seconds", type=float, default=30.0)
    parser.add_argument("--length-ratio", type=float, default=1.25, help="--variable: embed.length_ratio of masked batching")
    parser.add_argument("--max-batch-seconds", type=float, default=None,
                        help="--variable: embed.max_batch_seconds (padded audio per batch; default: the embed step's)")
    parser.add_argument("--json-out", help="--variable: also write the figures to this JSON file")
    parser.add_argument("--breakdown", action="store_true",
                        help="only the CNN/encoder times one clip at a time vs batched, per --lengths")
    parser.add_argument("--max-layers", type=int, nargs="+", default=None,
                        help="also time the bare forward with max_layer k for each k (e.g. 0 3 6 9 12)")
    parser.add_argument("--long-only", action="store_true",
                        help="only the long-recording figure (peak memory of one --long-minutes recording), as JSON")
    args = parser.parse_args(argv)
    if args.device == "auto":
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.long_only:
        print(json.dumps(long_recording(args)))
        return 0
    if args.breakdown:
        args.batch_size = args.batch_size or 8
        batch_breakdown(args)
        return 0
    if args.variable:
        args.batch_size = args.batch_size or 16  # the embed step's default
        result = variable_lengths(args)
        print("variable lengths:", json.dumps(result, indent=2), flush=True)
        if args.json_out:
            Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n")
        return 0
    args.batch_size = args.batch_size or 8
    if args.max_layers:
        print("max_layer:", json.dumps(layer_savings(args), indent=2), flush=True)
    print("throughput:", json.dumps(throughput(args), indent=2), flush=True)
    if not args.skip_long:
        # A fresh process, so that the peak RSS is the long recording's alone.
        cmd = [sys.executable, __file__, "--long-only", "--device", args.device, "--threads", str(args.threads),
               "--long-minutes", str(args.long_minutes), "--chunk-seconds", str(args.chunk_seconds), "--precision", args.precision]
        result = subprocess.run(cmd, capture_output=True, text=True, check=True)
        print("long recording:", json.dumps(json.loads(result.stdout.strip().splitlines()[-1]), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
