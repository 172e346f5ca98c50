#!/usr/bin/env bash
# GPU benchmark: the embed step (fp32 and bf16) for random-init real-size models of the study's
# architectures and the new families, and the probe trainer, on one GPU; writes one JSON file.
#
#   bash bench/gpu.sh [OUT.json] [more bench/bench_gpu.py options]
#
# OUT.json defaults to $OUT/bench_gpu.json when $OUT is set, else results/benchmarks/gpu.json.
# Needs only the checkout and torch, torchaudio, transformers, h5py, numpy, pandas, scikit-learn
# (no internet, no snakemake/soundfile/soxr/jsonschema). Stops within 5 minutes: the main script
# skips steps past its time budget (210 s) and is cut at 230 s; then, on the GPU run (no extra
# options given), the variable-length batching benchmark (masked vs equal-length vs one at a
# time, bench/bench_embed.py --variable) gets 60 s and writes embed_variable.json beside OUT.json.
# Each JSON file is rewritten after every step, so it always holds what was measured.
# PYTHON picks the interpreter.
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
timeout --signal=INT --kill-after=10 230 ${PYTHON:-python3} "$repo/bench/bench_gpu.py" --device cuda --out "$out" --time-budget 210 "$@"
if [ $# -eq 0 ]; then
    # shellcheck disable=SC2086
    timeout --signal=INT --kill-after=5 60 ${PYTHON:-python3} "$repo/bench/bench_embed.py" --variable --device cuda \
        --clips 256 --repeats 1 --json-out "$(dirname "$out")/embed_variable.json" \
        || echo "gpu.sh: the variable-length batching benchmark did not finish (see above)" >&2
fi
