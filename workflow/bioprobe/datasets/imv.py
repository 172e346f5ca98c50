"""InfantMarmosetsVox (IMV): marmoset call type (11 classes) or caller (10 classes).

Source: Zenodo record 10130104: ``InfantMarmosetsVox_twin_{1..5}.tar.gz`` (the audio, ten-minute
recordings at 44.1 kHz, ``data/twin_<T>/<filename>.wav``) and
``InfantMarmosetsVox_documentation.tar.gz`` (``labels.csv``: filename,start,end,duration,
calltype,caller). Checksums come from Zenodo's record API.

Manifest: one row per labelled call, in labels.csv order (the authors' order), with
``start``/``end`` in seconds. Dropped as in the authors' code, and counted in the report:
call types 11 (Silence) and 12 (Noise), unknown or missing call types, rows whose recording is
absent. Also dropped here (the authors kept them): segments with ``end <= start``.

``task: calltype`` labels calls by type name; ``task: caller`` labels them by the recorded
individual, ``twin<T>_marmoset<M>`` from the file name (the authors' definition, 5 twin pairs x
2 = 10 classes). ``group`` = the recording (file name). Extra columns for the leakage report:
``recording``, ``individual`` (as above) and ``caller`` (labels.csv's raw caller column).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from .common import finish_manifest, read_annotation_table

log = logging.getLogger(__name__)

NEEDS_DOWNLOAD = True
#: Config keys that change which clips exist or their audio / their labels, groups or exclusions.
CLIP_KEYS = ("twins",)
LABEL_KEYS = ("task",)
DOWNLOAD_KEYS = ("zenodo_record",)
#: What the study reports (all twins; calls counted before rows with end <= start are dropped).
STUDY_COUNTS = {"clips": 72921, "classes": 11}
ZENODO_RECORD = 10130104
ZENODO_API = "https://zenodo.org/api/records"
TWINS = (1, 2, 3, 4, 5)
DOCUMENTATION = "InfantMarmosetsVox_documentation.tar.gz"
LABELS = "labels.csv"
TASKS = ("calltype", "caller")

#: Call type codes of labels.csv and their names (11 Silence and 12 Noise are not calls).
CALLTYPE_NAMES = {
    0: "Peep(Pre-Phee)", 1: "Phee", 2: "Twitter", 3: "Trill", 4: "Trillphee", 5: "Tsik Tse",
    6: "Egg", 7: "Pheecry(cry)", 8: "TrllTwitter", 9: "Pheetwitter", 10: "Peep",
}
SILENCE, NOISE = 11, 12
RECORDING_NAME = re.compile(r"^(?P<date>\d+)_Twin(?P<twin>\d+)_marmoset(?P<marmoset>\d+)$")


def is_available(dcfg: dict) -> tuple[bool, str]:
    return True, ""


def twins(dcfg: dict) -> list[int]:
    chosen = [int(t) for t in (dcfg.get("twins") or TWINS)]
    bad = [t for t in chosen if t not in TWINS]
    if bad:
        raise ValueError(f"imv: twins must be among {list(TWINS)}, got {bad}")
    return sorted(set(chosen))


def twin_archive(twin: int) -> str:
    return f"InfantMarmosetsVox_twin_{twin}.tar.gz"


def source_names(dcfg: dict) -> list[str]:
    return [twin_archive(t) for t in twins(dcfg)] + [DOCUMENTATION]


def audio_root(name: str, dcfg: dict, data_dir) -> Path:
    return Path(data_dir) / name


def prepare_inputs(name: str, dcfg: dict, data_dir) -> list[Path]:
    from ..download import marker_path

    return [marker_path(data_dir, name)]


def download(name: str, dcfg: dict, data_dir, lock_file) -> Path:
    """Fetch the selected twin tarballs and the documentation from Zenodo, verified against its md5s."""
    from ..download import DownloadError, download_dataset, zenodo_record_files

    record = dcfg.get("zenodo_record", ZENODO_RECORD)
    api = dcfg.get("zenodo_api", ZENODO_API)
    retries, backoff = int(dcfg.get("retries", 5)), float(dcfg.get("retry_backoff_s", 2.0))
    timeout = float(dcfg.get("timeout_s", 60.0))
    listed = {f.name: f for f in zenodo_record_files(record, api, retries=retries, backoff=backoff, timeout=timeout)}
    wanted = source_names(dcfg)
    absent = [n for n in wanted if n not in listed]
    if absent:
        raise DownloadError(f"Zenodo record {record} ({api}/{record}) does not list {absent}; "
                            f"it lists {sorted(listed)}")
    return download_dataset(name, "imv", [listed[n] for n in wanted], data_dir, lock_file=lock_file,
                            keep_archives=bool(dcfg.get("keep_archives", False)), retries=retries,
                            backoff=backoff, timeout=timeout)


def _wav_index(root: Path) -> dict[str, Path]:
    """``{file stem: path}`` of every WAV below ``root`` (350 recordings: one walk is cheap)."""
    index = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() == ".wav" and path.is_file():
            index.setdefault(path.stem, path)
    return index


def build_manifest(name: str, dcfg: dict, data_dir):
    """One row per call of labels.csv (Silence, Noise and unusable rows dropped and counted)."""
    import pandas as pd

    task = dcfg.get("task", "calltype")
    if task not in TASKS:
        raise ValueError(f"imv: task must be one of {TASKS}, got {task!r}")
    root = audio_root(name, dcfg, data_dir)
    labels_csv, table = read_annotation_table(
        root, LABELS, {"filename", "start", "end", "calltype"}, "imv",
        f"run the download step first (it comes in {DOCUMENTATION})")
    wavs = _wav_index(root)
    df, dropped, missing_recordings, counts = _select_calls(table, labels_csv, wavs, set(twins(dcfg)))
    if dropped["empty_segment"]:
        log.warning("imv: dropped %d call(s) of %s with end <= start (counted in leakage.json, "
                    "manifest_dropped.rows.empty_segment)", dropped["empty_segment"], labels_csv)
    if missing_recordings:
        log.warning("imv: %d labelled recording(s) have no audio below %s (e.g. %s); their calls are dropped",
                    len(missing_recordings), root, missing_recordings[:3])
    if len(df) == 0:
        raise ValueError(f"imv: no usable calls in {labels_csv} (dropped: {dropped})")
    individual = "twin" + df["twin"] + "_marmoset" + df["marmoset"]
    relative = {stem: path.relative_to(root).as_posix() for stem, path in wavs.items()}
    manifest = pd.DataFrame({
        "path": df["filename"].map(relative),
        "start": df["start"],
        "end": df["end"],
        "label": df["code"].map(CALLTYPE_NAMES) if task == "calltype" else individual,
        "group": df["filename"],
        "recording": df["filename"],
        "individual": individual,
        "caller": df["caller"].str.strip() if "caller" in df.columns else "",
    })
    manifest = finish_manifest(manifest, name, extra_columns=("recording", "individual", "caller"))
    manifest.attrs["manifest_dropped"] = {"rows": dropped, "missing_recordings": missing_recordings[:20]}
    if twins(dcfg) == list(TWINS):  # the study's counts are of the whole dataset
        manifest.attrs["study_counts"] = counts
    return manifest


def _select_calls(table, labels_csv: Path, wavs: dict, selected_twins: set[int]):
    """Keep the usable call rows of labels.csv; return (rows, {reason: count}, missing recordings, counts).

    ``counts`` (clips, classes) are taken before rows with end <= start are dropped, as the study
    counted them.

    Each dropped row is counted under the first reason that applies, in this order: silence,
    noise, unknown_calltype, twin_not_selected, recording_missing, empty_segment.
    """
    import pandas as pd

    filename = table["filename"].str.strip().str.replace(r"\.wav$", "", regex=True, case=False)
    parts = filename.str.extract(RECORDING_NAME)
    if parts["twin"].isna().any():
        line = int(parts.index[parts["twin"].isna()][0]) + 2
        raise ValueError(f"{labels_csv}, line {line}: file name {filename.iloc[line - 2]!r} is not "
                         "<date>_Twin<T>_marmoset<M>")
    code = pd.to_numeric(table["calltype"], errors="coerce")
    steps = [
        ("silence", code == SILENCE),
        ("noise", code == NOISE),
        ("unknown_calltype", ~code.isin(list(CALLTYPE_NAMES))),
        ("twin_not_selected", ~parts["twin"].astype(int).isin(selected_twins)),
        ("recording_missing", ~filename.isin(wavs)),
    ]
    keep = pd.Series(True, index=table.index)
    dropped = {}
    missing_recordings: list[str] = []
    for reason, mask in steps:
        hit = keep & mask
        dropped[reason] = int(hit.sum())
        if reason == "recording_missing":
            missing_recordings = sorted(set(filename[hit]))
        keep &= ~mask
    start = pd.to_numeric(table["start"], errors="coerce")
    end = pd.to_numeric(table["end"], errors="coerce")
    not_numbers = keep & (start.isna() | end.isna())
    if not_numbers.any():
        line = int(not_numbers.index[not_numbers][0]) + 2
        raise ValueError(f"{labels_csv}, line {line}: start/end are not numbers "
                         f"({table['start'].iloc[line - 2]!r}, {table['end'].iloc[line - 2]!r})")
    # the study's counts: the calls it loaded, before rows with end <= start are dropped
    counts = {"clips": int(keep.sum()), "classes": int(code[keep].nunique())}
    empty = keep & ~((end > start) & (start >= 0))
    dropped["empty_segment"] = int(empty.sum())
    keep &= ~empty
    rows = table[keep].assign(filename=filename[keep], twin=parts["twin"][keep], marmoset=parts["marmoset"][keep],
                              code=code[keep].astype(int), start=start[keep], end=end[keep])
    return rows.reset_index(drop=True), dropped, missing_recordings, counts
