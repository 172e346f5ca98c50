"""Host metadata: the file lists and published checksums of Zenodo records and archive.org items.

Zenodo's record API lists each file with its md5 and download link; archive.org publishes an
``<item>_files.xml`` with md5 and sha1 of every file of an item. The checksums found here are
what :func:`bioprobe.download.fetch.fetch_file` then verifies downloads against.
"""

from __future__ import annotations

import re
import urllib.parse
import xml.etree.ElementTree as ET

from .fetch import (
    HASH_ALGORITHMS,
    DownloadError,
    RemoteFile,
    get_json,
    make_session,
    parse_checksum,
    request_with_retries,
)


def zenodo_record_files(record_id: int | str, api_base: str = "https://zenodo.org/api/records",
                        session=None, timeout: float = 60.0, retries: int = 4,
                        backoff: float = 2.0) -> list[RemoteFile]:
    """List the files of a Zenodo record with their published checksums and download links.

    Reads ``{api_base}/{record_id}`` (Zenodo's REST API). Both the current layout
    (``key``, ``size``, ``checksum: "md5:..."``, ``links.self`` ending in ``/content``) and the
    legacy one (``filename``, ``filesize``, ``links.download``) are understood.
    """
    url = f"{api_base.rstrip('/')}/{record_id}"
    record = get_json(url, session=session, timeout=timeout, retries=retries, backoff=backoff)
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
    response = request_with_retries(sess, files_xml_url, timeout=timeout, retries=retries, backoff=backoff)
    listing = parse_archive_org_files_xml(response.content)
    if name not in listing:
        raise DownloadError(f"{files_xml_url} does not list {name!r} (it lists {sorted(listing)[:10]})")
    info = listing[name]
    return {k: v for k, v in info.items() if k in HASH_ALGORITHMS}, info["size"]
