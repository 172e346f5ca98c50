"""The SLURM profile, fitted to the test node, gives every job of the demo a request the node can
satisfy (no SLURM needed: Snakemake's dry run prints each job's threads and resources).

A rule's own ``resources:`` reach ``sbatch`` unchanged unless the profile's ``set-resources``
override them. The label-efficiency rules once declared ``mem_mb=12000`` with no entry in the
profile: on the 8000 MB test node ``sbatch`` refused them ("Memory specification can not be
satisfied"), so no SLURM job, no SLURM log and no rule log existed. This test finds such a rule
in two seconds, before tests/test_slurm.py spends minutes on the cluster.
"""

from __future__ import annotations

import os
import re

import yaml
from slurm_cluster import JOB_MEM_MB, PARTITION, PROFILE, node_profile
from workflow_helpers import DEMO_CORES, snakemake

_RULE = re.compile(r"^\s*(?:local)?rule (\w+):$")
_FIELD = re.compile(r"^\s*(threads|resources): (.*)$")


def dry_run_jobs(text: str) -> list[dict]:
    """Each job of a ``snakemake -n`` listing: rule, threads (1 when not printed), resources."""
    jobs: list[dict] = []
    for line in text.splitlines():
        match = _RULE.match(line)
        if match:
            jobs.append({"rule": match.group(1), "threads": 1, "resources": {}})
            continue
        field = _FIELD.match(line)
        if field and jobs:
            if field.group(1) == "threads":
                jobs[-1]["threads"] = int(field.group(2))
            else:
                jobs[-1]["resources"] = dict(item.split("=", 1) for item in field.group(2).split(", "))
    return jobs


def test_dry_run_jobs_parses_a_listing():
    text = (
        "rule all:\n    input: a\n"
        "    Group job g (jobs in lexicogr. order):\n"
        "    rule probe:\n        threads: 2\n        resources: tmpdir=/tmp, mem_mb=<TBD>, slurm_account=\n"
        "localrule tables:\n    resources: mem_mb=3000, runtime=30\n"
    )
    assert dry_run_jobs(text) == [
        {"rule": "all", "threads": 1, "resources": {}},
        {"rule": "probe", "threads": 2, "resources": {"tmpdir": "/tmp", "mem_mb": "<TBD>", "slurm_account": ""}},
        {"rule": "tables", "threads": 1, "resources": {"mem_mb": "3000", "runtime": "30"}},
    ]


def test_every_demo_job_fits_the_test_node(tmp_path):
    profile = node_profile(yaml.safe_load(PROFILE.read_text()), DEMO_CORES, JOB_MEM_MB)
    profile_dir = tmp_path / "profile"
    profile_dir.mkdir()
    (profile_dir / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    workdir = tmp_path / "run"
    workdir.mkdir()
    env = dict(os.environ, BIOPROBE_SLURM_PARTITION=PARTITION)
    proc = snakemake(workdir, "-n", "--workflow-profile", str(profile_dir), cores=None, env=env)
    jobs = [j for j in dry_run_jobs(proc.stdout + proc.stderr) if j["rule"] != "all"]
    rules = {j["rule"] for j in jobs}
    # the whole demo DAG, extensions included
    assert {"embed", "probe", "fuse", "label_efficiency", "label_efficiency_fusion", "cheapest_layer"} <= rules, rules
    # Sized from input files that a dry run in an empty folder does not have: `<TBD>`, and
    # then only for a rule whose memory the profile sets (so the test node's cap applies).
    sized = {rule for rule, res in profile["set-resources"].items() if "mem_mb" in res}
    for job in jobs:
        mem = job["resources"].get("mem_mb")
        assert mem is not None, f"rule {job['rule']}: no mem_mb in the dry run: {job}"
        if mem == "<TBD>":
            assert job["rule"] in sized, f"rule {job['rule']}: memory unknown and not set by {PROFILE}"
        else:
            assert int(mem) <= JOB_MEM_MB, (
                f"rule {job['rule']} asks for mem_mb={mem}, more than the test node gives a job "
                f"({JOB_MEM_MB}): the rule's own resources are not overridden in {PROFILE} set-resources"
            )
        assert job["threads"] <= DEMO_CORES, f"rule {job['rule']}: {job['threads']} threads on a {DEMO_CORES}-CPU node"
        assert job["resources"].get("slurm_partition") == PARTITION, job
