"""Shared test set-up: import bioprobe from the checkout, keep torch small and deterministic.

Fixtures: ``server`` (a :class:`archives.LocalServer` on 127.0.0.1) and ``watkins_zip`` (a
Watkins-style archive, made once per module) for the download and weight tests; ``demo_run``,
the local whole-workflow demo run that several test files read (run once per session).
"""

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(REPO / "tests"))

# Never reach the real Hugging Face hub from tests.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="module")
def watkins_zip(tmp_path_factory):
    from archives import make_watkins_zip

    return make_watkins_zip(tmp_path_factory.mktemp("srv") / "watkins.zip", seconds=1.0)


@pytest.fixture()
def server():
    from archives import LocalServer

    with LocalServer() as srv:
        yield srv


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """A working directory where the demo config ran end to end locally (``--cores 2``)."""
    from workflow_helpers import snakemake

    workdir = tmp_path_factory.mktemp("demo")
    snakemake(workdir)
    return workdir


def load_bench(name: str):
    """The benchmark script ``bench/<name>.py`` as a module (the scripts are not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
