"""bench/gpu.sh runs where only torch, torchaudio, transformers, h5py, numpy, pandas and scikit-learn exist.

The GPU machine has no snakemake, soundfile, soxr or jsonschema: here they are made
unimportable (``sys.modules[name] = None``) in the interpreter gpu.sh starts, and the script
runs on CPU with tiny models, through the same code as on the GPU.
"""

import json
import os
import subprocess
import sys

from conftest import REPO

BLOCKER = """
import runpy, sys
for name in ("snakemake", "soundfile", "soxr", "jsonschema"):
    sys.modules[name] = None  # import fails, as on the GPU machine
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
"""


def test_gpu_benchmark_runs_without_the_missing_modules(tmp_path):
    blocker = tmp_path / "block.py"
    blocker.write_text(BLOCKER)
    out = tmp_path / "result" / "gpu.json"
    models = ["aves_base", "data2vec_audio_base", "whisper_small", "ast_base"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # gpu.sh sets it to the checkout
    env["PYTHON"] = f"{sys.executable} {blocker}"
    proc = subprocess.run(
        ["bash", str(REPO / "bench" / "gpu.sh"), str(out), "--device", "cpu", "--tiny", "--models", *models],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["errors"] == {} and result["skipped"] == []
    assert result["forbidden_modules_imported"] == []
    assert sorted(result["embed"]) == sorted(models)
    for name, entry in result["embed"].items():
        for precision in ("fp32", "bf16"):
            assert entry[precision]["finite"] and entry[precision]["embed_seconds"] > 0, (name, precision)
        assert 0 <= entry["bf16_max_abs_diff_over_max_abs"] < 0.1, name
    assert result["embed"]["whisper_small"]["n_layers"] == 3 and result["embed"]["aves_base"]["study_architecture"]
    probe = result["probes"]["tiny"]
    assert probe["device"] == "cpu" and len(probe["vectorised_test_uar"]) == 3


def test_gpu_sh_refuses_cuda_without_a_gpu_clearly(tmp_path):
    import pytest
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(["bash", str(REPO / "bench" / "gpu.sh"), str(tmp_path / "x.json"), "--tiny"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "CUDA is not available" in proc.stderr
