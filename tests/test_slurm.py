"""The SLURM profile against a real SLURM: the demo config end to end through sbatch.

A one-node cluster (munged, slurmctld, slurmd from Debian's slurm-wlm and munge packages) is
started in a temporary folder by this test and stopped by pid (tests/slurm_cluster.py). The demo
runs with ``--workflow-profile`` set to a copy of ``profiles/slurm`` fitted to the node: the
same executor, groups, local rules, retries and resource expressions, with memory capped at what
the node has, the threads of the local run, ``squeue`` for status (no accounting database) and
quick status polling. Its results must equal the local demo run's (the session fixture
``demo_run``), and the embed jobs must have asked SLURM for a GPU.

Skips where SLURM is not installed or the test is not root (``.ci/run`` installs the packages);
with ``CI`` set it fails instead, so CI cannot pass without running it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml
from slurm_cluster import JOB_MEM_MB, PARTITION, PROFILE, SlurmCluster, missing_programs, node_profile
from workflow_helpers import DEMO_CONFIG, DEMO_CORES, REPO, job_logs

pytestmark = [pytest.mark.slurm, pytest.mark.workflow, pytest.mark.timeout(1500)]

NODE_MEM_MB = 8000
MODELS = ["logmel", "tiny_hubert", "tiny_wav2vec2", "tiny_wav2vec2_ft", "tiny_wavlm"]  # the demo's
PROBES_PER_JOB = 3  # group-components of probe_{dataset} in profiles/slurm
RUN_TIMEOUT_S = 900


def _unavailable() -> str | None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "the SLURM test starts slurmd and munged, which needs root"
    missing = missing_programs()
    if missing:
        how = "apt-get install slurm-wlm munge (as .ci/run does)" if shutil.which("apt-get") else "no apt-get here"
        return f"SLURM is not installed (missing {', '.join(missing)}): {how}"
    return None


# Session scope, like demo_run, and listed before it: the skip (or the failure under CI) comes
# before the local demo run is made.
@pytest.fixture(scope="session")
def cluster():
    reason = _unavailable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so the SLURM test must run, but {reason}")
        pytest.skip(reason)
    slurm = SlurmCluster(cpus=DEMO_CORES, max_mem_mb=NODE_MEM_MB)
    try:
        slurm.start()
        yield slurm
    finally:
        slurm.stop()
        # BIOPROBE_KEEP_SLURM=1 keeps the cluster's folder (slurmctld.log, slurmd.log, state) to read
        if os.environ.get("BIOPROBE_KEEP_SLURM"):
            print(f"SLURM test cluster kept in {slurm.root}")
        else:
            shutil.rmtree(slurm.root, ignore_errors=True)


class JobRecorder(threading.Thread):
    """Collects ``scontrol show job`` records while the run goes on (by JobId, last seen wins)."""

    def __init__(self, cluster: SlurmCluster, every_s: float = 2.0):
        super().__init__(daemon=True)
        self.cluster, self.every_s = cluster, every_s
        self.records: dict[str, dict] = {}
        self.done = threading.Event()
        self.errors: list[str] = []

    def poll(self) -> None:
        try:
            for record in self.cluster.jobs():
                self.records[record["JobId"]] = record
        except Exception as err:  # slurmctld busy: try again next round
            self.errors.append(str(err))

    def run(self) -> None:
        while not self.done.wait(self.every_s):
            self.poll()
        self.poll()


def assert_frames_close(local: Path, remote: Path, atol: float = 1e-6) -> None:
    a, b = pd.read_csv(local), pd.read_csv(remote)
    assert list(a.columns) == list(b.columns), (local, remote)
    assert len(a) == len(b), (local, remote)
    for col in a.columns:
        if pd.api.types.is_numeric_dtype(a[col]) and pd.api.types.is_numeric_dtype(b[col]):
            x, y = a[col].to_numpy(dtype=float), b[col].to_numpy(dtype=float)
            assert np.array_equal(np.isnan(x), np.isnan(y)), f"{remote}: {col} is empty in one run only"
            ok = ~np.isnan(x)
            diff = np.max(np.abs(x[ok] - y[ok]), initial=0.0)
            assert diff <= atol, f"{remote}: column {col} differs from the local run by {diff:.3g}"
        else:
            assert a[col].astype(str).tolist() == b[col].astype(str).tolist(), f"{remote}: column {col} differs"


def test_demo_through_slurm_matches_local_run(cluster, demo_run, tmp_path):
    workdir = tmp_path / "slurm_run"
    workdir.mkdir()
    # The demo's synthetic calls and tiny models, made by local rules, are taken from the local
    # run (with their times, so that they are not made again): same inputs, 2 minutes saved.
    for made in ("calls", "models"):
        shutil.copytree(demo_run / "resources" / "demo" / made, workdir / "resources" / "demo" / made)
    profile_dir = tmp_path / "profile"
    profile_dir.mkdir()
    profile = node_profile(yaml.safe_load(PROFILE.read_text()), DEMO_CORES, JOB_MEM_MB)
    (profile_dir / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))

    env = dict(cluster.env, PYTHONUNBUFFERED="1", BIOPROBE_SLURM_PARTITION=PARTITION)
    for name in ("BIOPROBE_SLURM_GPU_PARTITION", "BIOPROBE_SLURM_PROBE_PARTITION", "BIOPROBE_SLURM_ACCOUNT", "BIOPROBE_SLURM_GPU_MODEL"):
        env.pop(name, None)
    cmd = [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir),
        "--configfile", str(DEMO_CONFIG),
        "--workflow-profile", str(profile_dir),
    ]
    recorder = JobRecorder(cluster)
    recorder.start()
    started = time.monotonic()
    log_path = tmp_path / "snakemake.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
        try:
            proc.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.terminate()  # Snakemake cancels its SLURM jobs on SIGTERM
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        finally:
            recorder.done.set()
            recorder.join(timeout=30)
    elapsed = time.monotonic() - started
    log_text = log_path.read_text(errors="replace")
    assert proc.returncode == 0, (
        f"snakemake through SLURM failed ({proc.returncode}) after {elapsed:.0f} s:\n{log_text[-8000:]}\n"
        f"{job_logs(workdir)}\n{cluster.logs()}"
    )
    print(f"demo through SLURM: {elapsed:.0f} s, {len(recorder.records)} SLURM jobs")

    # ---- the jobs SLURM saw
    jobs = list(recorder.records.values())
    comments = [j.get("Comment", "") for j in jobs]
    assert all(j["Partition"] == PARTITION for j in jobs), [(j["JobId"], j["Partition"]) for j in jobs]
    assert all(j["JobState"] == "COMPLETED" for j in jobs), [(j["JobId"], j["JobState"], j.get("Comment")) for j in jobs]
    embed_jobs = [j for j in jobs if j.get("Comment", "").startswith("rule_embed_")]
    assert len(embed_jobs) == len(MODELS), comments
    for job in embed_jobs:
        assert job.get("TresPerJob") == "gres:gpu:1", f"embed job {job['JobId']} did not ask for a GPU: {job}"
    others = [j for j in jobs if j not in embed_jobs]
    assert others and all("gpu" not in j.get("TresPerJob", "") for j in others), others
    # the node fits every job (an oversized one would stay pending, or be refused by sbatch)
    assert all(int(j["NumCPUs"]) <= cluster.cpus for j in jobs), [(j["JobId"], j["NumCPUs"]) for j in jobs]
    # local rules never reach the queue; clips, audit, split and resample share one job (group
    # audio_synthetic), and the probes go PROBES_PER_JOB to a job (group probe_synthetic): the
    # study split's and those of the leakage analysis' two splits (grouped, nuisance) per model
    groups = {"audio_synthetic": 1, "probe_synthetic": -(-3 * len(MODELS) // PROBES_PER_JOB)}
    for group, n in groups.items():
        assert sum(c.startswith(f"rule_{group}") for c in comments) == n, (group, comments)
    singles = sorted(c.split("_wildcards_")[0] for c in comments if not c.startswith(tuple(f"rule_{g}" for g in groups)))
    # one job each: compare, the fusion, the demo's extensions (label efficiency per model and of
    # the fusion, the cheapest layer), and an embed per model; figures and tables are local rules
    expected = ["rule_compare", "rule_fuse", "rule_label_efficiency_fusion", "rule_cheapest_layer"]
    assert singles == sorted(expected + ["rule_embed", "rule_label_efficiency"] * len(MODELS)), comments
    assert "localrule label_efficiency_figure" in log_text and "localrule cheapest_table" in log_text
    assert "localrule fetch_weights" in log_text and "localrule tables" in log_text
    assert all(f"localrule {rule}" in log_text for rule in ("named_split", "leakage", "leakage_figure"))

    # ---- the results equal the local run's
    local, remote = demo_run / "results" / "synthetic", workdir / "results" / "synthetic"
    for name in ("clips.csv", "split.csv"):
        assert (remote / name).read_bytes() == (local / name).read_bytes(), name
    for model in MODELS:
        with h5py.File(local / "embeddings" / f"{model}.h5") as a, h5py.File(remote / "embeddings" / f"{model}.h5") as b:
            assert a["clip_id"][:].tolist() == b["clip_id"][:].tolist()
            fa, fb = a["features"][:], b["features"][:]
            assert fa.shape == fb.shape and np.isfinite(fb).all()
            assert np.max(np.abs(fa.astype(np.float64) - fb)) <= 1e-6, model
        for name in ("scores.csv", "summary.csv"):
            assert_frames_close(local / "probes" / model / "mlp" / name, remote / "probes" / model / "mlp" / name)
    for name in ("scores.csv", "summary.csv"):
        assert_frames_close(local / "fusion" / "concat_best" / name, remote / "fusion" / "concat_best" / name)
    assert_frames_close(demo_run / "results" / "tables" / "all_scores.csv", workdir / "results" / "tables" / "all_scores.csv")
    # the extensions: label efficiency per model and of the fusion, the cheapest layer
    for name in [*MODELS, "concat_best"]:
        assert_frames_close(local / "label_efficiency" / name / "mlp.csv", remote / "label_efficiency" / name / "mlp.csv")
    assert_frames_close(local / "cheapest_layer.csv", remote / "cheapest_layer.csv")
    assert_frames_close(demo_run / "results" / "tables" / "cheapest_layer.csv", workdir / "results" / "tables" / "cheapest_layer.csv")
    # the leakage analysis: its split files, and per model the table of every split's probes
    for split in ("grouped_group", "nuisance_group"):
        assert (remote / "splits" / split / "split.csv").read_bytes() == (local / "splits" / split / "split.csv").read_bytes()
    for model in MODELS:
        assert_frames_close(local / "leakage" / model / "mlp" / "scores.csv", remote / "leakage" / model / "mlp" / "scores.csv")
    assert (remote / "leakage" / "summary.md").read_text() == (local / "leakage" / "summary.md").read_text()
    assert (workdir / "results" / "figures" / "label_efficiency_synthetic.png").read_bytes()[:4] == b"\x89PNG"
    assert (workdir / "results" / "figures" / "layerwise_synthetic.png").read_bytes()[:4] == b"\x89PNG"
