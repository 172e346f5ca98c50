"""Dataset types: where each dataset's files come from and how they become a manifest.

The Snakefile calls the cheap helpers here at parse time (:func:`needs_download`,
:func:`dataset_is_available`, :func:`audio_root`, :func:`prepare_inputs`), so importing this
package loads neither pandas nor torch; each type's module imports them inside its functions.

A manifest (``results/{dataset}/manifest.csv``) has one row per clip::

    clip_id, path, start, end, label, group, [extra id columns...], split

``path`` is relative to :func:`audio_root`; ``start``/``end`` are seconds, empty for a whole
file; ``group`` is the unit a grouped split keeps together (file, recording, dog); extra
columns (``recording``, ``individual``, ``caller``, ``dog``) feed the leakage report.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

from .common import MANIFEST_COLUMNS  # noqa: F401  (columns every manifest starts with; stdlib-only module)

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
    """The dataset's manifest as a pandas DataFrame (no ``split`` column yet), in the loader's row order."""
    available, why = dataset_is_available(dcfg)
    if not available:
        raise ValueError(f"dataset {name!r} is not available: {why}")
    df = dataset_module(dcfg).build_manifest(name, dcfg, data_dir)
    from .common import check_manifest

    check_manifest(df, f"dataset {name!r}")
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


def prepare(name: str, dcfg: dict, data_dir: str | os.PathLike, manifest_out: str | os.PathLike,
            leakage_out: str | os.PathLike) -> None:
    """Build the manifest, split it once, and write ``manifest_out`` (CSV) and ``leakage_out`` (JSON) atomically."""
    from ..fileio import write_csv, write_json
    from ..splits import assign_splits, leakage_report

    df = build_manifest(name, dcfg, data_dir)
    manifest_dropped = dict(df.attrs.get("manifest_dropped", {}))
    split = split_config(dcfg)
    df = assign_splits(df, method=split["method"], ratios=split["ratios"], seed=split["seed"],
                       drop_small_classes=split["drop_small_classes"], group_column=split["group_by"])
    report = {"dataset": name, "type": dcfg["type"], **leakage_report(df)}
    report["manifest_dropped"] = manifest_dropped
    write_csv(manifest_out, df)
    write_json(leakage_out, report)
