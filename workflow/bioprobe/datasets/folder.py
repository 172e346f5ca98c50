"""``folder``: a user's own calls: audio files below ``root`` and a labels CSV.

Config::

    my_calls:
      type: folder
      root: /data/my_calls           # audio files below it
      labels: /data/my_calls/labels.csv
      split: {method: stratified}    # the default for this type

The CSV has columns ``path,label`` and optionally ``group,start,end``:

* ``path``: relative to ``root``; it may not leave ``root`` (absolute paths and ``..`` are refused).
* ``label``: the class; may not be empty.
* ``group``: what a grouped split keeps together (recording, individual); default: the file.
* ``start``, ``end``: seconds into the file; empty ``start`` means 0, empty ``end`` the end of
  the file; both empty (or the columns absent) means the whole file.
* ``split``: ``train``, ``val`` or ``test``, a split you fixed yourself; used with
  ``split: {method: predefined}``.

Rows keep the CSV's order. Problems of the CSV (unknown columns, empty labels, escaping or
missing files, bad times, the same clip on two rows) raise errors naming the CSV and its line
numbers; :func:`check_paths` checks ``root`` and ``labels`` when the workflow starts. The audio itself
(unreadable, truncated, empty files, segments past the end of their file...) is judged by the
audit step, file by file (:mod:`bioprobe.audit`, ``on_bad_audio``), not here.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from ..models import describe_local_path
from .common import finish_manifest, is_blank, path_escapes

NEEDS_DOWNLOAD = False
#: Config keys that change which clips exist or their audio / their labels, groups or exclusions.
#: ``labels`` is both: the CSV lists the clips and their labels (see clip_columns_digest).
CLIP_KEYS = ("root", "labels")
LABEL_KEYS = ("labels",)
REQUIRED_COLUMNS = ("path", "label")
OPTIONAL_COLUMNS = ("group", "start", "end", "split")
MAX_LISTED = 5


def is_available(dcfg: dict) -> tuple[bool, str]:
    for key in ("root", "labels"):
        if not dcfg.get(key):
            return False, f"'{key}' is not set (a folder dataset needs root: and labels:)"
    return True, ""


def _required(dcfg: dict, key: str) -> Path:
    if not dcfg.get(key):
        raise ValueError(f"folder dataset: '{key}' is required")
    return Path(dcfg[key]).expanduser()


def audio_root(name: str, dcfg: dict, data_dir) -> Path:
    return _required(dcfg, "root")


def prepare_inputs(name: str, dcfg: dict, data_dir) -> list[Path]:
    return [_required(dcfg, "labels")]


def clip_columns_digest(dcfg: dict) -> str | None:
    """sha256 of the labels CSV's clip columns (path, start, end, in row order); None if it is absent.

    The CSV holds both the clip list and the labels. The clips rule tracks this digest instead
    of the file's date, so editing a label or group re-runs the split and the probes, not the
    resampling and embedding. Standard library only: it runs when the Snakefile is parsed.
    """
    import csv
    import hashlib

    path = Path(dcfg.get("labels") or "").expanduser()
    if not dcfg.get("labels") or not path.is_file():
        return None
    digest = hashlib.sha256()
    # utf-8-sig: a spreadsheet's byte-order mark must not hide the header's first column
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
        reader = csv.reader(fh, skipinitialspace=True)
        header = [c.strip() for c in next(reader, [])]
        columns = [header.index(c) if c in header else None for c in ("path", "start", "end")]
        for row in reader:
            cells = [row[i].strip() if i is not None and i < len(row) else "" for i in columns]
            digest.update(("\x1f".join(cells) + "\n").encode())
    return digest.hexdigest()


def check_paths(name: str, dcfg: dict, made_by_workflow=()) -> None:
    """Raise a clear error when ``root`` is not a folder or ``labels`` is not a file.

    Cheap, for the Snakefile to call when it starts (before any job), so a wrong or relative path
    is named with the config key and what it resolved to, rather than as a missing input file.
    A labels file the workflow makes itself (``made_by_workflow``, the demo's) may be absent.
    """
    root, labels = _required(dcfg, "root"), _required(dcfg, "labels")
    made = {os.path.normpath(str(p)) for p in made_by_workflow}
    if os.path.normpath(str(dcfg["labels"])) in made:
        return
    if not labels.is_file():
        what = "is a folder, not a CSV file" if labels.is_dir() else "does not exist"
        raise FileNotFoundError(f"config key 'datasets.{name}.labels': the labels file {describe_local_path(labels)} {what}")
    if not root.is_dir():
        raise FileNotFoundError(f"config key 'datasets.{name}.root': the audio folder {describe_local_path(root)} is not a folder")


def _lines(rows: list[int]) -> str:
    shown = ", ".join(str(r) for r in rows[:MAX_LISTED])
    return shown + (f" (and {len(rows) - MAX_LISTED} more)" if len(rows) > MAX_LISTED else "")


def _seconds(value, csv_path: Path, line: int, column: str) -> float | None:
    if is_blank(value):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{csv_path}, line {line}: {column} {value!r} is not a number of seconds") from None
    if seconds != seconds or seconds < 0:
        raise ValueError(f"{csv_path}, line {line}: {column} must be a non-negative number of seconds, got {value!r}")
    return seconds


def _duplicate_lines(rows: list[dict]) -> list[list[int]]:
    """CSV line numbers of the rows naming the same clip (path, start, end), one list per clip."""
    seen: dict[tuple, list[int]] = {}
    for row in rows:
        start = 0.0 if row["start"] is None and row["end"] is not None else row["start"]
        seen.setdefault((row["path"], start, row["end"]), []).append(row["line"])
    return [lines for lines in seen.values() if len(lines) > 1]


def build_manifest(name: str, dcfg: dict, data_dir):
    """One row per CSV row, validated against the files below ``root``."""
    import pandas as pd

    root = audio_root(name, dcfg, data_dir)
    csv_path = _required(dcfg, "labels")
    if not root.is_dir():
        raise FileNotFoundError(f"folder dataset {name!r}: root {describe_local_path(root)} is not a folder")
    if not csv_path.is_file():
        raise FileNotFoundError(f"folder dataset {name!r}: labels file {describe_local_path(csv_path)} does not exist")
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False, skipinitialspace=True, encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"{csv_path}: not UTF-8 text ({err}); save it as CSV in UTF-8") from err
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ValueError(f"{csv_path}: not a readable CSV ({err})") from err
    columns = [c.strip() for c in table.columns]
    table.columns = columns
    unknown = [c for c in columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        hint = ""
        separator = next((sep for sep in (";", "\t", "|") if len(columns) == 1 and sep in columns[0]), None)
        if separator:
            hint = f". The header looks separated by {separator!r}: the file must be comma-separated"
        elif any(c.startswith("Unnamed: ") or not c for c in unknown):
            hint = (". A column without a name: an index written by pandas (write with index=False) "
                    "or empty columns left by a spreadsheet; remove it")
        raise ValueError(f"{csv_path}: unknown column(s) {unknown}; allowed: "
                         f"{', '.join(REQUIRED_COLUMNS)} (required), {', '.join(OPTIONAL_COLUMNS)} (optional){hint}")
    missing_cols = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing_cols:
        raise ValueError(f"{csv_path}: missing required column(s) {missing_cols}; found {columns}")
    if len(table) == 0:
        raise ValueError(f"{csv_path}: no rows")

    empty_label, escaping, absent, rows = [], [], [], []
    root_resolved = root.resolve()
    for i, rec in enumerate(table.to_dict("records")):
        line = i + 2  # 1-based, after the header
        rel = str(rec["path"]).strip()
        label = str(rec["label"]).strip()
        if not label:
            empty_label.append(line)
            continue
        if not rel or path_escapes(rel):
            escaping.append(line)
            continue
        full = root / rel
        # A symlink inside root may still point outside it.
        if not full.resolve().is_relative_to(root_resolved):
            escaping.append(line)
            continue
        if not full.is_file():
            absent.append(line)
            continue
        start = _seconds(rec.get("start"), csv_path, line, "start")
        end = _seconds(rec.get("end"), csv_path, line, "end")
        if end is not None:
            start = 0.0 if start is None else start
            if end <= start:
                raise ValueError(f"{csv_path}, line {line}: end ({end}) must be after start ({start})")
        group = str(rec.get("group", "")).strip() or PurePosixPath(rel).as_posix()
        row = {"path": PurePosixPath(rel).as_posix(), "start": start, "end": end, "label": label, "group": group,
               "line": line}
        if "split" in columns:
            row["split"] = str(rec["split"]).strip().lower()
            if row["split"] not in ("train", "val", "test"):
                raise ValueError(f"{csv_path}, line {line}: split {rec['split']!r} is not train, val or test")
        rows.append(row)
    if empty_label:
        raise ValueError(f"{csv_path}: empty label on line(s) {_lines(empty_label)}")
    if escaping:
        raise ValueError(f"{csv_path}: path leaves root {str(root)!r} (absolute, '..' or a link) on line(s) "
                         f"{_lines(escaping)}")
    if absent:
        example = str(table.iloc[absent[0] - 2]["path"]).strip()
        hint = " (paths are separated by '/', not '\\')" if "\\" in example else ""
        raise FileNotFoundError(f"{csv_path}: audio file missing below {str(root)!r} on line(s) {_lines(absent)}, "
                                f"e.g. {example!r}{hint}")
    duplicates = _duplicate_lines(rows)
    if duplicates:
        shown = "; ".join(f"lines {', '.join(map(str, lines))}" for lines in duplicates[:MAX_LISTED])
        more = f" (and {len(duplicates) - MAX_LISTED} more)" if len(duplicates) > MAX_LISTED else ""
        raise ValueError(f"{csv_path}: the same clip (path, start and end) is listed more than once: {shown}{more}. "
                         "A clip listed twice is counted twice and may land in train and test; keep one row per clip")
    df = pd.DataFrame(rows)
    extra = ("split",) if "split" in columns else ()
    return finish_manifest(df.drop(columns="line"), name, extra_columns=extra)
