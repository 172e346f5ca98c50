"""Interruption: a demo run killed while resample, embed and probe are writing recovers.

A test-only variable (``BIOPROBE_TEST_PAUSE_AFTER_FIRST_WRITE``, see bioprobe.fileio) makes the
named step hang right after its first write; the test then kills the whole Snakemake process
group with SIGKILL (no clean-up handler runs), checks that nothing of the killed job looks
complete (its final outputs are absent, or Snakemake schedules the job again), and moves on.
Finally the README's recovery (``--unlock``, then the README's command) completes the run, whose
audio, embeddings and scores equal those of an uninterrupted run.
"""

import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pandas as pd
import pytest

from test_workflow import DEMO_CONFIG, MODELS, REPO, planned_jobs

pytestmark = [pytest.mark.workflow, pytest.mark.timeout(3600)]


def command(workdir, *args):
    return [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
            "--configfile", str(DEMO_CONFIG), "--cores", "2", *args]


def run_until_paused(workdir, step, marker, timeout=1200):
    """Start the README's demo command with ``step`` set to hang after its first write; kill the group there."""
    env = dict(os.environ, BIOPROBE_TEST_PAUSE_AFTER_FIRST_WRITE=step, BIOPROBE_TEST_PAUSE_AFTER_FIRST_WRITE_MARKER=str(marker),
               PYTHONUNBUFFERED="1")
    with open(marker.with_suffix(".out"), "w") as out:
        proc = subprocess.Popen(command(workdir), env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + timeout
            while not marker.exists():
                assert proc.poll() is None, f"the run ended before {step} paused:\n{marker.with_suffix('.out').read_text()[-4000:]}"
                assert time.monotonic() < deadline, f"{step} did not pause within {timeout} s"
                time.sleep(0.5)
            time.sleep(1.0)  # a concurrent job of the same step may pause too
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    marker.unlink()


def recover(workdir):
    """The README's recovery after a hard kill: unlock once, then the same command."""
    subprocess.run(command(workdir, "--unlock"), check=True, capture_output=True, text=True)


def scheduled(workdir) -> dict:
    recover(workdir)
    return planned_jobs(workdir)


@pytest.fixture()
def reference(demo_run):
    """An uninterrupted run of the same command: the session's demo run (tests/conftest.py)."""
    return demo_run


def test_killed_mid_write_recovers_to_the_same_results(tmp_path, reference):
    work = tmp_path / "work"
    work.mkdir()
    marker = tmp_path / "paused"
    results = work / "results" / "synthetic"

    run_until_paused(work, "resample", marker)
    assert not (results / "audio16k.h5").exists()
    assert list(results.glob(".audio16k.h5.*.part.h5"))  # it was mid-write
    assert scheduled(work).get("resample") == 1

    run_until_paused(work, "embed", marker)
    assert (results / "audio16k.h5").is_file()
    missing = [m for m in MODELS if not (results / "embeddings" / f"{m}.h5").exists()]
    assert missing
    assert scheduled(work).get("embed") == len(missing)

    run_until_paused(work, "probe", marker)
    # the study split's probes and those of the leakage analysis' splits (same probe code)
    probe_dirs = [results / "probes" / m / "mlp" for m in MODELS]
    probe_dirs += [results / "splits" / s / "probes" / m / "mlp" for s in ("grouped_group", "nuisance_group") for m in MODELS]
    partial = [d for d in probe_dirs if (d / "predictions.h5").exists() and not (d / "scores.csv").exists()]
    assert partial  # written first, then the job was killed
    jobs = scheduled(work)
    # the killed probe jobs run again; embeddings that were complete are not redone
    unembedded = [m for m in MODELS if not (results / "embeddings" / f"{m}.h5").exists()]
    assert jobs.get("probe", 0) + jobs.get("probe_split", 0) >= len(partial)
    assert jobs.get("embed", 0) == len(unembedded) and "resample" not in jobs

    proc = subprocess.run(command(work), capture_output=True, text=True)  # the README's command
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert planned_jobs(work) == {}

    ref = reference / "results" / "synthetic"
    with h5py.File(results / "audio16k.h5") as a, h5py.File(ref / "audio16k.h5") as b:
        np.testing.assert_array_equal(a["samples"][:], b["samples"][:])
        assert list(a["clip_id"][:]) == list(b["clip_id"][:])
    for model in MODELS:
        with h5py.File(results / "embeddings" / f"{model}.h5") as a, h5py.File(ref / "embeddings" / f"{model}.h5") as b:
            np.testing.assert_array_equal(a["features"][:], b["features"][:])
        got = pd.read_csv(results / "probes" / model / "mlp" / "scores.csv")
        want = pd.read_csv(ref / "probes" / model / "mlp" / "scores.csv")
        pd.testing.assert_frame_equal(got, want)
    # what the killed writers left half-written was removed when their outputs were written again
    assert not list((work / "results").rglob(".*.part*"))
