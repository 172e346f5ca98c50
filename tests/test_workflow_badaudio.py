"""Broken and unusual files through a ``folder`` dataset, end to end (issue 11, "Checked by").

The hand-made corpus of tests/badaudio.py (formats, bit depths, channels, rates, silent,
DC-only, phase-cancelled and too-short clips, and ten broken ones) is added to a few
synthetic calls. The default policy (``on_bad_audio: fail``) stops in the audit naming every
broken file; ``--config on_bad_audio=skip`` completes and lists exactly the broken ones in
rejected.csv, and no later step sees them. A sentinel HF_TOKEN in the environment appears in
no file the run writes.
"""

import os

import h5py
import pandas as pd
import pytest
import yaml

from badaudio import bad_files, make_corpus
from bioprobe.demo import make_synthetic_calls
from test_workflow import snakemake

pytestmark = [pytest.mark.workflow, pytest.mark.timeout(1500)]
SENTINEL = "hf_SENTINEL_token_do_not_log_5c2e"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    work = tmp_path_factory.mktemp("badaudio")
    calls = work / "calls"
    labels_csv = make_synthetic_calls(calls, n_classes=2, clips_per_class=12, seed=1)
    rows = make_corpus(calls)
    table = pd.read_csv(labels_csv, dtype=str, keep_default_na=False)
    extra = pd.DataFrame([{"path": p, "label": f"call_{'ab'[i % 2]}", "group": f"odd{i}", "start": s, "end": e}
                          for i, (p, s, e, _x) in enumerate(rows)])
    pd.concat([table, extra]).to_csv(labels_csv, index=False)
    config = {
        "data_dir": "data", "model_cache": "cache",
        "demo": {"models": {"out": "models", "kinds": ["hubert"], "seed": 0}},
        "datasets": {"mixed": {"type": "folder", "root": str(calls), "labels": str(labels_csv),
                               "split": {"method": "stratified", "seed": 1}}},
        "models": {"tiny_hubert": {"source": "huggingface", "id": "models/hubert"}},
        "embed": {"batch_size": 4},
        "probes": {"mlp": {"type": "mlp", "seeds": [1], "epochs": 3}},
        "figures": {"formats": ["png"]},
    }
    configfile = work / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    return work, configfile, rows, len(table)


def test_default_policy_fails_naming_every_broken_file(mixed):
    work, configfile, rows, _n = mixed
    os.environ["HF_TOKEN"] = SENTINEL
    try:
        proc = snakemake(work, configfile=configfile, check=False)
    finally:
        del os.environ["HF_TOKEN"]
    assert proc.returncode != 0
    log = (work / "logs" / "audit" / "mixed.log").read_text()
    message = log[log.index("cannot be used (on_bad_audio: fail)"):]
    for path in bad_files(rows):
        assert f"  {path}: " in message, path
    for path in {p for p, *_x in rows} - bad_files(rows):
        assert f"  {path}: " not in message, path
    assert "on_bad_audio=skip" in proc.stderr + log
    assert not (work / "results" / "mixed" / "audio16k.h5").exists()


def test_skip_completes_and_lists_exactly_the_broken_files(mixed):
    work, configfile, rows, n_calls = mixed
    os.environ["HF_TOKEN"] = SENTINEL
    try:
        snakemake(work, "--config", "on_bad_audio=skip", configfile=configfile)
    finally:
        del os.environ["HF_TOKEN"]
    results = work / "results" / "mixed"
    rejected = pd.read_csv(results / "rejected.csv")
    assert list(rejected.columns) == ["path", "clip_id", "reason"]
    assert set(rejected["path"]) == bad_files(rows)
    assert len(rejected) == sum(x.startswith("reject:") for *_r, x in rows)
    warnings = pd.read_csv(results / "audio_warnings.csv")
    assert set(warnings["path"]) == {p for p, _s, _e, x in rows if x.startswith("warn:")}
    accepted = pd.read_csv(results / "clips_accepted.csv", dtype={"clip_id": str})
    assert len(accepted) == n_calls + len(rows) - len(rejected)
    with h5py.File(results / "audio16k.h5") as h5:
        audio_ids = {c.decode() for c in h5["clip_id"][:]}
    assert audio_ids == set(accepted["clip_id"]) and audio_ids.isdisjoint(rejected["clip_id"])
    with h5py.File(results / "embeddings" / "tiny_hubert.h5") as h5:
        assert {c.decode() for c in h5["clip_id"][:]} == audio_ids
    split = pd.read_csv(results / "split.csv", dtype={"clip_id": str}, keep_default_na=False)
    used = set(split.loc[split["split"] != "excluded", "clip_id"])
    assert used <= audio_ids and set(rejected["clip_id"]) <= set(split.loc[split["split"] == "excluded", "clip_id"])
    assert (results / "probes" / "tiny_hubert" / "mlp" / "scores.csv").is_file()
    log = (work / "logs" / "audit" / "mixed.log").read_text()
    assert f"{len(rejected)} rejected from {len(bad_files(rows))} files" in log
    table = (work / "results" / "tables" / "best_layer.md").read_text()
    assert f"mixed: {len(rejected)} clip(s) rejected by the audit" in table
    for path in (p for p in work.rglob("*") if p.is_file() and "calls" not in p.parts):
        assert SENTINEL.encode() not in path.read_bytes(), path
