"""Which jobs a config change makes stale, by name, on the offline demo after one full run.

For each change, the dry run must schedule exactly the expected set of (rule, wildcards): a
change re-runs what it touches and nothing else (a split change never re-extracts audio or
embeddings). Each case is a modified copy of the demo config given to `snakemake -n` in the
same working directory; the demo itself runs once per module.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO / "resources" / "configs" / "demo.yaml"
D = "synthetic"
MODELS = ("tiny_hubert", "tiny_wav2vec2", "tiny_wavlm")

pytestmark = [pytest.mark.workflow, pytest.mark.timeout(1800)]


def snakemake(workdir: Path, configfile: Path, *args: str) -> str:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(configfile), "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"), timeout=1500)
    if proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-6000:]}")
    return proc.stdout + proc.stderr


def scheduled_jobs(workdir: Path, configfile: Path) -> set[tuple[str, frozenset]]:
    """(rule, wildcards) of every job a dry run schedules, from its 'rule X:' and 'wildcards:' lines."""
    jobs, rule, wildcards = set(), None, frozenset()
    for line in snakemake(workdir, configfile, "-n").splitlines() + [""]:
        head = re.match(r"^(?:local)?rule (\w+):$", line.strip()) if not line.startswith(" ") else None
        if head or not line.strip():
            if rule is not None:
                jobs.add((rule, wildcards))
            rule, wildcards = (head.group(1), frozenset()) if head else (None, frozenset())
            continue
        found = re.match(r"^\s+wildcards: (.*)$", line)
        if found and rule is not None:
            wildcards = frozenset(tuple(part.split("=", 1)) for part in found.group(1).split(", "))
    return jobs


def job(rule: str, **wildcards) -> tuple[str, frozenset]:
    return rule, frozenset(wildcards.items())


def probes(*models):
    return {job("probe", dataset=D, model=m, probe="mlp") for m in models}


def embeds(*models):
    return {job("embed", dataset=D, model=m) for m in models}


AGGREGATES = {job("compare", dataset=D), job("layerwise_figure", dataset=D, fmt="png"), job("tables"), job("all")}
FUSE = {job("fuse", dataset=D, fusion="concat_best")}
# the extensions the demo runs (docs/extensions.md): label efficiency reads the embeddings and the
# split (its fusion also the probes' best layers), the cheapest layer reads the probe results
LE_FIGURE = job("label_efficiency_figure", dataset=D, fmt="png")
CHEAPEST = {job("cheapest_layer", dataset=D), job("cheapest_table")}
AFTER_PROBES = FUSE | AGGREGATES | {job("label_efficiency_fusion", dataset=D, fusion="concat_best", probe="mlp"), LE_FIGURE} | CHEAPEST


def label_efficiency(*models):
    return {job("label_efficiency", dataset=D, model=m, probe="mlp") for m in models}


def set_in(path: str, value):
    def change(config):
        *parents, last = path.split(".")
        node = config
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return change


def add_model(config):
    config["models"]["tiny_hubert_b"] = {"source": "huggingface", "id": "resources/demo/models/hubert", "label": "tiny HuBERT b"}


CASES = {
    "nothing": (lambda c: None, set()),
    "split seed": (set_in(f"datasets.{D}.split.seed", 7), {job("split", dataset=D)} | probes(*MODELS) | label_efficiency(*MODELS) | AFTER_PROBES),
    "split method": (set_in(f"datasets.{D}.split.method", "grouped"), {job("split", dataset=D)} | probes(*MODELS) | label_efficiency(*MODELS) | AFTER_PROBES),
    "label mapping": (set_in(f"datasets.{D}.label_map", {"call_a": "call_b"}), {job("split", dataset=D)} | probes(*MODELS) | label_efficiency(*MODELS) | AFTER_PROBES),
    "model label": (set_in("models.tiny_wavlm.label", "renamed"), AGGREGATES | {LE_FIGURE, job("cheapest_table")}),
    "model id": (set_in("models.tiny_wavlm.id", "resources/demo/models/wav2vec2"),
                 {job("fetch_weights", model="tiny_wavlm")} | embeds("tiny_wavlm") | probes("tiny_wavlm")
                 | label_efficiency("tiny_wavlm") | AFTER_PROBES),
    "embed.min_samples": (set_in("embed.min_samples", 6000), embeds(*MODELS) | probes(*MODELS) | label_efficiency(*MODELS)
                          | AFTER_PROBES),
    "embed batch size and device": (lambda c: c["embed"].update(batch_size=2, device="cpu"), set()),
    "audio.resampler": (set_in("audio.resampler", "soxr_vhq"),
                        {job("resample", dataset=D)} | embeds(*MODELS) | probes(*MODELS) | label_efficiency(*MODELS)
                        | AFTER_PROBES),
    # label efficiency does not use the probe's seeds: only its fusion (best layers) re-runs
    "probe seeds": (set_in("probes.mlp.seeds", [42]), probes(*MODELS) | AFTER_PROBES),
    "figure format": (set_in("figures.formats", ["png", "pdf"]), {job("layerwise_figure", dataset=D, fmt="pdf"),
                                                                  job("label_efficiency_figure", dataset=D, fmt="pdf"), job("all")}),
    "fusion model list": (set_in("fusion.concat_best.models", ["tiny_hubert", "tiny_wavlm"]),
                          FUSE | {job("tables"), job("all"), job("label_efficiency_fusion", dataset=D, fusion="concat_best", probe="mlp"), LE_FIGURE}),
    "adding a model": (add_model, {job("fetch_weights", model="tiny_hubert_b")} | embeds("tiny_hubert_b")
                       | probes("tiny_hubert_b") | label_efficiency("tiny_hubert_b") | AFTER_PROBES),
    "label efficiency draws": (set_in("label_efficiency.draws", 3), label_efficiency(*MODELS)
                               | {job("label_efficiency_fusion", dataset=D, fusion="concat_best", probe="mlp"), LE_FIGURE, job("all")}),
    "cheapest delta": (set_in("cheapest_layer.delta", 0.02), CHEAPEST | {job("all")}),
    # a schema default written out explicitly is the same setting
    "defaults written out": (lambda c: c["embed"].update(chunk_seconds=120, precision="fp32", store_dtype="float32"), set()),
}


def base_config() -> dict:
    """The demo config, its calls being a user's folder (made here, not by a rule of the workflow):
    the case of a real dataset, whose labels file the user may edit."""
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config["demo"].pop("calls")
    config["datasets"][D].update(root="calls", labels="calls/labels.csv")
    return config


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    from bioprobe.demo import make_synthetic_calls

    workdir = tmp_path_factory.mktemp("staleness")
    calls = yaml.safe_load(DEMO_CONFIG.read_text())["demo"]["calls"]
    make_synthetic_calls(workdir / "calls", calls["n_classes"], calls["clips_per_class"], calls["seed"])
    path = workdir / "base.yaml"
    path.write_text(yaml.safe_dump(base_config()))
    snakemake(workdir, path)
    return workdir


@pytest.mark.parametrize("case", list(CASES))
def test_a_change_schedules_exactly_the_jobs_it_touches(demo_run, tmp_path, case):
    change, expected = CASES[case]
    config = base_config()
    change(config)
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=True))  # key order must not matter either
    got = scheduled_jobs(demo_run, path)
    missing, extra = expected - got, got - expected
    assert not missing and not extra, f"{case}: missing {sorted(missing)}; not expected {sorted(extra)}"


def test_a_label_file_edit_reruns_the_split_not_the_audio(demo_run):
    """Editing a label in the labels CSV re-runs the split and what reads it; editing a clip
    column (path, start, end) of the same file re-makes the clip list and the audio."""
    config, labels = demo_run / "base.yaml", demo_run / "calls" / "labels.csv"
    original = labels.read_text()
    rows = original.splitlines()
    header = rows[0].split(",")
    try:
        first = rows[1].split(",")
        first[header.index("label")] = "call_b" if first[header.index("label")] != "call_b" else "call_a"
        labels.write_text("\n".join([rows[0], ",".join(first), *rows[2:]]) + "\n")
        assert scheduled_jobs(demo_run, config) == {job("split", dataset=D)} | probes(*MODELS) | label_efficiency(*MODELS) | AFTER_PROBES
        first[header.index("path")] = rows[2].split(",")[header.index("path")]
        labels.write_text("\n".join([rows[0], ",".join(first), *rows[2:]]) + "\n")
        assert scheduled_jobs(demo_run, config) == ({job("clips", dataset=D), job("split", dataset=D),
                                                     job("resample", dataset=D)} | embeds(*MODELS)
                                                    | probes(*MODELS) | label_efficiency(*MODELS) | AFTER_PROBES)
    finally:
        labels.write_text(original)
    # the same content again (a newer date): nothing is stale
    assert scheduled_jobs(demo_run, config) == set()
