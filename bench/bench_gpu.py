"""GPU benchmark of the embed step (fp32 and bf16) and of the probes; one JSON file. Not a test.

Run by ``bench/gpu.sh`` on a machine that has only this checkout: no internet, nothing to
install, and of the project's dependencies only torch, torchaudio, transformers, h5py, numpy,
pandas and scikit-learn (no snakemake, soundfile, soxr or jsonschema; nothing imported here
needs them, which tests/test_bench_gpu.py checks). Every input is generated in memory:

* models: random weights with the real-size configs of the study's architectures (HuBERT,
  wav2vec2, WavLM base; AVES's torchaudio HuBERT) and of the new families (data2vec-audio,
  UniSpeech-SAT base, wav2vec2-conformer large, Whisper-small's encoder, AST base), written as
  config files and loaded through the pipeline's own ``random_init`` path;
* audio: 48 clips (16 each of 2, 4 and 8 s) and one 5-minute recording (chunked), noise;
* probes: ``bench/bench_probe.py`` on synthetic pooled features (Watkins size with the study's
  30 epochs and early stopping; IMV size, 1 epoch), on the same device.

For each model and precision: load time, embed time, real-time factor, clips/s, peak GPU
memory; for bf16 also its drift from fp32 on the same clips. A time budget (default 270 s)
skips what would not fit; the JSON says what was skipped. The file is rewritten after every
step, so a run cut short still leaves what it measured.

    python bench/bench_gpu.py --device cuda --out gpu.json
    python bench/bench_gpu.py --device cpu --tiny --out smoke.json   # tiny models: a smoke test
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))

SR = 16000
MISSING_ON_GPU_MACHINE = ("snakemake", "soundfile", "soxr", "jsonschema")
# The torchaudio HuBERT-base arguments of AVES's model_config.json (the real AVES-bio shape).
AVES_BASE = {
    "extractor_mode": "group_norm",
    "extractor_conv_layer_config": [[512, 10, 5]] + [[512, 3, 2]] * 4 + [[512, 2, 2]] * 2,
    "extractor_conv_bias": False,
    "encoder_embed_dim": 768,
    "encoder_projection_dropout": 0.1,
    "encoder_pos_conv_kernel": 128,
    "encoder_pos_conv_groups": 16,
    "encoder_num_layers": 12,
    "encoder_num_heads": 12,
    "encoder_attention_dropout": 0.1,
    "encoder_ff_interm_features": 3072,
    "encoder_ff_interm_dropout": 0.0,
    "encoder_dropout": 0.1,
    "encoder_layer_norm_first": False,
    "encoder_layer_drop": 0.05,
}
# name -> (family, study architecture?)
MODELS = {
    "hubert_base": ("hubert", True),
    "wav2vec2_base": ("wav2vec2", True),
    "wavlm_base": ("wavlm", True),
    "aves_base": ("aves", True),
    "data2vec_audio_base": ("data2vec_audio", False),
    "unispeech_sat_base": ("unispeech_sat", False),
    "wav2vec2_conformer_large": ("wav2vec2_conformer", False),
    "whisper_small": ("whisper", False),
    "ast_base": ("ast", False),
}


def real_size_config(family: str):
    """A transformers config with the shape of the public checkpoint of ``family``."""
    import transformers as tf

    if family == "hubert":
        return tf.HubertConfig()  # = facebook/hubert-base-ls960
    if family == "wav2vec2":
        return tf.Wav2Vec2Config()  # = facebook/wav2vec2-base
    if family == "wavlm":
        return tf.WavLMConfig()  # = microsoft/wavlm-base
    if family == "data2vec_audio":
        return tf.Data2VecAudioConfig()  # = facebook/data2vec-audio-base
    if family == "unispeech_sat":
        return tf.UniSpeechSatConfig()  # = microsoft/unispeech-sat-base
    if family == "wav2vec2_conformer":  # = facebook/wav2vec2-conformer-rel-pos-large
        return tf.Wav2Vec2ConformerConfig(
            hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
            feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True, position_embeddings_type="relative",
        )
    if family == "whisper":  # = openai/whisper-small (the decoder is built, then dropped)
        return tf.WhisperConfig(
            d_model=768, encoder_layers=12, encoder_attention_heads=12, encoder_ffn_dim=3072,
            decoder_layers=12, decoder_attention_heads=12, decoder_ffn_dim=3072, num_mel_bins=80, vocab_size=51865,
        )
    if family == "ast":
        return tf.ASTConfig()  # = MIT/ast-finetuned-audioset-10-10-0.4593 (1024 frames x 128 bins)
    raise ValueError(f"unknown family {family!r}")


def model_entry(name: str, family: str, tiny: bool, folder: Path) -> tuple[dict, dict]:
    """Write the architecture's config files to ``folder``; ``(random_init entry, models section)``."""
    from bioprobe.tiny import feature_extractor, tiny_aves_config, tiny_hf_config

    folder.mkdir(parents=True, exist_ok=True)
    if family == "aves":
        path = folder / "model_config.json"
        path.write_text(json.dumps(tiny_aves_config() if tiny else AVES_BASE))
        arch = {"source": "aves", "config_url": str(path), "weights_url": str(folder / "unused.pt")}
        return {"source": "random_init", "of": f"{name}_arch", "seed": 0}, {f"{name}_arch": arch}
    config = tiny_hf_config(family) if tiny else real_size_config(family)
    config.save_pretrained(folder)
    feature_extractor(family, config).save_pretrained(folder)
    return {"source": "random_init", "of": str(folder), "seed": 0}, {}


def synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def embed_run(encoder, clips, opts) -> tuple[np.ndarray, float]:
    from bioprobe.embed import embed_waves

    synchronize(encoder.device)
    start = time.perf_counter()
    feats, _stats = embed_waves(encoder, lambda i: clips[i], [len(c) for c in clips], [f"c{i}" for i in range(len(clips))], opts)
    synchronize(encoder.device)
    return feats, time.perf_counter() - start


def bench_model(name: str, family: str, args, work: Path) -> dict:
    import torch

    from bioprobe.embed import embed_options
    from bioprobe.encoders import load_encoder
    from bioprobe.weights import fetch_weights

    mcfg, models = model_entry(name, family, args.tiny, work / name)
    start = time.perf_counter()
    fetch_weights(name, mcfg, work / "cache", models=models)  # local config files only: the pipeline's lock step
    encoder = load_encoder(name, mcfg, work / "cache", device=args.device, models=models)
    synchronize(encoder.device)
    result = {
        "family": family,
        "n_layers": encoder.n_layers,
        "dim": encoder.dim,
        "parameters_m": round(sum(p.numel() for p in encoder.model.parameters()) / 1e6, 1),
        "load_seconds": round(time.perf_counter() - start, 2),
    }
    rng = np.random.default_rng(0)
    lengths = args.clip_seconds
    clips = [(0.1 * rng.standard_normal(int(s * SR))).astype(np.float32) for s in lengths for _ in range(args.clips_per_length)]
    audio_s = sum(len(c) for c in clips) / SR
    long_wave = (0.1 * rng.standard_normal(int(args.long_seconds * SR))).astype(np.float32)
    pooled = {}
    for precision in args.precisions:
        opts = embed_options({"batch_size": args.batch_size, "precision": precision, "chunk_seconds": args.chunk_seconds})
        embed_run(encoder, clips[:2], opts)  # warm-up: kernels, allocator
        if encoder.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(encoder.device)  # the encoder's GPU, not the current one
        feats, seconds = embed_run(encoder, clips, opts)
        _long, long_seconds = embed_run(encoder, [long_wave], opts)
        pooled[precision] = feats
        entry = {
            "clips": len(clips),
            "audio_seconds": round(audio_s, 1),
            "embed_seconds": round(seconds, 3),
            "clips_per_second": round(len(clips) / seconds, 2),
            "real_time_factor": round(seconds / audio_s, 5),
            "long_recording_seconds": args.long_seconds,
            "long_recording_embed_seconds": round(long_seconds, 3),
            "long_real_time_factor": round(long_seconds / args.long_seconds, 5),
            "finite": bool(np.isfinite(feats).all() and np.isfinite(_long).all()),
        }
        if encoder.device.type == "cuda":
            entry["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated(encoder.device) / 2**20, 1)
        result[precision] = entry
    if "fp32" in pooled and "bf16" in pooled:
        scale = float(np.abs(pooled["fp32"]).max()) or 1.0
        result["bf16_max_abs_diff_over_max_abs"] = round(float(np.abs(pooled["bf16"] - pooled["fp32"]).max()) / scale, 5)
    del encoder
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
    return result


def bench_probes(args, label: str, probe_args: list[str]) -> dict:
    """``bench/bench_probe.py`` in this process, on ``args.device``; its JSON line."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_probe", REPO / "bench" / "bench_probe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    buffer = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(buffer):
        module.main([*probe_args, "--device", args.device])
    result = json.loads(buffer.getvalue().strip().splitlines()[-1])
    result["wall_seconds"] = round(time.perf_counter() - start, 2)
    result["label"] = label
    return result


def environment(args) -> dict:
    import torch
    import transformers

    env = {
        "device": args.device,
        "torch": torch.__version__,
        "torchaudio": __import__("torchaudio").__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "tiny": args.tiny,
    }
    if args.device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(args.device))
        env.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda)
    return env


def write_result(path: Path, result: dict) -> None:
    from bioprobe.fileio import write_json

    result["forbidden_modules_imported"] = sorted(m for m in MISSING_ON_GPU_MACHINE if sys.modules.get(m) is not None)
    write_json(path, result)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None, help="JSON file (default: $OUT/bench_gpu.json, else results/benchmarks/gpu.json)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny models and inputs (a CPU smoke test of this script)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--time-budget", type=float, default=270.0, help="seconds; later steps are skipped past it")
    parser.add_argument("--no-probes", action="store_true")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else Path(os.environ["OUT"]) / "bench_gpu.json" if os.environ.get("OUT") else REPO / "results" / "benchmarks" / "gpu.json"
    if args.tiny:  # whole windows still: Whisper's 30 s, so the long recording spans two chunks
        args.clip_seconds, args.clips_per_length, args.batch_size, args.long_seconds, args.chunk_seconds = [0.5, 1.0], 2, 2, 35.0, 30.0
        probe_runs = {"tiny": ["--clips", "300", "--layers", "3", "--dim", "64", "--classes", "3", "--epochs", "2", "--seeds", "1"]}
    else:
        args.clip_seconds, args.clips_per_length, args.batch_size, args.long_seconds, args.chunk_seconds = [2.0, 4.0, 8.0], 16, 16, 300.0, 120.0
        probe_runs = {
            "watkins_size_study_protocol": ["--clips", "1697", "--classes", "32", "--epochs", "30", "--patience", "10"],
            "imv_size_1_epoch": ["--clips", "73000", "--epochs", "1", "--baselines", "same_trainer"],
        }
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"bench_gpu: device {args.device} requested but CUDA is not available (torch {torch.__version__})")
    started = time.perf_counter()
    result = {"benchmark": "bench/bench_gpu.py", "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "environment": environment(args),
              "time_budget_seconds": args.time_budget, "embed": {}, "probes": {}, "skipped": [], "errors": {}}
    write_result(out, result)

    def over_budget(step: str, reserve: float = 0.0) -> bool:
        if time.perf_counter() - started + reserve > args.time_budget:
            result["skipped"].append(step)
            return True
        return False

    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            if over_budget(f"embed {name}"):
                continue
            try:
                result["embed"][name] = {"study_architecture": MODELS[name][1], **bench_model(name, MODELS[name][0], args, Path(tmp))}
            except Exception as err:  # one model failing must not lose the others' figures
                result["errors"][f"embed {name}"] = f"{type(err).__name__}: {err}"
            result["elapsed_seconds"] = round(time.perf_counter() - started, 1)
            write_result(out, result)
    for label, probe_args in ({} if args.no_probes else probe_runs).items():
        if over_budget(f"probes {label}", reserve=30.0 if not args.tiny else 0.0):
            continue
        try:
            result["probes"][label] = bench_probes(args, label, probe_args)
        except Exception as err:
            result["errors"][f"probes {label}"] = f"{type(err).__name__}: {err}"
        result["elapsed_seconds"] = round(time.perf_counter() - started, 1)
        write_result(out, result)
    result["elapsed_seconds"] = round(time.perf_counter() - started, 1)
    write_result(out, result)
    print(f"bench_gpu: {len(result['embed'])} models, {len(result['probes'])} probe runs, "
          f"{len(result['errors'])} errors, {result['elapsed_seconds']} s -> {out}")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
