"""Which jobs a config change makes stale, by name, on the offline demo after one full run.

For each change, the dry run must schedule exactly the expected set of (rule, wildcards): a
change re-runs what it touches and nothing else (a split change never re-extracts audio or
embeddings). Each case is a modified copy of the demo config given to `snakemake -n` in the
same working directory; the demo itself runs once per module.
"""

from __future__ import annotations

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
MODELS = ("logmel", "tiny_hubert", "tiny_wav2vec2", "tiny_wav2vec2_ft", "tiny_wavlm")
# the demo's figure roles (resources/configs/demo.yaml, figures:): which models figures 1 and 2 read
FIG1_MODELS = {"tiny_hubert", "tiny_wavlm", "logmel"}  # compare + floor
FIG2_MODELS = {"tiny_wav2vec2", "tiny_wav2vec2_ft", "logmel"}  # fine_tuned bases, their fine-tuned models + floor

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


FUSE = {job("fuse", dataset=D, fusion="concat_best")}
CONFUSION = {job("study_fig4_confusion", dataset=D, fusion="concat_best")}
# figures and tables that read every model's results (or the tables made from them)
EVERY_MODEL = {job("layerwise_figure", dataset=D), job("per_class_figure", dataset=D), job("published_figure"),
               job("compare", dataset=D), job("tables"), job("all")}
FIGURES = {job("layerwise_figure", dataset=D), job("per_class_figure", dataset=D), job("published_figure"),
           job("study_fig1"), job("study_fig2")} | CONFUSION


def after_probes(*models) -> set:
    """What re-runs after the probes of ``models``: the fusion (over every model), its confusion
    figure, the tables and every figure that reads one of these models."""
    jobs = FUSE | CONFUSION | EVERY_MODEL
    if FIG1_MODELS & set(models):
        jobs.add(job("study_fig1"))
    if FIG2_MODELS & set(models):
        jobs.add(job("study_fig2"))
    return jobs


AFTER_PROBES = after_probes(*MODELS)


LEAKAGE_SPLITS = ("grouped_group", "nuisance_group")
LEAKAGE_JOBS = ({job("named_split", dataset=D, split=s) for s in LEAKAGE_SPLITS}
                | {job("probe_split", dataset=D, split=s, model=m, probe="mlp") for s in LEAKAGE_SPLITS for m in MODELS}
                | {job("leakage", dataset=D, model=m, probe="mlp") for m in MODELS}
                | {job("leakage_figure", dataset=D), job("all")})


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
    "split seed": (set_in(f"datasets.{D}.split.seed", 7), {job("split", dataset=D)} | probes(*MODELS) | AFTER_PROBES),
    "split method": (set_in(f"datasets.{D}.split.method", "grouped"), {job("split", dataset=D)} | probes(*MODELS) | AFTER_PROBES),
    "label mapping": (set_in(f"datasets.{D}.label_map", {"call_a": "call_b"}), {job("split", dataset=D)} | probes(*MODELS) | AFTER_PROBES),
    # figures and tables draw labels: every figure re-drawn, no probe or fusion re-run
    "model label": (set_in("models.tiny_wavlm.label", "renamed"), FIGURES | {job("compare", dataset=D), job("tables"), job("all")}),
    "model id": (set_in("models.tiny_wavlm.id", "resources/demo/models/wav2vec2"),
                 {job("fetch_weights", model="tiny_wavlm")} | embeds("tiny_wavlm") | probes("tiny_wavlm") | after_probes("tiny_wavlm")),
    "embed.min_samples": (set_in("embed.min_samples", 6000), embeds(*MODELS) | probes(*MODELS) | AFTER_PROBES),
    "embed batch size and device": (lambda c: c["embed"].update(batch_size=2, device="cpu"), set()),
    "audio.resampler": (set_in("audio.resampler", "soxr_vhq"),
                        {job("resample", dataset=D)} | embeds(*MODELS) | probes(*MODELS) | AFTER_PROBES),
    "probe seeds": (set_in("probes.mlp.seeds", [42]), probes(*MODELS) | AFTER_PROBES),
    "figure format": (set_in("figures.formats", ["png", "pdf"]), FIGURES | {job("all")}),
    "fusion model list": (set_in("fusion.concat_best.models", ["tiny_hubert", "tiny_wavlm"]),
                          FUSE | CONFUSION | {job("tables"), job("published_figure"), job("all")}),
    # a new model is a new line in every figure (and joins the fusion over every model)
    "adding a model": (add_model, {job("fetch_weights", model="tiny_hubert_b")} | embeds("tiny_hubert_b")
                       | probes("tiny_hubert_b") | AFTER_PROBES),
    # the bad-audio policy decides whether the audit stops, not what it writes
    "on_bad_audio": (set_in("on_bad_audio", "skip"), set()),
    "a dataset's on_bad_audio": (set_in(f"datasets.{D}.on_bad_audio", "skip"), set()),
    # more splits of the same clips: their split files and probes, nothing upstream, no main probe
    "adding the leakage analysis": (set_in("leakage", {"probe": "mlp", "by": {D: ["group"]}}), LEAKAGE_JOBS),
    "adding a named split": (set_in(f"datasets.{D}.splits", {"by_animal": {"method": "grouped"}}),
                             {job("named_split", dataset=D, split="by_animal"), job("all")}
                             | {job("probe_split", dataset=D, split="by_animal", model=m, probe="mlp") for m in MODELS}),
    # a schema default written out explicitly is the same setting
    "defaults written out": (lambda c: c["embed"].update(chunk_seconds=120, precision="fp32", store_dtype="float32"), set()),
}


def base_config() -> dict:
    """The demo config, its calls being a user's folder (made here, not by a rule of the workflow):
    the case of a real dataset, whose labels file the user may edit."""
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    for extension in ("label_efficiency", "cheapest_layer", "leakage"):  # their staleness: tests/test_workflow.py
        config.pop(extension, None)
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
        assert scheduled_jobs(demo_run, config) == {job("split", dataset=D)} | probes(*MODELS) | AFTER_PROBES
        first[header.index("path")] = rows[2].split(",")[header.index("path")]
        labels.write_text("\n".join([rows[0], ",".join(first), *rows[2:]]) + "\n")
        assert scheduled_jobs(demo_run, config) == ({job("clips", dataset=D), job("audit", dataset=D), job("split", dataset=D),
                                                     job("resample", dataset=D)} | embeds(*MODELS)
                                                    | probes(*MODELS) | AFTER_PROBES)
    finally:
        labels.write_text(original)
    # the same content again (a newer date): nothing is stale
    assert scheduled_jobs(demo_run, config) == set()
