#!/usr/bin/env bash
# GPU benchmark: the embed step (fp32 and bf16) for random-init real-size models of the study's
# architectures and the new families, and the probe trainer, on one GPU; writes one JSON file.
#
#   bash bench/gpu.sh [OUT.json] [more bench/bench_gpu.py options]
#
# OUT.json defaults to $OUT/bench_gpu.json when $OUT is set, else results/benchmarks/gpu.json.
# Needs only the checkout and torch, torchaudio, transformers, h5py, numpy, pandas, scikit-learn
# (no internet, no snakemake/soundfile/soxr/jsonschema). Stops within 5 minutes: the script
# skips steps past its time budget (270 s) and the whole run is cut at 300 s; the JSON file is
# rewritten after every step, so it always holds what was measured. PYTHON picks the interpreter.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    out="$1"
    shift
elif [ -n "${OUT:-}" ]; then
    out="$OUT/bench_gpu.json"
else
    out="$repo/results/benchmarks/gpu.json"
fi
mkdir -p "$(dirname "$out")"

export PYTHONPATH="$repo/workflow${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false

# shellcheck disable=SC2086  # PYTHON may be a command with arguments
timeout --signal=INT --kill-after=10 300 ${PYTHON:-python3} "$repo/bench/bench_gpu.py" --device cuda --out "$out" "$@"
