"""Fetch, verify and safely extract dataset archives.

What a user gets from this module:

* HTTP(S) downloads with retries and exponential backoff, resumed from a ``.part`` file with
  ``Range`` requests after a dropped connection, and mirrors tried in order as fallbacks.
* Checksums from the host itself where it publishes them (Zenodo's record API, archive.org's
  ``<item>_files.xml``); otherwise the SHA-256 is recorded in a lock file on the first fetch
  (``resources/locks/datasets.json``, meant to be committed) and verified on every later fetch.
  A checksum is never invented: a file with no published and no recorded checksum is recorded,
  and the record says so.
* Extraction that rejects members escaping the target folder (``..``, absolute paths, links,
  devices) and that extracts into a temporary folder renamed into place only at the end, so a
  crashed run never leaves a half-extracted dataset that looks complete.
* A marker ``{data_dir}/{dataset}/.complete.json`` (the checksum manifest of the sources and of
  every extracted file), which appears together with the dataset folder in one rename. When it is
  present and the files it lists are there, nothing is fetched again.

Only ``requests`` (and the standard library) is needed; nothing here imports torch or pandas.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import tarfile
import tempfile
import time
import urllib.parse
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Mapping, Sequence

from .fileio import write_json

log = logging.getLogger(__name__)

#: Hash algorithms the module understands, in the order they are preferred for verification.
HASH_ALGORITHMS = ("sha256", "sha1", "md5")
MARKER_NAME = ".complete.json"
#: A copy of the marker kept inside the dataset folder: Snakemake deletes a job's outputs (the
#: marker) before rerunning it, and this copy lets download() re-create the marker offline.
VERIFIED_RECORD_NAME = ".verified.json"
MARKER_FORMAT = 1
#: Streaming block size: a cut transfer loses at most the block in flight, so keep it modest.
CHUNK_BYTES = 1 << 16
USER_AGENT = "bioprobe-downloader (+https://github.com/bioprobe)"


class DownloadError(RuntimeError):
    """A file could not be fetched from any of its sources."""


class ChecksumError(DownloadError):
    """A fetched file does not match its published or recorded checksum."""


class UnsafeArchiveError(RuntimeError):
    """An archive holds a member that would land outside the extraction folder (or a link/device)."""


# --------------------------------------------------------------------------------------------
# Checksums
# --------------------------------------------------------------------------------------------


def parse_checksum(text: str) -> tuple[str, str]:
    """Split ``"md5:abc..."`` into ``("md5", "abc...")`` (the form Zenodo publishes)."""
    algo, sep, digest = str(text).partition(":")
    algo = algo.strip().lower()
    if not sep or algo not in HASH_ALGORITHMS or not re.fullmatch(r"[0-9a-fA-F]+", digest.strip()):
        raise ValueError(f"not a checksum of the form '<md5|sha1|sha256>:<hex>': {text!r}")
    return algo, digest.strip().lower()


def file_digests(path: str | os.PathLike, algorithms: Iterable[str] = HASH_ALGORITHMS) -> dict[str, str]:
    """Return ``{algorithm: hexdigest}`` of a file, computed in one pass over it."""
    hashers = {algo: hashlib.new(algo) for algo in algorithms}
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK_BYTES * 64):
            for hasher in hashers.values():
                hasher.update(block)
    return {algo: hasher.hexdigest() for algo, hasher in hashers.items()}


def checksum_mismatches(actual: Mapping[str, str], expected: Mapping[str, str]) -> list[str]:
    """Return human-readable mismatches between two ``{algo: hex}`` maps (only shared algorithms)."""
    return [
        f"{algo} is {actual[algo]}, expected {expected[algo]}"
        for algo in HASH_ALGORITHMS
        if algo in actual and algo in expected and actual[algo].lower() != expected[algo].lower()
    ]


# --------------------------------------------------------------------------------------------
# What to fetch
# --------------------------------------------------------------------------------------------


@dataclass
class RemoteFile:
    """One file to fetch: its name on disk, its sources (primary first) and what is known of it.

    ``checksums`` maps algorithm to hex digest as published by the host; ``checksum_source``
    says which host published them (``"zenodo"``, ``"archive.org"``) or is empty when none did.
    """

    name: str
    urls: list[str]
    size: int | None = None
    checksums: dict[str, str] = field(default_factory=dict)
    checksum_source: str = ""

    def __post_init__(self) -> None:
        if not self.urls:
            raise ValueError(f"{self.name}: no URL to fetch it from")
        if "/" in self.name or self.name in ("", ".", ".."):
            raise ValueError(f"not a plain file name: {self.name!r}")


def make_session(session=None):
    """Return a ``requests.Session`` with the downloader's user agent (or the one given)."""
    if session is not None:
        return session
    import requests

    sess = requests.Session()
    sess.headers["User-Agent"] = USER_AGENT
    return sess


def zenodo_record_files(record_id: int | str, api_base: str = "https://zenodo.org/api/records",
                        session=None, timeout: float = 60.0, retries: int = 4,
                        backoff: float = 2.0) -> list[RemoteFile]:
    """List the files of a Zenodo record with their published checksums and download links.

    Reads ``{api_base}/{record_id}`` (Zenodo's REST API). Both the current layout
    (``key``, ``size``, ``checksum: "md5:..."``, ``links.self`` ending in ``/content``) and the
    legacy one (``filename``, ``filesize``, ``links.download``) are understood.
    """
    url = f"{api_base.rstrip('/')}/{record_id}"
    record = _get_json(url, session=session, timeout=timeout, retries=retries, backoff=backoff)
    entries = record.get("files")
    if isinstance(entries, dict):  # some API versions nest the list under files.entries
        entries = list(entries.get("entries", {}).values()) if isinstance(entries.get("entries"), dict) else entries.get("entries")
    if not entries:
        raise DownloadError(f"Zenodo record {record_id} ({url}) lists no files")
    files = []
    for entry in entries:
        name = entry.get("key") or entry.get("filename")
        links = entry.get("links") or {}
        link = links.get("content") or links.get("self") or links.get("download")
        if not name or not link:
            raise DownloadError(f"Zenodo record {record_id}: file entry without name or link: {entry}")
        checksums = {}
        if entry.get("checksum"):
            algo, digest = parse_checksum(entry["checksum"])
            checksums[algo] = digest
        size = entry.get("size", entry.get("filesize"))
        files.append(RemoteFile(name=name, urls=[link], size=int(size) if size is not None else None,
                                checksums=checksums, checksum_source="zenodo" if checksums else ""))
    return files


def archive_org_files_xml_url(url: str) -> str | None:
    """Derive the ``<item>_files.xml`` listing URL from an archive.org download URL, or None.

    ``https://archive.org/download/<item>/<file>`` -> ``https://archive.org/download/<item>/<item>_files.xml``.
    """
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname or not (parts.hostname == "archive.org" or parts.hostname.endswith(".archive.org")):
        return None
    match = re.match(r"^/download/([^/]+)/", parts.path)
    if not match:
        return None
    item = match.group(1)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, f"/download/{item}/{item}_files.xml", "", ""))


def parse_archive_org_files_xml(text: str | bytes) -> dict[str, dict]:
    """Parse archive.org's ``<item>_files.xml`` into ``{name: {"size": int|None, "md5": .., "sha1": ..}}``."""
    root = ET.fromstring(text)
    listing = {}
    for node in root.iter("file"):
        name = node.get("name")
        if not name:
            continue
        info: dict = {"size": None}
        for algo in ("md5", "sha1"):
            value = node.findtext(algo)
            if value and re.fullmatch(r"[0-9a-fA-F]+", value.strip()):
                info[algo] = value.strip().lower()
        size = node.findtext("size")
        if size and size.strip().isdigit():
            info["size"] = int(size.strip())
        listing[name] = info
    return listing


def archive_org_checksums(files_xml_url: str, name: str, session=None, timeout: float = 60.0,
                          retries: int = 4, backoff: float = 2.0) -> tuple[dict[str, str], int | None]:
    """Return ``({algo: hex}, size)`` published by archive.org for the file ``name`` of an item."""
    sess = make_session(session)
    response = _request_with_retries(sess, files_xml_url, timeout=timeout, retries=retries, backoff=backoff)
    listing = parse_archive_org_files_xml(response.content)
    if name not in listing:
        raise DownloadError(f"{files_xml_url} does not list {name!r} (it lists {sorted(listing)[:10]})")
    info = listing[name]
    return {k: v for k, v in info.items() if k in HASH_ALGORITHMS}, info["size"]


# --------------------------------------------------------------------------------------------
# HTTP with retries and resume
# --------------------------------------------------------------------------------------------


def _is_retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


def _sleep_backoff(attempt: int, backoff: float) -> None:
    delay = min(backoff * (2 ** attempt), 60.0)
    if delay > 0:
        time.sleep(delay)


def _request_with_retries(session, url: str, timeout: float, retries: int, backoff: float):
    """GET a small resource (a listing, an API record) with retries on transient failures."""
    import requests

    last_error: Exception | None = None
    for attempt in range(retries + 1):
        try:
            response = session.get(url, timeout=timeout)
        except (requests.ConnectionError, requests.Timeout) as err:
            last_error = err
        else:
            if response.ok:
                return response
            if not _is_retryable_status(response.status_code):
                raise DownloadError(f"GET {url} failed: HTTP {response.status_code} {response.reason}")
            last_error = DownloadError(f"HTTP {response.status_code} {response.reason}")
        if attempt < retries:
            log.warning("GET %s failed (%s); retrying", url, last_error)
            _sleep_backoff(attempt, backoff)
    raise DownloadError(f"GET {url} failed after {retries + 1} attempts: {last_error}")


def _get_json(url: str, session=None, timeout: float = 60.0, retries: int = 4, backoff: float = 2.0):
    response = _request_with_retries(make_session(session), url, timeout, retries, backoff)
    try:
        return response.json()
    except ValueError as err:
        raise DownloadError(f"{url} did not return JSON: {err}") from err


class _RestartFromScratch(Exception):
    """The server ignored or refused our Range request; the .part file must be discarded."""


def _stream_to_part(session, url: str, part: Path, timeout: float, expected_size: int | None,
                    progress: Callable[[int, int | None], None] | None) -> None:
    """Fetch ``url`` into ``part``, appending from its current size with a Range request.

    Raises requests' connection errors when the transfer is cut, leaving what arrived in ``part``.
    """
    if url.startswith("file://"):
        _copy_local_source(url, part)
        return
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with session.get(url, stream=True, timeout=timeout, headers=headers) as response:
        if offset and response.status_code == 416:
            # Range not satisfiable: the .part may already hold the whole file.
            total = _total_size_from_416(response)
            if total is not None and total == offset:
                return
            raise _RestartFromScratch(f"server refused to resume at byte {offset}")
        if response.status_code == 404 or response.status_code == 403 or response.status_code == 410:
            raise DownloadError(f"HTTP {response.status_code} {response.reason}")
        if not response.ok:
            if _is_retryable_status(response.status_code):
                import requests

                raise requests.ConnectionError(f"HTTP {response.status_code} {response.reason}")
            raise DownloadError(f"HTTP {response.status_code} {response.reason}")
        if offset and response.status_code == 206:
            start = _content_range_start(response.headers.get("Content-Range", ""))
            if start != offset:
                raise _RestartFromScratch(f"server resumed at byte {start}, not {offset}")
            mode = "ab"
        else:
            offset, mode = 0, "wb"  # a plain 200: the server sends the whole file again
        total = expected_size
        if total is None:
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length and length.isdigit() else None
        received = offset
        with open(part, mode) as fh:
            for block in response.iter_content(chunk_size=CHUNK_BYTES):
                fh.write(block)
                received += len(block)
                if progress:
                    progress(received, total)
        if total is not None and received < total:
            import requests

            raise requests.ConnectionError(f"connection closed after {received} of {total} bytes")


def _copy_local_source(url: str, part: Path) -> None:
    """Copy a ``file://`` source (an archive fetched by other means, e.g. on a machine with internet)."""
    source = Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path))
    if not source.is_file():
        raise DownloadError(f"no such file: {source}")
    shutil.copyfile(source, part)


def _content_range_start(header: str) -> int | None:
    match = re.match(r"bytes\s+(\d+)-\d+/(\d+|\*)", header.strip())
    return int(match.group(1)) if match else None


def _total_size_from_416(response) -> int | None:
    match = re.match(r"bytes\s+\*/(\d+)", response.headers.get("Content-Range", "").strip())
    return int(match.group(1)) if match else None


class _ProgressLogger:
    """Log a line every ``every_s`` seconds while a large file arrives."""

    def __init__(self, name: str, every_s: float = 30.0):
        self.name, self.every_s, self._last = name, every_s, time.monotonic()

    def __call__(self, received: int, total: int | None) -> None:
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            pct = f" ({100 * received / total:.1f} %)" if total else ""
            log.info("%s: %.1f MB%s", self.name, received / 1e6, pct)


def fetch_file(remote: RemoteFile, dest: str | os.PathLike, expected: Mapping[str, str] | None = None,
               session=None, retries: int = 5, backoff: float = 2.0, timeout: float = 60.0) -> dict[str, str]:
    """Download ``remote`` to ``dest`` (resuming ``dest.part``), verify it and return its digests.

    Each URL of ``remote.urls`` is tried in order; on each, transient failures (dropped
    connections, timeouts, HTTP 429/5xx) are retried ``retries`` times with exponential backoff,
    resuming from the bytes already in ``dest.part``. ``expected`` (default
    ``remote.checksums``) is checked once the file is complete; a mismatch discards the partial
    file and moves on to the next URL. ``dest`` appears only once verified.

    Returns ``{"md5": ..., "sha1": ..., "sha256": ...}`` of the verified file.
    Raises :class:`ChecksumError` when every source served wrong bytes, else
    :class:`DownloadError` listing what failed on each source.
    """
    import requests

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    expected = dict(expected if expected is not None else remote.checksums)
    sess = make_session(session)
    failures: list[str] = []
    checksum_failed = False
    for url in remote.urls:
        fresh_retry_done = resumed = False
        attempt = restarts = 0
        while True:
            try:
                offset = part.stat().st_size if part.exists() else 0
                resumed = resumed or offset > 0
                log.info("fetching %s from %s%s", remote.name, url, f" (resuming at byte {offset})" if offset else "")
                _stream_to_part(sess, url, part, timeout, remote.size, _ProgressLogger(remote.name))
            except _RestartFromScratch as err:
                part.unlink(missing_ok=True)
                restarts += 1
                if restarts > 2:
                    failures.append(f"{url}: {err} (also after starting over)")
                    break
                log.warning("%s: %s; starting over", url, err)
                continue
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as err:
                if attempt < retries:
                    log.warning("%s: transfer interrupted (%s); retry %d of %d", url, err, attempt + 1, retries)
                    _sleep_backoff(attempt, backoff)
                    attempt += 1
                    continue
                failures.append(f"{url}: {err} (gave up after {retries + 1} attempts)")
                break
            except DownloadError as err:
                failures.append(f"{url}: {err}")
                break
            digests = file_digests(part)
            problems = checksum_mismatches(digests, expected)
            if remote.size is not None and part.stat().st_size != remote.size:
                problems.append(f"size is {part.stat().st_size} bytes, expected {remote.size}")
            if not problems:
                os.replace(part, dest)
                return digests
            part.unlink(missing_ok=True)
            if resumed and not fresh_retry_done:
                # The resumed .part may hold bytes of an earlier, different file: try once afresh.
                fresh_retry_done = resumed = True
                log.warning("%s from %s failed verification (%s); downloading it again from scratch",
                            remote.name, url, "; ".join(problems))
                continue
            checksum_failed = True
            failures.append(f"{url}: checksum mismatch: {'; '.join(problems)}")
            break
    kind = ChecksumError if checksum_failed else DownloadError
    raise kind(f"could not fetch {remote.name}:\n  " + "\n  ".join(failures))


# --------------------------------------------------------------------------------------------
# Lock file: checksums recorded on first fetch
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Safe extraction
# --------------------------------------------------------------------------------------------


def _safe_member_path(name: str, archive: Path) -> PurePosixPath | None:
    """Return the member's relative path, or raise if it would escape; None for the root itself."""
    if "\x00" in name:
        raise UnsafeArchiveError(f"{archive}: member name with a NUL byte: {name!r}")
    posix = name.replace("\\", "/")
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path")
    parts = [p for p in PurePosixPath(posix).parts if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} escapes the extraction folder ('..')")
    return PurePosixPath(*parts) if parts else None


def _zip_member_is_link(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16
    return stat.S_ISLNK(mode)


def _check_zip(archive: Path, zf: zipfile.ZipFile) -> None:
    for info in zf.infolist():
        _safe_member_path(info.filename, archive)
        if _zip_member_is_link(info):
            raise UnsafeArchiveError(f"{archive}: member {info.filename!r} is a symbolic link; "
                                     "dataset archives may only hold files and folders")


def _check_tar(archive: Path, tf: tarfile.TarFile) -> None:
    for member in tf.getmembers():
        _safe_member_path(member.name, archive)
        if member.issym() or member.islnk():
            raise UnsafeArchiveError(f"{archive}: member {member.name!r} is a link to {member.linkname!r}; "
                                     "dataset archives may only hold files and folders")
        if not (member.isfile() or member.isdir()):
            raise UnsafeArchiveError(f"{archive}: member {member.name!r} is a device, FIFO or other "
                                     "special file; dataset archives may only hold files and folders")


def archive_kind(path: str | os.PathLike) -> str | None:
    """Return ``"zip"``, ``"tar"`` or None (not an archive), judged by content, not by name."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        if tarfile.is_tarfile(path):
            return "tar"
    except (OSError, tarfile.TarError):
        pass
    return None


def safe_extract(archive: str | os.PathLike, target: str | os.PathLike) -> list[str]:
    """Extract a zip or tar(.gz/.bz2/.xz) archive into the folder ``target`` after checking every member.

    Every member is checked before anything is written: absolute paths, ``..`` components,
    symbolic and hard links, and special files raise :class:`UnsafeArchiveError`.
    Returns the extracted files' relative POSIX paths.
    """
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    kind = archive_kind(archive)
    if kind == "zip":
        with zipfile.ZipFile(archive) as zf:
            _check_zip(archive, zf)
            names = []
            for info in zf.infolist():
                rel = _safe_member_path(info.filename, archive)
                if rel is None:
                    continue
                out = target.joinpath(*rel.parts)
                if info.is_dir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK_BYTES)
                names.append(str(rel))
            return names
    if kind == "tar":
        with tarfile.open(archive) as tf:
            _check_tar(archive, tf)
            names = [str(_safe_member_path(m.name, archive)) for m in tf.getmembers()
                     if m.isfile() and _safe_member_path(m.name, archive) is not None]
            # The "data" filter (PEP 706) re-checks paths and drops unsafe modes as a second guard.
            tf.extractall(target, filter="data")
            return names
    raise UnsafeArchiveError(f"{archive}: not a zip or tar archive")


# --------------------------------------------------------------------------------------------
# A dataset: fetch all its files, extract into a temporary folder, rename, write the marker
# --------------------------------------------------------------------------------------------


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
        part = downloads / (remote.name + ".part")
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
