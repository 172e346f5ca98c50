"""Dataset types: where each dataset's files come from and how they become two tables.

The Snakefile calls the cheap helpers here at parse time (:func:`needs_download`,
:func:`dataset_is_available`, :func:`check_paths`, :func:`audio_root`, :func:`prepare_inputs`, :func:`clips_inputs`,
:func:`download_settings`, :func:`clip_settings`, :func:`split_settings`), so importing this
package loads neither pandas nor torch; each type's module imports them inside its functions.

A type's loader (:func:`build_manifest`) gives one table, one row per clip::

    clip_id, path, start, end, label, group, [extra id columns...], exclude

and two rules write two files from it:

* ``results/{dataset}/clips.csv`` (:func:`write_clips`): ``clip_id, path, start, end``, what
  audio each clip is. It depends only on the type's ``CLIP_KEYS`` and the data.
* ``results/{dataset}/split.csv`` (:func:`write_split`, :mod:`.labels`): ``clip_id, label,
  group, [extra id columns...], split, exclude``, with ``split`` in train/val/test/excluded.

``path`` is relative to :func:`audio_root`; ``start``/``end`` are seconds, empty for a whole
file; ``group`` is the unit a grouped split keeps together (file, recording, dog); extra
columns (``recording``, ``individual``, ``caller``, ``dog``) feed the leakage report.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

from .common import CLIP_COLUMNS, MANIFEST_COLUMNS  # noqa: F401  (stdlib-only module)

#: The values ``type:`` may take in a dataset's config entry.
DATASET_TYPES: tuple[str, ...] = ("folder", "watkins", "imv", "abzaliev")

#: The split method used when a dataset's config has no ``split.method``.
DEFAULT_SPLIT_METHOD = {"folder": "stratified", "watkins": "random", "imv": "random", "abzaliev": "random"}


def dataset_module(dcfg: dict) -> ModuleType:
    """The module implementing ``dcfg["type"]`` (imported on first use)."""
    kind = dcfg.get("type") if isinstance(dcfg, dict) else None
    if kind not in DATASET_TYPES:
        raise ValueError(f"unknown dataset type {kind!r}; choose one of {', '.join(DATASET_TYPES)}")
    return importlib.import_module(f"{__name__}.{kind}")


def needs_download(dcfg: dict) -> bool:
    """True for types fetched from the web (watkins, imv); False for local data (folder, abzaliev)."""
    return bool(dataset_module(dcfg).NEEDS_DOWNLOAD)


def dataset_is_available(dcfg: dict) -> tuple[bool, str]:
    """``(False, why and how to obtain it)`` when the dataset cannot be used as configured.

    Cheap and offline: meant for the Snakefile to leave out, with a message, datasets that are
    disabled or not obtainable (Abzaliev without a ``path``).
    """
    if not dcfg.get("enabled", True):
        return False, "disabled in the config (enabled: false)"
    return dataset_module(dcfg).is_available(dcfg)


def check_paths(name: str, dcfg: dict, made_by_workflow: tuple[str, ...] = ()) -> None:
    """Raise an error naming the config key when a local dataset's files are not where it says.

    Cheap and offline: the Snakefile calls it for every dataset it runs, before any job, so a
    wrong (or wrongly relative) ``root:`` or ``labels:`` stops the run at once. Files the
    workflow makes itself (``made_by_workflow``, the demo's labels) are not checked.
    """
    check = getattr(dataset_module(dcfg), "check_paths", None)
    if check is not None:
        check(name, dcfg, made_by_workflow)


def download(name: str, dcfg: dict, data_dir: str | os.PathLike, lock_file: str | os.PathLike | None = None) -> Path:
    """Fetch, verify and extract the dataset; return ``{data_dir}/{name}/.complete.json``.

    Without network when that marker (or the verified record kept beside it) is present and the
    files it lists are there. ``lock_file`` defaults to ``resources/locks/datasets.json`` beside
    ``data_dir`` (``dcfg["lock_file"]`` overrides). Only for types with :func:`needs_download`.
    """
    module = dataset_module(dcfg)
    if not module.NEEDS_DOWNLOAD:
        raise ValueError(f"dataset {name!r} of type {dcfg['type']!r} is local data; there is nothing to download")
    from .. import download as dl

    if lock_file is None:
        lock_file = dcfg.get("lock_file") or dl.default_lock_file(data_dir)
    expected_sources = module.source_names(dcfg)
    complete, _why = dl.check_complete(data_dir, name, expected_sources, dcfg["type"])
    if complete:
        marker = dl.marker_path(data_dir, name)
        return marker if marker.exists() else dl.restore_marker(data_dir, name)
    return module.download(name, dcfg, data_dir, lock_file)


def audio_root(name: str, dcfg: dict, data_dir: str | os.PathLike) -> Path:
    """The folder the manifest's ``path`` column is relative to."""
    return Path(dataset_module(dcfg).audio_root(name, dcfg, data_dir))


def prepare_inputs(name: str, dcfg: dict, data_dir: str | os.PathLike) -> list[str]:
    """Files the prepare rule depends on: the download marker, or the user's labels CSV / data folder."""
    return [str(p) for p in dataset_module(dcfg).prepare_inputs(name, dcfg, data_dir)]


def build_manifest(name: str, dcfg: dict, data_dir: str | os.PathLike):
    """The dataset's table (pandas DataFrame, loader's row order, no ``split`` yet).

    Columns: :data:`CLIP_COLUMNS`, ``label``, ``group``, the type's extra id columns, and
    ``exclude`` (why a clip is left out of the probes, empty when it is used). The clip columns
    depend only on :func:`clip_settings` and the data: label settings only change the other
    columns (and mark clips excluded), never which clips exist.
    """
    available, why = dataset_is_available(dcfg)
    if not available:
        raise ValueError(f"dataset {name!r} is not available: {why}")
    df = dataset_module(dcfg).build_manifest(name, dcfg, data_dir)
    from .common import check_manifest

    check_manifest(df, f"dataset {name!r}")
    if "exclude" not in df.columns:
        df["exclude"] = ""
    return df


def split_config(dcfg: dict) -> dict:
    """The effective ``split`` settings of a dataset: its config over the type's defaults."""
    cfg = dict(dcfg.get("split") or {})
    cfg.setdefault("method", DEFAULT_SPLIT_METHOD[dcfg["type"]])
    cfg.setdefault("ratios", [0.7, 0.2, 0.1])
    cfg.setdefault("seed", 42)
    cfg.setdefault("drop_small_classes", False)
    cfg.setdefault("group_by", "group")
    return cfg


# --- What each rule tracks -------------------------------------------------------------------
# Each type module declares CLIP_KEYS (config keys that change which clips exist or their audio)
# and LABEL_KEYS (keys that change labels, groups or exclusions); ``split`` and ``label_map``
# are label settings of every type. Values equal to their schema default are left out
# (bioprobe.config.tracked), so adding a key with a neutral default makes nothing stale.

#: ``exclude`` of the clips the audit rejected (their audio is unusable; see bioprobe.audit).
BAD_AUDIO = "bad_audio"

#: Label settings every type has.
COMMON_LABEL_KEYS = ("split", "label_map")


def _tracked(dcfg: dict, keys) -> dict:
    from ..config import tracked

    minimal = {k: dcfg[k] for k in ("type", "root", "labels") if k in dcfg}
    chosen = {k: dcfg[k] for k in keys if k in dcfg}
    if "split" in chosen:  # the type's default method, whether or not the config loader filled it
        chosen["split"] = split_config(dcfg)
    return tracked({**chosen, "type": dcfg["type"]}, "datasets.schema.yaml", (), minimal)


def download_settings(dcfg: dict) -> dict:
    """What the download rule tracks: the type and the files that make up the dataset.

    Mirrors, retries and timeouts change how, not what, is downloaded: they are not tracked.
    """
    module = dataset_module(dcfg)
    sources = module.source_names(dcfg) if module.NEEDS_DOWNLOAD else []  # local data: nothing to download
    return {"type": dcfg["type"], "sources": list(sources),
            **{k: dcfg[k] for k in getattr(module, "DOWNLOAD_KEYS", ()) if k in dcfg}}


def clip_settings(dcfg: dict, made_by_workflow: tuple[str, ...] = ()) -> dict:
    """What the clips rule tracks: the keys that change which clips exist or their audio.

    A folder dataset's labels CSV also holds labels: unless the workflow makes that file itself
    (``made_by_workflow``, e.g. the demo's), the digest of its clip columns is tracked instead of
    its date (see :func:`clips_inputs`).
    """
    settings = _tracked(dcfg, dataset_module(dcfg).CLIP_KEYS)
    if _digest_tracked(dcfg, made_by_workflow):
        settings["clip_columns_sha256"] = dataset_module(dcfg).clip_columns_digest(dcfg)
    return settings


def _digest_tracked(dcfg: dict, made_by_workflow) -> bool:
    module = dataset_module(dcfg)
    if not hasattr(module, "clip_columns_digest"):
        return False
    made = {os.path.normpath(p) for p in made_by_workflow}
    return os.path.normpath(str(dcfg.get("labels") or "")) not in made


def clips_inputs(name: str, dcfg: dict, data_dir: str | os.PathLike,
                 made_by_workflow: tuple[str, ...] = ()) -> list[tuple[str, bool]]:
    """``(path, ancient)`` for each input of the clips rule.

    ``ancient`` is True for a source whose content the rule tracks through
    :func:`clip_settings` (a user's folder labels CSV): its date alone must not re-run it.
    """
    ancient = _digest_tracked(dcfg, made_by_workflow)
    return [(p, ancient) for p in prepare_inputs(name, dcfg, data_dir)]


def split_settings(dcfg: dict) -> dict:
    """What the split rule tracks: the keys that change labels, groups, exclusions or the split."""
    return _tracked(dcfg, tuple(dataset_module(dcfg).LABEL_KEYS) + COMMON_LABEL_KEYS)


def named_split_settings(dcfg: dict, spec: dict) -> dict:
    """What a named split's rule tracks: the label settings and the split's own spec, not ``split:``."""
    settings = _tracked(dcfg, tuple(dataset_module(dcfg).LABEL_KEYS) + tuple(k for k in COMMON_LABEL_KEYS if k != "split"))
    settings["named_split"] = {k: spec[k] for k in sorted(spec) if k not in ("purpose", "column")}
    return settings


def write_clips(name: str, dcfg: dict, data_dir: str | os.PathLike, clips_out: str | os.PathLike) -> None:
    """Write ``clips.csv`` (``clip_id, path, start, end``: what audio each clip is) atomically."""
    from ..fileio import write_csv

    df = build_manifest(name, dcfg, data_dir)
    write_csv(clips_out, df[list(CLIP_COLUMNS)])


def write_split(name: str, dcfg: dict, data_dir: str | os.PathLike, clips_csv: str | os.PathLike,
                split_out: str | os.PathLike, leakage_out: str | os.PathLike, accepted_csv=None,
                split_cfg: dict | None = None) -> None:
    """Write ``split.csv`` and ``leakage.json`` for the clips of ``clips_csv`` atomically (see :mod:`.labels`).

    With ``accepted_csv`` (the audit's ``clips_accepted.csv``), every other clip is excluded
    (``exclude = bad_audio``) before any label setting applies: the split only uses clips whose
    audio the audit accepted. ``split_cfg`` (a named split's spec, :func:`bioprobe.leakage.named_splits`)
    replaces the dataset's own ``split:``; its ``target`` may be another column than the label.
    """
    from ..fileio import write_csv, write_json
    from .labels import build_split

    df = build_manifest(name, dcfg, data_dir)
    if accepted_csv is not None:
        import pandas as pd

        accepted = set(pd.read_csv(accepted_csv, dtype={"clip_id": str}, keep_default_na=False)["clip_id"])
        df.loc[~df["clip_id"].isin(accepted), "exclude"] = BAD_AUDIO
    study_counts = getattr(dataset_module(dcfg), "STUDY_COUNTS", None) if split_cfg is None else None
    table, report = build_split(name, dcfg, df, split_cfg or split_config(dcfg), study_counts, clips_csv)
    write_csv(split_out, table)
    write_json(leakage_out, report)


def prepare(name: str, dcfg: dict, data_dir: str | os.PathLike, out_dir: str | os.PathLike) -> None:
    """Both rules' work in one call: ``clips.csv``, ``split.csv`` and ``leakage.json`` in ``out_dir``."""
    out_dir = Path(out_dir)
    write_clips(name, dcfg, data_dir, out_dir / "clips.csv")
    write_split(name, dcfg, data_dir, out_dir / "clips.csv", out_dir / "split.csv", out_dir / "leakage.json")
