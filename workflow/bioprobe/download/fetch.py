"""One HTTP(S) fetch path for every download: retries, resume, mirrors, checksums, progress.

Used by dataset downloads (:mod:`bioprobe.download.dataset`) and by weight downloads
(:mod:`bioprobe.weights`, the AVES files). :func:`fetch_file` tries each URL of a
:class:`RemoteFile` in order (mirrors as fallbacks); on each, dropped connections, timeouts and
HTTP 429/5xx are retried with exponential backoff, resuming from the bytes already in
``<dest>.part`` with ``Range`` requests; the file is checked against the expected checksums and
size, and appears at ``dest`` only once verified. ``file://`` sources are copied. Progress is
logged every 30 s while a large file arrives.

Only ``requests`` (and the standard library) is needed; nothing here imports torch or pandas.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

log = logging.getLogger(__name__)

#: Hash algorithms the module understands, in the order they are preferred for verification.
HASH_ALGORITHMS = ("sha256", "sha1", "md5")
#: Streaming block size: a cut transfer loses at most the block in flight, so keep it modest.
CHUNK_BYTES = 1 << 16
USER_AGENT = "bioprobe-downloader (+https://github.com/bioprobe)"


class DownloadError(RuntimeError):
    """A file could not be fetched from any of its sources."""


class ChecksumError(DownloadError):
    """A fetched file does not match its published or recorded checksum."""


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


def part_path(dest: str | os.PathLike) -> Path:
    """``<dest>.part``: where :func:`fetch_file` keeps the bytes of ``dest`` until they verify.

    A later :func:`fetch_file` of the same ``dest`` resumes from it.
    """
    dest = Path(dest)
    return dest.with_name(dest.name + ".part")


# --------------------------------------------------------------------------------------------
# HTTP with retries and resume
# --------------------------------------------------------------------------------------------


def _is_retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


def _sleep_backoff(attempt: int, backoff: float) -> None:
    delay = min(backoff * (2 ** attempt), 60.0)
    if delay > 0:
        time.sleep(delay)


def request_with_retries(session, url: str, timeout: float, retries: int, backoff: float):
    """GET a small resource (a listing, an API record) with retries on transient failures.

    Connection errors, timeouts and HTTP 429/5xx are retried ``retries`` times with exponential
    backoff; any other HTTP error raises :class:`DownloadError` at once. Returns the response.
    """
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


def get_json(url: str, session=None, timeout: float = 60.0, retries: int = 4, backoff: float = 2.0):
    """GET ``url`` through :func:`request_with_retries` and parse its body as JSON."""
    response = request_with_retries(make_session(session), url, timeout, retries, backoff)
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
    part = part_path(dest)
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
