"""The dataset lock file (``resources/locks/datasets.json``): checksums recorded on first fetch.

A file whose host publishes no checksum gets its SHA-256 and md5 recorded here on the first
fetch; every later fetch is verified against the record. The file is meant to be committed with
the config. Updates are atomic and serialised by an advisory lock (two downloads may run at once).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Mapping

from ..fileio import write_json


@contextlib.contextmanager
def _locked(path: Path):
    """Hold an exclusive advisory lock beside ``path`` (two downloads may update one lock file)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.flock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_lock(lock_file: str | os.PathLike) -> dict:
    """Return the lock file's entries ``{"<dataset>/<file>": {...}}`` (empty when absent)."""
    lock_file = Path(lock_file)
    if not lock_file.exists():
        return {}
    try:
        data = json.loads(lock_file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{lock_file}: not valid JSON ({err}); fix or delete the broken entry") from err
    if not isinstance(data, dict) or not isinstance(data.get("files", {}), dict):
        raise ValueError(f"{lock_file}: expected an object with a 'files' mapping")
    return data.get("files", {})


def record_in_lock(lock_file: str | os.PathLike, key: str, entry: Mapping) -> None:
    """Add or replace one entry of the lock file (atomic write under an advisory lock)."""
    lock_file = Path(lock_file)
    with _locked(lock_file):
        files = read_lock(lock_file)
        files[key] = dict(entry)
        write_json(lock_file, {
            "about": "Checksums of downloaded dataset files, recorded by bioprobe on first fetch and "
                     "verified on every later fetch. Commit this file with your config.",
            "files": dict(sorted(files.items())),
        })
