"""A dataset's download: fetch all its files, extract them, and write the completion marker.

:func:`download_dataset` fetches every file through :func:`bioprobe.download.fetch.fetch_file`
into ``{data_dir}/.downloads/{name}/``, verified against the host's checksums and the lock file
(:mod:`bioprobe.download.lockfile`); it extracts the archives (:mod:`bioprobe.download.archives`)
into a temporary folder that is renamed into place only at the end, together with the marker
``{data_dir}/{name}/.complete.json`` (the checksum manifest of the sources and of every extracted
file). When that marker is present and the files it lists are there (:func:`check_complete`),
nothing is fetched again.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

from ..fileio import write_json
from .archives import archive_kind, safe_extract
from .fetch import HASH_ALGORITHMS, ChecksumError, DownloadError, RemoteFile, fetch_file, part_path
from .lockfile import read_lock, record_in_lock

log = logging.getLogger(__name__)

MARKER_NAME = ".complete.json"
#: A copy of the marker kept inside the dataset folder: Snakemake deletes a job's outputs (the
#: marker) before rerunning it, and this copy lets download() re-create the marker offline.
VERIFIED_RECORD_NAME = ".verified.json"
MARKER_FORMAT = 1


def marker_path(data_dir: str | os.PathLike, name: str) -> Path:
    """``{data_dir}/{name}/.complete.json``: the checksum manifest, present only for a verified dataset."""
    return Path(data_dir) / name / MARKER_NAME


def default_lock_file(data_dir: str | os.PathLike) -> Path:
    """``resources/locks/datasets.json`` when ``data_dir`` is ``resources/data`` (its sibling ``locks/``)."""
    return Path(data_dir).parent / "locks" / "datasets.json"


def _inventory(folder: Path) -> dict[str, int]:
    """``{relative posix path: size}`` of every regular file below ``folder`` (markers excluded)."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name not in (MARKER_NAME, VERIFIED_RECORD_NAME):
            files[path.relative_to(folder).as_posix()] = path.stat().st_size
    return files


def check_complete(data_dir: str | os.PathLike, name: str, expected_sources: Sequence[str] | None = None,
                   dataset_type: str | None = None) -> tuple[bool, str]:
    """Return ``(True, "")`` when the dataset folder holds a consistent record of a verified download.

    Consistent: the record (the marker, or the copy kept inside the folder) parses, names the same
    dataset type and the same source files, and every extracted file it lists exists with its
    recorded size. This is cheap (one ``stat`` per file) and needs no network.
    """
    folder = Path(data_dir) / name
    for record_path in (folder / MARKER_NAME, folder / VERIFIED_RECORD_NAME):
        if record_path.exists():
            break
    else:
        return False, f"no {MARKER_NAME} in {folder}"
    try:
        record = json.loads(record_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        return False, f"{record_path} is unreadable ({err})"
    if record.get("format") != MARKER_FORMAT or record.get("dataset") != name:
        return False, f"{record_path} belongs to another dataset or format"
    if dataset_type is not None and record.get("type") != dataset_type:
        return False, f"{record_path} is of type {record.get('type')!r}, config says {dataset_type!r}"
    if expected_sources is not None:
        have = sorted(s["name"] for s in record.get("sources", []))
        if have != sorted(expected_sources):
            return False, f"{record_path} lists sources {have}, config needs {sorted(expected_sources)}"
    for rel, size in record.get("files", {}).items():
        path = folder / rel
        try:
            actual = path.stat().st_size
        except FileNotFoundError:
            return False, f"{path} is missing"
        if actual != size:
            return False, f"{path} has {actual} bytes, the record says {size}"
    return True, ""


def _resolve_expected(remote: RemoteFile, lock_entry: Mapping | None, lock_file: Path, key: str) -> dict[str, str]:
    """Checksums a download must match: the host's published ones and the lock file's record."""
    expected = dict(remote.checksums)
    if lock_entry:
        for algo in HASH_ALGORITHMS:
            if algo in lock_entry and algo in expected and lock_entry[algo] != expected[algo]:
                raise ChecksumError(
                    f"{remote.name}: the host now publishes {algo} {expected[algo]}, but {lock_file} "
                    f"recorded {lock_entry[algo]} for {key!r}. The host changed the file; if that is "
                    f"intended, delete the entry {key!r} from {lock_file} and rerun.")
            if algo in lock_entry:
                expected.setdefault(algo, lock_entry[algo])
    return expected


def download_dataset(name: str, dataset_type: str, remotes: Sequence[RemoteFile], data_dir: str | os.PathLike,
                     lock_file: str | os.PathLike | None = None, keep_archives: bool = False,
                     extract: bool = True, session=None, retries: int = 5, backoff: float = 2.0,
                     timeout: float = 60.0) -> Path:
    """Fetch, verify and extract a dataset into ``{data_dir}/{name}/``; return the marker path.

    Steps: fetch every file to ``{data_dir}/.downloads/{name}/`` (resumable, verified against
    published checksums and the lock file; files with neither get their SHA-256 recorded in the
    lock file); extract every archive into a temporary sibling folder (non-archives are copied);
    write the checksum manifest into it; rename it to ``{data_dir}/{name}`` in one step. An
    archive already downloaded and verified is not fetched again.
    """
    data_dir = Path(data_dir)
    lock_file = Path(lock_file) if lock_file is not None else default_lock_file(data_dir)
    final = data_dir / name
    marker = final / MARKER_NAME
    downloads = data_dir / ".downloads" / name
    downloads.mkdir(parents=True, exist_ok=True)
    lock_entries = read_lock(lock_file)
    problem = disk_space_problem(bytes_needed(remotes, downloads), shutil.disk_usage(data_dir).free)
    if problem:
        raise DownloadError(f"{name}: {problem} in {data_dir}; free some space or point data_dir elsewhere")

    sources = []
    for remote in remotes:
        key = f"{name}/{remote.name}"
        expected = _resolve_expected(remote, lock_entries.get(key), lock_file, key)
        dest = downloads / remote.name
        done = dest.with_name(dest.name + ".verified.json")
        if dest.exists() and done.exists() and json.loads(done.read_text()).get("size") == dest.stat().st_size:
            digests = json.loads(done.read_text())["digests"]
            log.info("%s: already downloaded and verified", dest)
        else:
            done.unlink(missing_ok=True)
            dest.unlink(missing_ok=True)
            digests = fetch_file(remote, dest, expected=expected, session=session, retries=retries,
                                 backoff=backoff, timeout=timeout)
            write_json(done, {"size": dest.stat().st_size, "digests": digests})
        if remote.checksum_source:
            how = remote.checksum_source
        elif key in lock_entries:
            how = f"lock file {lock_file}"
        else:
            how = "none published; recorded on first fetch"
        entry = {"size": dest.stat().st_size, "sha256": digests["sha256"], "md5": digests["md5"],
                 "url": remote.urls[0], "verified_against": how}
        if key not in lock_entries or any(lock_entries[key].get(k) != entry[k] for k in ("sha256", "md5", "size")):
            entry["recorded"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            record_in_lock(lock_file, key, entry)
        sources.append({"name": remote.name, "url": remote.urls[0], "size": entry["size"],
                        "sha256": digests["sha256"], "md5": digests["md5"], "verified_against": how})

    staging = Path(tempfile.mkdtemp(prefix=f".{name}.extracting-", dir=data_dir))
    try:
        for remote in remotes:
            path = downloads / remote.name
            if extract and archive_kind(path):
                log.info("extracting %s", path)
                safe_extract(path, staging)
            else:
                shutil.copyfile(path, staging / remote.name)
        record = {
            "format": MARKER_FORMAT,
            "dataset": name,
            "type": dataset_type,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "sources": sources,
            "files": _inventory(staging),
        }
        write_json(staging / VERIFIED_RECORD_NAME, record)
        write_json(staging / MARKER_NAME, record)
        _replace_folder(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if not keep_archives:
        shutil.rmtree(downloads, ignore_errors=True)
        with contextlib.suppress(OSError):
            downloads.parent.rmdir()  # only when no other dataset's downloads are pending
    log.info("%s: %d files verified and extracted into %s", name, len(record["files"]), final)
    return marker


def bytes_needed(remotes: Sequence[RemoteFile], downloads: Path) -> int:
    """Disk space a download still needs: the missing archive bytes plus room to extract them all.

    Extracted audio takes about as much room as its archive (WAV barely compresses); files of
    unknown size count as 0, so the estimate is a lower bound.
    """
    total = missing = 0
    for remote in remotes:
        size = remote.size or 0
        total += size
        have = downloads / remote.name
        part = part_path(downloads / remote.name)
        done = have.stat().st_size if have.exists() else part.stat().st_size if part.exists() else 0
        missing += max(size - done, 0)
    return missing + total


def disk_space_problem(needed_bytes: int, free_bytes: int, margin: float = 1.05) -> str | None:
    """A message when ``free_bytes`` is less than ``needed_bytes`` plus a 5 % margin, else None."""
    if needed_bytes * margin <= free_bytes:
        return None
    return (f"needs about {needed_bytes * margin / 1e9:.1f} GB of free disk (download and extraction), "
            f"only {free_bytes / 1e9:.1f} GB are free")


def _replace_folder(staging: Path, final: Path) -> None:
    """Move ``staging`` onto ``final``.

    An existing ``final`` is replaced only when it is empty (Snakemake creates output folders
    before a job runs) or holds an earlier bioprobe record (a download gone stale); a folder of
    files bioprobe did not verify is never deleted.
    """
    if final.is_symlink() or final.is_file():
        raise FileExistsError(f"{final} exists and is not a dataset folder made by bioprobe; move it away and rerun")
    if final.exists():
        ours = (final / VERIFIED_RECORD_NAME).exists() or (final / MARKER_NAME).exists()
        if any(final.iterdir()) and not ours:
            raise FileExistsError(
                f"{final} already holds files that bioprobe did not download and verify; move them away "
                f"(or point data_dir elsewhere) and rerun. To use a copy of the archive you already have, "
                f"list it first in urls: as file:///path/to/the/archive.")
        trash = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        os.replace(final, trash / final.name)
        shutil.rmtree(trash, ignore_errors=True)
    os.replace(staging, final)


def restore_marker(data_dir: str | os.PathLike, name: str) -> Path:
    """Re-create ``.complete.json`` from the verified record kept in the dataset folder (no network)."""
    folder = Path(data_dir) / name
    record = json.loads((folder / VERIFIED_RECORD_NAME).read_text())
    write_json(folder / MARKER_NAME, record)
    return folder / MARKER_NAME
