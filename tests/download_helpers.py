"""Shared pieces of the download tests: a watkins.zip served as archive.org serves it."""

from __future__ import annotations

from pathlib import Path

from archives import LocalServer

ITEM = "watkins_202104"
ZIP_ROUTE = f"/download/{ITEM}/watkins.zip"
XML_ROUTE = f"/download/{ITEM}/{ITEM}_files.xml"


def watkins_cfg(server: LocalServer, zip_path: Path, listing: str | None = None, **serve) -> dict:
    """Serve watkins.zip (and archive.org's listing of it) and return the dataset config pointing there."""
    url = server.add_file(ZIP_ROUTE, zip_path, **serve)
    cfg = {"type": "watkins", "urls": [url], "retry_backoff_s": 0.0, "retries": 3, "timeout_s": 10}
    if listing is not None:
        server.add_bytes(XML_ROUTE, listing.encode())
        cfg["files_xml"] = server.url + XML_ROUTE
    return cfg


def leftovers(data_dir: Path) -> list[str]:
    """Anything in data_dir that could pass for (part of) an extracted dataset."""
    return sorted(p.name for p in data_dir.iterdir() if p.name != ".downloads") if data_dir.exists() else []
