"""Safe extraction of dataset archives (zip, tar.gz/bz2/xz).

Every member is checked before anything is written: members escaping the target folder (``..``,
absolute paths), symbolic and hard links, devices and other special files are refused with
:class:`UnsafeArchiveError`. Whether a file is an archive is judged by its content, not its name.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from .fetch import CHUNK_BYTES


class UnsafeArchiveError(RuntimeError):
    """An archive holds a member that would land outside the extraction folder (or a link/device)."""


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
