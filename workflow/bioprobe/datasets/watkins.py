"""Watkins Marine Mammal Sound Database, "best of" cuts: species classification (32 classes).

Source: ``watkins.zip`` from archive.org (item ``watkins_202104``; md5/sha1 published in the
item's ``watkins_202104_files.xml``), with a mirror on Google Cloud Storage. It unzips to
``annotations.csv`` (columns ``path,species``, e.g. ``Clymene_Dolphin/83006002.wav``, relative
to the CSV's folder) and one folder per species.

Manifest: one row per file, in annotations.csv order (the authors' order, so that the
``random`` split rule draws the same clips), whole files (``start``/``end`` empty),
``label`` = species; classes under ``min_clips_per_class`` are marked excluded by the split
rule, never removed from the clip list. ``group`` = the file itself: Watkins gives no recording or animal id
beyond the file. The first digits of a file name are believed to number the original tape
(*unverified*), so ``group_prefix_chars: N`` groups files sharing the first N characters of
their name, for users who want a stricter grouped split; it is off (0) by default.
"""

from __future__ import annotations

import logging
import urllib.parse
from pathlib import Path, PurePosixPath

from .common import finish_manifest, read_annotation_table

log = logging.getLogger(__name__)

NEEDS_DOWNLOAD = True
#: Config keys that change which clips exist or their audio / their labels, groups or exclusions.
CLIP_KEYS: tuple[str, ...] = ()
LABEL_KEYS = ("min_clips_per_class", "group_prefix_chars")
#: What the study reports for the whole database (compared after each split, a warning if not met).
STUDY_COUNTS = {"clips": 1697, "classes": 32}
DEFAULT_URLS = (
    "https://archive.org/download/watkins_202104/watkins.zip",
    "https://storage.googleapis.com/ml-bioacoustics-datasets/watkins.zip",
)
ANNOTATIONS = "annotations.csv"


def is_available(dcfg: dict) -> tuple[bool, str]:
    return True, ""


def _urls(dcfg: dict) -> list[str]:
    urls = list(dcfg.get("urls") or DEFAULT_URLS)
    if not urls:
        raise ValueError("watkins: 'urls' is empty")
    return urls


def _archive_name(dcfg: dict) -> str:
    """The file name of the archive (the last path component of the primary URL)."""
    name = PurePosixPath(urllib.parse.urlsplit(_urls(dcfg)[0]).path).name
    if not name:
        raise ValueError(f"watkins: cannot tell the file name from URL {_urls(dcfg)[0]!r}")
    return name


def source_names(dcfg: dict) -> list[str]:
    """Names of the files the download consists of (offline; used to check the marker)."""
    return [_archive_name(dcfg)]


def audio_root(name: str, dcfg: dict, data_dir) -> Path:
    return Path(data_dir) / name


def prepare_inputs(name: str, dcfg: dict, data_dir) -> list[Path]:
    from ..download import marker_path

    return [marker_path(data_dir, name)]


def _published_checksums(dcfg: dict, archive: str) -> tuple[dict, int | None, str]:
    """archive.org's md5/sha1 for the archive, or nothing when no listing is configured or reachable."""
    from ..download import DownloadError, archive_org_checksums, archive_org_files_xml_url

    listing = dcfg.get("files_xml")
    if not listing:
        listing = next((u for u in map(archive_org_files_xml_url, _urls(dcfg)) if u), None)
    if not listing:
        return {}, None, ""
    try:
        checksums, size = archive_org_checksums(listing, archive, retries=int(dcfg.get("retries", 5)),
                                                backoff=float(dcfg.get("retry_backoff_s", 2.0)),
                                                timeout=float(dcfg.get("timeout_s", 60.0)))
    except DownloadError as err:
        log.warning("could not read the checksum listing %s (%s); falling back to the lock file", listing, err)
        return {}, None, ""
    return checksums, size, f"archive.org ({listing})"


def download(name: str, dcfg: dict, data_dir, lock_file) -> Path:
    """Fetch watkins.zip (primary URL, then mirrors), verify it, extract it into ``{data_dir}/{name}``."""
    from ..download import RemoteFile, download_dataset

    archive = _archive_name(dcfg)
    checksums, size, source = _published_checksums(dcfg, archive)
    remote = RemoteFile(name=archive, urls=_urls(dcfg), size=size, checksums=checksums, checksum_source=source)
    return download_dataset(name, "watkins", [remote], data_dir, lock_file=lock_file,
                            keep_archives=bool(dcfg.get("keep_archives", False)),
                            retries=int(dcfg.get("retries", 5)), backoff=float(dcfg.get("retry_backoff_s", 2.0)),
                            timeout=float(dcfg.get("timeout_s", 60.0)))


def build_manifest(name: str, dcfg: dict, data_dir):
    """One row per annotated file (``min_clips_per_class`` is applied by the split, as exclusions)."""
    import pandas as pd

    root = audio_root(name, dcfg, data_dir)
    annotations, table = read_annotation_table(
        root, ANNOTATIONS, {"path", "species"}, "watkins",
        "run the download step first (bioprobe.datasets.download) or check data_dir")
    base = annotations.parent.relative_to(root)
    rows, missing = [], []
    for i, rec in enumerate(table.itertuples(index=False)):
        rel = str(rec.path).strip()
        species = str(rec.species).strip()
        if not rel or not species:
            raise ValueError(f"{annotations}, line {i + 2}: empty path or species")
        path = (base / rel).as_posix() if str(base) != "." else PurePosixPath(rel).as_posix()
        if not (root / path).is_file():
            missing.append(f"line {i + 2}: {path}")
            continue
        stem = PurePosixPath(rel).stem
        prefix = int(dcfg.get("group_prefix_chars", 0) or 0)
        group = stem[:prefix] if prefix > 0 else PurePosixPath(rel).as_posix()
        rows.append({"path": path, "label": species, "group": group})
    if missing:
        raise FileNotFoundError(f"{annotations}: {len(missing)} listed file(s) are missing below {root}, e.g. "
                                + "; ".join(missing[:5]))
    df = finish_manifest(pd.DataFrame(rows), name)
    df.attrs["study_counts"] = {"clips": len(df), "classes": int(df["label"].nunique())}
    return df
