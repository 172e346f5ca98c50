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

from .common import find_file, finish_manifest

log = logging.getLogger(__name__)

NEEDS_DOWNLOAD = True
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


def _calltype_code(value) -> int | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number == number and number.is_integer() else None


def build_manifest(name: str, dcfg: dict, data_dir):
    """One row per call of labels.csv (Silence, Noise and unusable rows dropped and counted)."""
    import pandas as pd

    task = dcfg.get("task", "calltype")
    if task not in TASKS:
        raise ValueError(f"imv: task must be one of {TASKS}, got {task!r}")
    root = audio_root(name, dcfg, data_dir)
    labels_csv = find_file(root, LABELS) if root.is_dir() else None
    if labels_csv is None:
        raise FileNotFoundError(f"imv: no {LABELS} below {root}; run the download step first "
                                f"(it comes in {DOCUMENTATION})")
    table = pd.read_csv(labels_csv, dtype=str, keep_default_na=False)
    needed = {"filename", "start", "end", "calltype"}
    if needed - set(table.columns):
        raise ValueError(f"{labels_csv}: missing column(s) {sorted(needed - set(table.columns))}; "
                         "expected filename,start,end,duration,calltype,caller")
    wavs = _wav_index(root)
    selected = set(twins(dcfg))
    dropped = {"silence": 0, "noise": 0, "unknown_calltype": 0, "recording_missing": 0,
               "twin_not_selected": 0, "empty_segment": 0}
    missing_recordings: set[str] = set()
    rows = []
    for i, rec in enumerate(table.to_dict("records")):
        filename = str(rec["filename"]).strip()
        if filename.lower().endswith(".wav"):
            filename = filename[:-4]
        match = RECORDING_NAME.match(filename)
        if not match:
            raise ValueError(f"{labels_csv}, line {i + 2}: file name {filename!r} is not "
                             "<date>_Twin<T>_marmoset<M>")
        code = _calltype_code(rec["calltype"])
        if code == SILENCE:
            dropped["silence"] += 1
            continue
        if code == NOISE:
            dropped["noise"] += 1
            continue
        if code not in CALLTYPE_NAMES:
            dropped["unknown_calltype"] += 1
            continue
        twin, marmoset = int(match["twin"]), int(match["marmoset"])
        if twin not in selected:
            dropped["twin_not_selected"] += 1
            continue
        if filename not in wavs:
            dropped["recording_missing"] += 1
            missing_recordings.add(filename)
            continue
        try:
            start, end = float(rec["start"]), float(rec["end"])
        except ValueError as err:
            raise ValueError(f"{labels_csv}, line {i + 2}: start/end are not numbers ({err})") from err
        if not end > start or start < 0:
            dropped["empty_segment"] += 1
            continue
        individual = f"twin{twin}_marmoset{marmoset}"
        rows.append({
            "path": wavs[filename].relative_to(root).as_posix(),
            "start": start,
            "end": end,
            "label": CALLTYPE_NAMES[code] if task == "calltype" else individual,
            "group": filename,
            "recording": filename,
            "individual": individual,
            "caller": str(rec.get("caller", "")).strip(),
        })
    if missing_recordings:
        log.warning("imv: %d labelled recording(s) have no audio below %s (e.g. %s); their calls are dropped",
                    len(missing_recordings), root, sorted(missing_recordings)[:3])
    if not rows:
        raise ValueError(f"imv: no usable calls in {labels_csv} (dropped: {dropped})")
    df = finish_manifest(pd.DataFrame(rows), name, extra_columns=("recording", "individual", "caller"))
    df.attrs["manifest_dropped"] = {"rows": dropped, "missing_recordings": sorted(missing_recordings)[:20]}
    return df
