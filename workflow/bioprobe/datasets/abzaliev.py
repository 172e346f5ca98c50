"""Abzaliev (Mescalina Bark ID Data Base): dog bark context, 14 codes (13 after dropping ``S``).

Not public: obtained on request from its authors (Pérez-Espinosa et al., doi 10.3233/JIFS-169509).
Layout as the authors use it: ``data/<dog folder>/<calltype code>/*.wav``. The config's ``path``
may point at the folder that holds ``data/`` or at ``data/`` itself; the audio root is ``data/``.

Manifest: one row per WAV file, sorted by dog folder, code and file name (the authors used
``glob`` order, which depends on the file system and cannot be reproduced), whole files,
``label`` = the code folder. Files of codes in ``drop_codes`` (default ``[S]``) stay in the clip
list and are marked excluded by the split rule, so changing ``drop_codes`` re-embeds nothing.

``group`` = the dog. A dog's name is its folder name up to the first ``_``, lower-cased and
Unicode-normalised (NFC), then mapped through the aliases: built-in ones for misspellings known
in this database, overridden and extended by the config's ``dog_aliases: {variant: canonical}``.
Extra columns: ``dog`` (same as group) and ``dog_folder`` (the raw folder name).
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

from .common import finish_manifest

NEEDS_DOWNLOAD = False
#: Config keys that change which clips exist or their audio / their labels, groups or exclusions.
CLIP_KEYS = ("path",)
LABEL_KEYS = ("drop_codes", "dog_aliases")
CODES = ("L-S1", "L-S2", "L-S3", "L-A", "L-PA", "L-P", "L-O", "S", "CH-P", "CH-N", "GR-P", "GR-N", "L-TA", "L-H")
DEFAULT_DROP_CODES = ("S",)
#: Folder-name variants in the database that name the same dog (variant -> canonical name).
KNOWN_DOG_ALIASES = {
    "tinky150717": "tinki", "chica180717": "chica", "centavito": "centavo", "zanzon": "sanzón",
    "maiky": "maiki", "ñeñe": "neñe", "mamafisgon": "mama fisgon", "mama fisgonn": "mama fisgon",
    "zebry": "zebri", "lasy": "lazy",
}
HOW_TO_OBTAIN = (
    "The Abzaliev / Mescalina Bark ID Data Base is not public. Ask its authors for a copy "
    "(Pérez-Espinosa et al., J. Intelligent & Fuzzy Systems, doi 10.3233/JIFS-169509), unpack it so "
    "that its WAV files sit at <folder>/data/<dog>/<call type code>/*.wav, and set "
    "datasets.<name>.path: <folder> in config.yaml (see docs/datasets.md)."
)


def is_available(dcfg: dict) -> tuple[bool, str]:
    if not dcfg.get("path"):
        return False, "no local path set (path: null). " + HOW_TO_OBTAIN
    return True, ""


def normalize_name(text: str) -> str:
    return unicodedata.normalize("NFC", str(text)).strip().lower()


def dog_aliases(dcfg: dict) -> dict[str, str]:
    aliases = {normalize_name(k): normalize_name(v) for k, v in KNOWN_DOG_ALIASES.items()}
    aliases.update({normalize_name(k): normalize_name(v) for k, v in (dcfg.get("dog_aliases") or {}).items()})
    return aliases


def dog_name(folder: str, aliases: dict[str, str]) -> str:
    """The canonical dog of a folder: the alias of the full name, else of the part before ``_``."""
    full = normalize_name(folder)
    if full in aliases:
        return aliases[full]
    prefix = full.split("_")[0].strip()
    return aliases.get(prefix, prefix)


def data_folder(dcfg: dict) -> Path:
    """The ``data/`` folder below the configured path; raises with instructions when it is wrong."""
    available, why = is_available(dcfg)
    if not available:
        raise FileNotFoundError(f"abzaliev: {why}")
    path = Path(dcfg["path"]).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"abzaliev: path {str(path)!r} does not exist or is not a folder. " + HOW_TO_OBTAIN)
    if (path / "data").is_dir():
        return path / "data"
    # The path may be data/ itself: it then holds dog folders that hold code folders.
    if any(sub.is_dir() and sub.name in CODES for dog in path.iterdir() if dog.is_dir() for sub in dog.iterdir()):
        return path
    raise FileNotFoundError(f"abzaliev: {str(path)!r} holds neither data/ nor <dog>/<code>/ folders. " + HOW_TO_OBTAIN)


def audio_root(name: str, dcfg: dict, data_dir) -> Path:
    return data_folder(dcfg)


def prepare_inputs(name: str, dcfg: dict, data_dir) -> list[Path]:
    return [data_folder(dcfg)]


def build_manifest(name: str, dcfg: dict, data_dir):
    """One row per bark WAV file; those of codes in ``drop_codes`` marked ``exclude = drop_codes``."""
    import pandas as pd

    root = data_folder(dcfg)
    drop = set(dcfg.get("drop_codes", DEFAULT_DROP_CODES) or ())
    unknown_drop = sorted(drop - set(CODES))
    if unknown_drop:
        raise ValueError(f"abzaliev: drop_codes {unknown_drop} are not codes of the database ({', '.join(CODES)})")
    aliases = dog_aliases(dcfg)
    rows, dropped = [], {code: 0 for code in sorted(drop)}
    for dog_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for code_dir in sorted(p for p in dog_dir.iterdir() if not p.name.startswith(".")):
            if not code_dir.is_dir():
                continue
            if code_dir.name not in CODES:
                raise ValueError(f"abzaliev: {code_dir} is not a call type folder; expected one of {', '.join(CODES)}")
            wavs = sorted(p for p in code_dir.iterdir() if p.suffix.lower() == ".wav" and not p.name.startswith("."))
            excluded = code_dir.name in drop
            if excluded:
                dropped[code_dir.name] += len(wavs)
            dog = dog_name(dog_dir.name, aliases)
            for wav in wavs:
                rows.append({"path": wav.relative_to(root).as_posix(), "label": code_dir.name, "group": dog,
                             "dog": dog, "dog_folder": dog_dir.name, "exclude": "drop_codes" if excluded else ""})
    if not rows:
        raise ValueError(f"abzaliev: no WAV files found as {root}/<dog>/<code>/*.wav. " + HOW_TO_OBTAIN)
    df = finish_manifest(pd.DataFrame(rows), name, extra_columns=("dog", "dog_folder", "exclude"))
    df.attrs["manifest_dropped"] = {"files_by_dropped_code": dropped}
    return df
