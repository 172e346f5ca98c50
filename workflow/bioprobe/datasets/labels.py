"""The split rule's work: labels, groups, exclusions and the train/val/test split of the clips.

``split.csv`` has one row per clip of ``clips.csv``, in the same order::

    clip_id, label, group, [extra id columns...], split, exclude

``split`` is ``train``, ``val``, ``test`` or ``excluded``; ``exclude`` says why a clip is left
out (empty for used clips). Clips are excluded, never removed, by label settings: a code in
``drop_codes``, a label mapped to null by ``label_map``, a class under ``min_clips_per_class``,
a class too small for every split with ``drop_small_classes``. The clip list, and therefore the
audio and the embeddings, does not depend on any of them.
"""

from __future__ import annotations

import logging

from .common import CLIP_COLUMNS

log = logging.getLogger(__name__)

EXCLUDED = "excluded"


class ClipsOutOfDate(ValueError):
    """clips.csv does not list the clips the data and config give now."""


def apply_label_map(df, label_map: dict | None):
    """Rename labels by ``label_map`` ``{label: new label}``; a label mapped to null is excluded."""
    if not label_map:
        return df
    label_map = {str(k): v for k, v in label_map.items()}  # YAML reads a label such as 1 as a number
    df = df.copy()
    unknown = sorted(set(map(str, label_map)) - set(df["label"].astype(str)))
    if unknown:
        log.warning("label_map names label(s) %s that no clip has", unknown)
    to_none = {k for k, v in label_map.items() if v is None or str(v).strip() == ""}
    hit = df["label"].isin(to_none) & (df["exclude"] == "")
    df.loc[hit, "exclude"] = "label_map"
    renames = {k: str(v) for k, v in label_map.items() if k not in to_none}
    df["label"] = df["label"].map(lambda x: renames.get(x, x))
    return df


def exclude_small(df, minimum: int) -> tuple[object, dict[str, str]]:
    """Mark clips of classes with fewer than ``minimum`` used clips excluded; return (df, {label: reason})."""
    if not minimum or minimum <= 0:
        return df, {}
    used = df["exclude"] == ""
    counts = df.loc[used, "label"].value_counts()
    small = sorted(counts.index[counts < minimum])
    reasons = {str(label): f"{int(counts[label])} clip(s) < min_clips_per_class={minimum}" for label in small}
    df = df.copy()
    df.loc[used & df["label"].isin(small), "exclude"] = "min_clips_per_class"
    for label in small:
        log.info("dropping class %s (%s)", label, reasons[label])
    return df, reasons


def check_clips(df, clips_csv) -> None:
    """Raise :class:`ClipsOutOfDate` unless ``df``'s clip columns are those of ``clips_csv``."""
    import numpy as np
    import pandas as pd

    clips = pd.read_csv(clips_csv, dtype={"clip_id": str, "path": str}, keep_default_na=False)
    missing = [c for c in CLIP_COLUMNS if c not in clips.columns]
    if missing:
        raise ValueError(f"{clips_csv}: missing column(s) {missing}")
    problem = None
    if len(clips) != len(df):
        problem = f"it lists {len(clips)} clips, the data now gives {len(df)}"
    elif list(clips["clip_id"]) != list(df["clip_id"]) or list(clips["path"]) != list(df["path"]):
        first = int(np.flatnonzero((clips["clip_id"].to_numpy() != df["clip_id"].to_numpy())
                                   | (clips["path"].to_numpy() != df["path"].to_numpy()))[0])
        problem = f"row {first + 2} is {clips['clip_id'].iloc[first]} {clips['path'].iloc[first]!r}, " \
                  f"the data now gives {df['clip_id'].iloc[first]} {df['path'].iloc[first]!r}"
    else:
        for column in ("start", "end"):
            old = pd.to_numeric(clips[column], errors="coerce").to_numpy(float)
            new = df[column].to_numpy(float)
            if not np.allclose(old, new, equal_nan=True, rtol=0, atol=1e-9):
                problem = f"column {column!r} differs"
                break
    if problem:
        raise ClipsOutOfDate(f"{clips_csv} is out of date ({problem}): the clip columns of the source "
                             "(path, start, end) changed since it was written. Re-run the clips rule: "
                             "snakemake --forcerun clips (this re-extracts the changed dataset)")


def retarget(df, target: str, name: str):
    """Predict column ``target`` instead of the label (a split of the leakage analysis, bioprobe.leakage).

    The clips used stay those the label settings leave (same population as the label's split);
    ``label`` becomes the ``target`` value and the label moves to ``call_label``.
    """
    from ..splits import NON_ID_COLUMNS

    if target == "label":
        return df
    reserved = set(NON_ID_COLUMNS) | {"exclude"}
    if target not in df.columns or target in reserved:
        usable = [c for c in df.columns if c not in reserved]
        raise ValueError(f"dataset {name!r}: split target {target!r} is not a column of its clips "
                         f"(identifier columns: {', '.join(usable) or 'none'})")
    df = df.copy()
    empty = (df[target].astype(str).str.strip() == "") & (df["exclude"] == "")
    df.loc[empty, "exclude"] = f"no_{target}"
    df.insert(df.columns.get_loc("label") + 1, "call_label", df["label"])
    df["label"] = df[target].astype(str)
    return df


def check_classes(assigned, df, target: str = "label") -> None:
    """Raise :class:`~bioprobe.splits.SplitError` unless the split clips hold at least two classes.

    With one class every probe scores 100% UAR whatever the layer: a result that means nothing,
    so the run stops here, before any probe, saying what left a single class.
    """
    from ..splits import SplitError

    classes = sorted(map(str, assigned["label"].unique()))
    if len(classes) >= 2:
        return
    what = "label" if target == "label" else f"value of {target!r}"
    excluded = df.loc[df["exclude"] != "", "exclude"].value_counts().sort_index()
    why = ", ".join(f"{int(n)} by {reason}" for reason, n in excluded.items())
    dropped = assigned.attrs.get("dropped_classes") or {}
    found = f"only one {what}, {classes[0]!r}," if classes else f"no {what}"
    raise SplitError(f"{found} among the {len(assigned)} clip(s) to split: a probe needs at least two classes"
                     + (f" (clips excluded: {why})" if why else "")
                     + (f" (classes dropped by drop_small_classes: {', '.join(map(repr, dropped))})" if dropped else ""))


def study_count_check(expected: dict | None, attrs: dict) -> dict | None:
    """Compare the loader's counts (``attrs["study_counts"]``) with the study's (``expected``).

    None when the type has no published counts or the config selects a part of the data.
    """
    found = attrs.get("study_counts")
    if not expected or not found:
        return None
    mismatches = [f"{k}: expected {expected[k]}, found {found[k]}" for k in expected if found.get(k) != expected[k]]
    return {"expected": dict(expected), "found": dict(found), "match": not mismatches, "mismatches": mismatches}


def build_split(name: str, dcfg: dict, df, split: dict, study_counts: dict | None = None, clips_csv=None):
    """``(split table, leakage report)`` of a dataset's table ``df`` (``bioprobe.datasets.build_manifest``).

    ``split`` is the effective split config, ``study_counts`` the type's published counts (or
    None); the clips are checked against ``clips_csv`` when given.
    """
    from ..splits import SplitError, assign_splits, leakage_report

    attrs = dict(df.attrs)
    if clips_csv is not None:
        check_clips(df, clips_csv)
    df = apply_label_map(df, dcfg.get("label_map"))
    df, small = exclude_small(df, int(dcfg.get("min_clips_per_class", 0) or 0))
    df = retarget(df, split.get("target", "label"), name)
    used = df[df["exclude"] == ""].drop(columns="exclude")
    try:
        assigned = assign_splits(used, method=split["method"], ratios=split["ratios"], seed=split["seed"],
                                 drop_small_classes=split["drop_small_classes"], group_column=split["group_by"])
        check_classes(assigned, df, split.get("target", "label"))
    except SplitError as err:
        raise SplitError(f"dataset {name!r}: {err}") from None
    out = df.drop(columns=[c for c in ("path", "start", "end", "split") if c in df.columns]).copy()
    out.insert(len(out.columns) - 1, "split", EXCLUDED)
    out.loc[assigned.index, "split"] = assigned["split"]
    dropped = out.index.isin(used.index) & ~out.index.isin(assigned.index)
    out.loc[dropped, "exclude"] = "drop_small_classes"
    out = out[[c for c in out.columns if c not in ("split", "exclude")] + ["split", "exclude"]]

    report = {"dataset": name, "type": dcfg["type"], **leakage_report(assigned)}
    report["dropped_classes"] = {**small, **report.get("dropped_classes", {})}
    report["excluded"] = {str(k): int(v) for k, v in out.loc[out["split"] == EXCLUDED, "exclude"].value_counts().sort_index().items()}
    report["n_clips"]["excluded"] = int((out["split"] == EXCLUDED).sum())
    report["manifest_dropped"] = attrs.get("manifest_dropped", {})
    warnings = []
    counts = study_count_check(study_counts, attrs)
    if counts is not None:
        report["study_counts"] = counts
        for text in counts["mismatches"]:
            warnings.append(f"{name}: count differs from the study's ({text})")
    for text in warnings:
        log.warning(text)
    report["warnings"] = warnings
    return out, report


