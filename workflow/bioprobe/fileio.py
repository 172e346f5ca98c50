"""Crash-safe file writing.

Every output of the workflow is written to a temporary file beside its final path and renamed
into place only once it is complete, so an interrupted or crashed run never leaves a file that
looks finished.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the same folder as ``path``; rename it onto ``path`` on success.

    On any exception the temporary file (or folder) is removed and ``path`` is left untouched.
    The temporary name keeps the final suffix (``.h5``, ``.csv``) so that writers that look at
    the extension still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if suffix is None else suffix
    remove_stale_parts(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{suffix}", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # writers create it themselves (h5py, pandas, shutil)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if not tmp_path.exists():
            raise FileNotFoundError(f"writer did not create {tmp_path} for {path}")
        os.replace(tmp_path, path)
    except BaseException:
        if tmp_path.is_dir() and not tmp_path.is_symlink():
            shutil.rmtree(tmp_path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                tmp_path.unlink()
        raise


def remove_stale_parts(path: Path) -> None:
    """Remove temporary files of ``path`` that a killed writer left (one job writes a given output)."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.part*"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as indented, key-sorted JSON to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_csv(path: str | os.PathLike, frame) -> None:
    """Write a pandas DataFrame to ``path`` atomically, without the index."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


#: Test-only: ``resample``, ``embed`` or ``probe`` makes that step stop for good right after its
#: first write (the interruption tests kill the run there; see tests/test_workflow_interrupt.py).
PAUSE_ENV = "BIOPROBE_TEST_PAUSE_AFTER_FIRST_WRITE"


def pause_after_first_write(step: str) -> None:
    """Hang forever when ``$BIOPROBE_TEST_PAUSE_AFTER_FIRST_WRITE`` names ``step`` (a test hook; a no-op otherwise).

    Before hanging, touches ``$BIOPROBE_TEST_PAUSE_AFTER_FIRST_WRITE_MARKER`` (when set) so that
    the test knows the step is mid-write and can kill the run.
    """
    if os.environ.get(PAUSE_ENV) != step:
        return
    marker = os.environ.get(PAUSE_ENV + "_MARKER")
    if marker:
        with open(marker, "a") as fh:
            fh.write(f"{step} {os.getpid()}\n")
    while True:
        time.sleep(60)
