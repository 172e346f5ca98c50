"""Fetch, verify and safely extract dataset archives (and any file by URL).

What a user gets from this package:

* HTTP(S) downloads with retries and exponential backoff, resumed from a ``.part`` file with
  ``Range`` requests after a dropped connection, and mirrors tried in order as fallbacks
  (:mod:`.fetch`; :mod:`bioprobe.weights` fetches the AVES files through it too).
* Checksums from the host itself where it publishes them (Zenodo's record API, archive.org's
  ``<item>_files.xml``: :mod:`.hosts`); otherwise the SHA-256 is recorded in a lock file on the
  first fetch (``resources/locks/datasets.json``, meant to be committed: :mod:`.lockfile`) and
  verified on every later fetch. A checksum is never invented: a file with no published and no
  recorded checksum is recorded, and the record says so.
* Extraction that rejects members escaping the target folder (``..``, absolute paths, links,
  devices: :mod:`.archives`) and that extracts into a temporary folder renamed into place only at
  the end, so a crashed run never leaves a half-extracted dataset that looks complete.
* A marker ``{data_dir}/{dataset}/.complete.json`` (the checksum manifest of the sources and of
  every extracted file), which appears together with the dataset folder in one rename. When it is
  present and the files it lists are there, nothing is fetched again (:mod:`.dataset`).

Only ``requests`` (and the standard library) is needed; nothing here imports torch or pandas.
"""

from __future__ import annotations

from .archives import UnsafeArchiveError, archive_kind, safe_extract
from .dataset import (
    MARKER_FORMAT,
    MARKER_NAME,
    VERIFIED_RECORD_NAME,
    bytes_needed,
    check_complete,
    default_lock_file,
    disk_space_problem,
    download_dataset,
    marker_path,
    restore_marker,
)
from .fetch import (
    CHUNK_BYTES,
    HASH_ALGORITHMS,
    ChecksumError,
    DownloadError,
    RemoteFile,
    checksum_mismatches,
    fetch_file,
    file_digests,
    parse_checksum,
)
from .hosts import archive_org_checksums, archive_org_files_xml_url, parse_archive_org_files_xml, zenodo_record_files
from .lockfile import read_lock, record_in_lock

__all__ = [
    "CHUNK_BYTES", "HASH_ALGORITHMS", "MARKER_FORMAT", "MARKER_NAME", "VERIFIED_RECORD_NAME",
    "ChecksumError", "DownloadError", "RemoteFile", "UnsafeArchiveError",
    "archive_kind", "archive_org_checksums", "archive_org_files_xml_url", "bytes_needed", "check_complete",
    "checksum_mismatches", "default_lock_file", "disk_space_problem", "download_dataset", "fetch_file",
    "file_digests", "marker_path", "parse_archive_org_files_xml", "parse_checksum", "read_lock",
    "record_in_lock", "restore_marker", "safe_extract", "zenodo_record_files",
]
