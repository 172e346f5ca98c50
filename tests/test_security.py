"""Security review (issue 11, item 4), one test per point.

* weights are unpickled only with ``torch.load(weights_only=True)``; no other unpickling;
* no ``trust_remote_code`` other than an explicit ``False``;
* archives are confined to their folder: tests/test_download.py (kept);
* paths from CSVs stay below the dataset root, symlinks included (loader, audit and resampler);
* no shell command is built from config strings: no ``shell=True``, ``os.system``, ``os.popen``,
  no ``shell:``/``run:`` rule in the workflow;
* no token or credential reaches a log or an output: a sentinel ``HF_TOKEN`` in the environment
  appears in no file and no output of a resample + weights lock + embed run.
"""

import ast
import logging
import re

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from conftest import REPO

PY_SOURCES = sorted((REPO / "workflow").rglob("*.py")) + sorted((REPO / "bench").glob("*.py"))
RULE_SOURCES = sorted((REPO / "workflow" / "rules").glob("*.smk")) + [REPO / "Snakefile"]
SENTINEL = "hf_SENTINEL_token_do_not_log_8b1f"


def calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def dotted(func) -> str:
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def keyword(call, name):
    return next((k.value for k in call.keywords if k.arg == name), None)


def parsed():
    assert len(PY_SOURCES) > 30
    for path in PY_SOURCES:
        yield path, ast.parse(path.read_text(), filename=str(path))


def test_torch_load_always_with_weights_only_true_and_no_other_unpickling():
    seen = 0
    for path, tree in parsed():
        for call in calls(tree):
            name = dotted(call.func)
            if name.endswith("torch.load"):
                seen += 1
                value = keyword(call, "weights_only")
                assert isinstance(value, ast.Constant) and value.value is True, f"{path}:{call.lineno}"
            assert name not in ("pickle.load", "pickle.loads", "joblib.load", "dill.load", "numpy.load", "np.load") or (
                isinstance(keyword(call, "allow_pickle"), ast.Constant) and keyword(call, "allow_pickle").value is False
            ), f"{path}:{call.lineno}: {name}"
    assert seen >= 1  # the AVES loader


def test_no_trust_remote_code():
    explicit_false = 0
    for path, tree in parsed():
        for call in calls(tree):
            value = keyword(call, "trust_remote_code")
            if value is not None:
                assert isinstance(value, ast.Constant) and value.value is False, f"{path}:{call.lineno}"
                explicit_false += 1
            # no **kwargs from a config could switch it on where a model or config is loaded
            if dotted(call.func).endswith(("from_pretrained", "from_config")):
                assert all(k.arg is not None for k in call.keywords), f"{path}:{call.lineno}: **kwargs"
    assert explicit_false >= 2
    for schema in (REPO / "workflow" / "schemas").glob("*.yaml"):
        assert "trust_remote_code" not in schema.read_text(), schema


def test_no_shell_commands():
    for path, tree in parsed():
        for call in calls(tree):
            name = dotted(call.func)
            assert name not in ("os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput"), f"{path}:{call.lineno}"
            shell = keyword(call, "shell")
            assert shell is None or (isinstance(shell, ast.Constant) and shell.value is False), f"{path}:{call.lineno}"
            if name.startswith("subprocess."):
                command = call.args[0] if call.args else keyword(call, "args")
                assert isinstance(command, (ast.List, ast.Name)), f"{path}:{call.lineno}: command must be a list"
    for path in RULE_SOURCES:
        text = path.read_text()
        assert not re.search(r"^\s+(shell|run):", text, flags=re.MULTILINE), f"{path}: shell/run directive"
        # every rule runs a script (files of input functions only, such as common*.smk, have no rule;
        # the Snakefile's `rule all` only collects inputs)
        assert "script:" in text or path.name == "Snakefile" or not re.search(r"^rule ", text, flags=re.MULTILINE), path


def test_csv_paths_are_confined_to_the_dataset_root_symlinks_included(tmp_path):
    from bioprobe.audio import AudioError, resample_manifest
    from bioprobe.audit import audit_clips

    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    secret = tmp_path / "secret.wav"
    sf.write(secret, np.zeros(1600, np.float32), 16000)
    (root / "sub" / "link.wav").symlink_to(secret)
    (root / "dirlink").symlink_to(tmp_path)
    for rel in ("sub/link.wav", "dirlink/secret.wav", "../secret.wav", "sub/../../secret.wav", str(secret)):
        clips = pd.DataFrame({"clip_id": ["a"], "path": [rel], "start": [""], "end": [""]})
        clips.to_csv(tmp_path / "clips.csv", index=False)
        with pytest.raises(AudioError, match="leaves the dataset root"):
            resample_manifest(tmp_path / "clips.csv", root, tmp_path / "out.h5", progress=False)
        with pytest.raises(AudioError, match="leaves the dataset root"):
            audit_clips(clips, root)
    assert not (tmp_path / "out.h5").exists()
    # a link that stays inside the root is fine
    sf.write(root / "real.wav", np.full(1600, 0.1, np.float32), 16000)
    (root / "sub" / "inside.wav").symlink_to(root / "real.wav")
    pd.DataFrame({"clip_id": ["a"], "path": ["sub/inside.wav"]}).to_csv(tmp_path / "clips.csv", index=False)
    assert resample_manifest(tmp_path / "clips.csv", root, tmp_path / "out.h5", progress=False) == 1


def test_a_token_in_the_environment_reaches_no_log_and_no_output(tmp_path, monkeypatch, capfd, caplog):
    from bioprobe.audio import resample_manifest
    from bioprobe.audit import run_audit
    from bioprobe.embed import embed_dataset
    from bioprobe.tiny import save_tiny_hf_model
    from bioprobe.weights import fetch_weights

    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.setenv(var, SENTINEL)
    caplog.set_level(logging.DEBUG)
    audio = tmp_path / "audio"
    audio.mkdir()
    t = np.arange(8000) / 16000
    for i in range(3):
        sf.write(audio / f"c{i}.wav", (0.3 * np.sin(2 * np.pi * (300 + 100 * i) * t)).astype(np.float32), 16000)
    pd.DataFrame({"clip_id": [f"x{i}" for i in range(3)], "path": [f"c{i}.wav" for i in range(3)]}).to_csv(tmp_path / "clips.csv", index=False)
    out = tmp_path / "results"
    run_audit("d", tmp_path / "clips.csv", audio, out / "accepted.csv", out / "rejected.csv", out / "warnings.csv")
    resample_manifest(out / "accepted.csv", audio, out / "audio16k.h5", progress=False)
    mcfg = {"source": "huggingface", "id": str(save_tiny_hf_model("hubert", tmp_path / "model"))}
    fetch_weights("tiny", mcfg, tmp_path / "cache")
    embed_dataset(out / "audio16k.h5", out / "emb.h5", "tiny", mcfg, {}, tmp_path / "cache", progress=True)
    captured = capfd.readouterr()
    texts = {"stdout": captured.out, "stderr": captured.err, "log": caplog.text}
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".h5" for p in files) and any(p.name == "tiny.json" for p in files)
    for name, text in texts.items():
        assert SENTINEL not in text, name
    for path in files:
        assert SENTINEL.encode() not in path.read_bytes(), path
