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

Rows keep the CSV's order. Problems (unknown columns, empty labels, escaping or missing files,
bad times, files libsndfile cannot read, segments past the end of their file) raise errors naming
the CSV and its line numbers. ``check_audio: false`` skips reading the file headers.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

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
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh, skipinitialspace=True)
        header = [c.strip() for c in next(reader, [])]
        columns = [header.index(c) if c in header else None for c in ("path", "start", "end")]
        for row in reader:
            cells = [row[i].strip() if i is not None and i < len(row) else "" for i in columns]
            digest.update(("\x1f".join(cells) + "\n").encode())
    return digest.hexdigest()


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


def build_manifest(name: str, dcfg: dict, data_dir):
    """One row per CSV row, validated against the files below ``root``."""
    import pandas as pd

    root = audio_root(name, dcfg, data_dir)
    csv_path = _required(dcfg, "labels")
    if not root.is_dir():
        raise FileNotFoundError(f"folder dataset {name!r}: root {str(root)!r} is not a folder")
    if not csv_path.is_file():
        raise FileNotFoundError(f"folder dataset {name!r}: labels file {str(csv_path)!r} does not exist")
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"{csv_path}: not a readable CSV ({err})") from err
    columns = [c.strip() for c in table.columns]
    table.columns = columns
    unknown = [c for c in columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise ValueError(f"{csv_path}: unknown column(s) {unknown}; allowed: "
                         f"{', '.join(REQUIRED_COLUMNS)} (required), {', '.join(OPTIONAL_COLUMNS)} (optional)")
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
        raise FileNotFoundError(f"{csv_path}: audio file missing below {str(root)!r} on line(s) {_lines(absent)}, "
                                f"e.g. {table.iloc[absent[0] - 2]['path']!r}")
    df = pd.DataFrame(rows)
    if dcfg.get("check_audio", True):
        check_audio_files(df, root, csv_path, lines=[r["line"] for r in rows])
    extra = ("split",) if "split" in columns else ()
    return finish_manifest(df.drop(columns="line"), name, extra_columns=extra)


def check_audio_files(df, root: Path, csv_path: Path, lines: list[int]) -> None:
    """Read every file's header: unreadable files and segments past the end of their file are errors.

    Catching these here names the CSV line; later steps could only name the clip.
    """
    import soundfile

    durations: dict[str, float | None] = {}
    unreadable, too_long = [], []
    for line, rel, start, end in zip(lines, df["path"], df["start"], df["end"]):
        if rel not in durations:
            try:
                info = soundfile.info(str(root / rel))
                durations[rel] = info.frames / info.samplerate if info.samplerate else None
            except (RuntimeError, soundfile.LibsndfileError):
                durations[rel] = None
                unreadable.append(line)
                continue
        duration = durations[rel]
        if duration is None:
            continue
        # Half a millisecond of slack: segment times are often rounded in annotation tools.
        limit = duration + 5e-4
        if (end is not None and end == end and end > limit) or (start is not None and start == start and start >= duration):
            too_long.append(f"{line} ({rel} lasts {duration:.3f} s)")
    if unreadable:
        raise ValueError(f"{csv_path}: audio file not readable by libsndfile on line(s) {_lines(unreadable)}")
    if too_long:
        raise ValueError(f"{csv_path}: segment beyond the end of its file on line(s) {_lines(too_long)}")
