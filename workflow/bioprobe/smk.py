"""Small helpers for the Snakemake scripts (kept thin: they wire files to library calls)."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from pathlib import Path


@contextlib.contextmanager
def logged(snakemake):
    """Send stdout, stderr and logging of the block to the rule's log file.

    A failure's traceback goes to the log too, then the error propagates so the job fails
    (and Snakemake removes its outputs).
    """
    log_files = list(getattr(snakemake, "log", []) or [])
    if not log_files:
        yield
        return
    path = Path(log_files[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1) as fh, contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
        handler = logging.StreamHandler(fh)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            yield
        except BaseException:
            traceback.print_exc(file=fh)
            # Also on the console, so a user sees why the job failed without opening the log.
            print(f"bioprobe: error, see {path}:\n{traceback.format_exc()}", file=sys.__stderr__)
            raise
        finally:
            root.removeHandler(handler)


def go_offline() -> None:
    """Keep this job off the network: ``HF_HUB_OFFLINE=1`` for huggingface_hub / transformers.

    huggingface_hub reads the variable once, when it is imported: call this before anything
    imports it (first thing in the embed and probe scripts; never in fetch_weights). Raises if
    it was imported already, since setting the variable then would change nothing.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    if "huggingface_hub" in sys.modules:
        raise RuntimeError("huggingface_hub was imported before HF_HUB_OFFLINE was set; "
                           "call bioprobe.smk.go_offline() before importing anything that imports it")
