"""Helpers shared by the dataset types: finding files in extracted archives, checking manifests."""

from __future__ import annotations

import math
import os
from pathlib import Path, PurePosixPath
from typing import Iterable

#: The columns of clips.csv: what audio each clip is, and nothing that depends on labels or splits.
CLIP_COLUMNS = ("clip_id", "path", "start", "end")
#: The columns every dataset table starts with (then extra id columns, then ``exclude``).
MANIFEST_COLUMNS = (*CLIP_COLUMNS, "label", "group")


def find_file(root: str | os.PathLike, filename: str, max_depth: int = 3) -> Path | None:
    """The shallowest file called ``filename`` below ``root`` (at most ``max_depth`` folders down), or None.

    Archives differ in whether they wrap their content in a top folder; searching a few levels
    makes the loaders indifferent to that. Ties at one depth are broken by sorted path.
    """
    root = Path(root)
    level = [root]
    for _ in range(max_depth + 1):
        hits = sorted(p / filename for p in level if (p / filename).is_file())
        if hits:
            return hits[0]
        level = sorted(child for p in level for child in p.iterdir() if child.is_dir() and not child.name.startswith("."))
        if not level:
            break
    return None


def read_annotation_table(root: Path, filename: str, required: set[str], where: str, hint: str):
    """Find ``filename`` below ``root`` and read it as text columns; return ``(path, table)``.

    Errors name the dataset (``where``), the file and the missing columns.
    """
    import pandas as pd

    path = find_file(root, filename) if root.is_dir() else None
    if path is None:
        raise FileNotFoundError(f"{where}: no {filename} below {root}; {hint}")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = required - set(table.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}; expected {', '.join(sorted(required))}")
    return path, table


def relative_posix(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` as a POSIX string (the manifest's ``path`` column)."""
    return path.relative_to(root).as_posix()


def path_escapes(rel: str) -> bool:
    """True when a relative path is absolute or climbs out of its root with ``..``."""
    posix = rel.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        return True
    depth = 0
    for part in PurePosixPath(posix).parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def make_clip_ids(name: str, n: int) -> list[str]:
    """Stable clip ids ``{name}-000000``... in manifest row order (no ``/``: they name HDF5 entries)."""
    width = max(6, len(str(max(n - 1, 0))))
    return [f"{name}-{i:0{width}d}" for i in range(n)]


def finish_manifest(df, name: str, extra_columns: Iterable[str] = ()):
    """Order the columns (manifest columns, then extras), reset the index, add ``clip_id``."""
    df = df.reset_index(drop=True)
    df.insert(0, "clip_id", make_clip_ids(name, len(df)))
    for column in ("start", "end"):
        if column not in df.columns:
            df[column] = float("nan")
        df[column] = df[column].astype(float)
    df["label"] = df["label"].astype(str)
    df["group"] = df["group"].astype(str)
    return df[list(MANIFEST_COLUMNS) + list(extra_columns)]


def check_manifest(df, where: str) -> None:
    """Raise ValueError naming ``where`` when a manifest breaks the contract of docs/architecture.md."""
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{where}: manifest lacks column(s) {missing}")
    if len(df) == 0:
        raise ValueError(f"{where}: the manifest is empty (no clips found)")
    if df["clip_id"].duplicated().any():
        raise ValueError(f"{where}: duplicate clip_id {df['clip_id'][df['clip_id'].duplicated()].iloc[0]!r}")
    bad = [p for p in df["path"] if path_escapes(str(p))]
    if bad:
        raise ValueError(f"{where}: path {bad[0]!r} escapes the audio root")
    both = df["start"].notna() & df["end"].notna()
    if (df.loc[both, "end"] <= df.loc[both, "start"]).any():
        row = df.index[both & (df["end"] <= df["start"])][0]
        raise ValueError(f"{where}: clip {df.at[row, 'clip_id']} has end <= start")


def is_blank(value) -> bool:
    """True for an empty CSV cell (None, NaN or whitespace)."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""
