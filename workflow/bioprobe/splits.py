"""Train/validation/test splits of a manifest, and the leakage report.

Three documented, seeded rules (``split.method`` in the config):

``random``
    The authors' rule, reproduced exactly: over the clips in the loader's row order, split sizes
    ``int(r_train * n)``, ``int(r_val * n)`` and the rest, drawn with
    ``torch.utils.data.random_split(..., generator=torch.Generator().manual_seed(seed))``.
    Not stratified and not grouped, so one recording or animal may sit in two splits (the
    leakage report counts how often), and a rare class may miss a split (reported, not an error,
    since this is the rule being replicated).
``stratified``
    Every class is split on its own with the ratios (largest-remainder rounding, at least one
    clip per split), shuffled with ``numpy.random.default_rng(seed)``.
``grouped``
    No value of the group column (recording, individual) is in two splits. Groups are assigned
    greedily, largest first, to the split whose per-class quota is least filled, so ratios hold
    approximately by clip count and every class reaches every split when it can.
``predefined``
    The split given with the data (a ``split`` column of a folder dataset's labels CSV) is used
    as it is; only its values are checked.

A class too small to appear in every split (fewer clips, or under ``grouped`` fewer groups,
than splits) is an error naming it, unless ``drop_small_classes`` is set: then its clips are
dropped and the drop is reported. The split is decided once, when the manifest is written.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

SPLITS = ("train", "val", "test")
SPLIT_METHODS = ("random", "stratified", "grouped", "predefined")
#: Manifest columns that are not identifiers of a recording, caller or animal.
NON_ID_COLUMNS = ("clip_id", "path", "start", "end", "label", "call_label", "split")
GROUPED_ATTEMPTS = 50


class SplitError(ValueError):
    """The manifest cannot be split as configured (names the class or column at fault)."""


def check_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    """Return the three ratios (train, val, test) after checking they are >= 0 and sum to 1."""
    ratios = tuple(float(r) for r in ratios)
    if len(ratios) != 3 or any(r < 0 for r in ratios) or not math.isclose(sum(ratios), 1.0, abs_tol=1e-6):
        raise SplitError(f"split ratios must be three non-negative numbers (train, val, test) summing to 1, got {list(ratios)}")
    if ratios[0] == 0:
        raise SplitError("the train ratio must be positive")
    return ratios


def random_split_sizes(n: int, ratios: Sequence[float]) -> list[int]:
    """The authors' sizes: ``int(r_train * n)``, ``int(r_val * n)``, and the rest for test."""
    train = int(ratios[0] * n)
    val = int(ratios[1] * n)
    return [train, val, n - train - val]


def random_split_indices(n: int, ratios: Sequence[float] = (0.7, 0.2, 0.1), seed: int = 42) -> list[list[int]]:
    """Row indices of (train, val, test) by ``torch.utils.data.random_split`` seeded with ``seed``."""
    import torch
    from torch.utils.data import random_split

    sizes = random_split_sizes(n, ratios)
    subsets = random_split(range(n), sizes, generator=torch.Generator().manual_seed(int(seed)))
    return [list(map(int, subset.indices)) for subset in subsets]


def allocate(n: int, ratios: Sequence[float]) -> list[int]:
    """Split a count ``n`` by ``ratios`` (largest remainder), giving every positive-ratio split at least one.

    Requires ``n`` >= the number of positive ratios.
    """
    exact = [n * r for r in ratios]
    counts = [int(math.floor(x)) for x in exact]
    order = sorted(range(len(ratios)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    for i, r in enumerate(ratios):
        if r > 0 and counts[i] == 0:
            donor = max(range(len(counts)), key=lambda j: (counts[j], -j))
            counts[donor] -= 1
            counts[i] += 1
    return counts


def _n_required_splits(ratios: Sequence[float]) -> int:
    return sum(1 for r in ratios if r > 0)


def _stratified_labels(labels: np.ndarray, ratios: Sequence[float], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty(len(labels), dtype=object)
    for label in sorted(set(labels.tolist()), key=str):
        idx = np.flatnonzero(labels == label)
        idx = idx[rng.permutation(len(idx))]
        bounds = np.cumsum([0] + allocate(len(idx), ratios))
        for s, name in enumerate(SPLITS):
            out[idx[bounds[s]:bounds[s + 1]]] = name
    return out


def _grouped_once(group_counts: np.ndarray, ratios: np.ndarray, order: np.ndarray,
                  coverage_weights: np.ndarray | None = None) -> np.ndarray:
    """Assign each group (row of ``group_counts`` [n_groups, n_classes]) to a split; returns [n_groups].

    Each group goes to the split with the highest score: how far the split is below its quota
    for the group's classes and overall, plus a bonus for classes the split has not seen yet
    (weighted by ``coverage_weights`` per split, default the ratios).
    """
    totals = np.maximum(group_counts.sum(axis=0).astype(float), 1.0)  # [n_classes]
    n_total = totals.sum()
    targets = ratios[:, None] * totals[None, :]                       # [3, n_classes]
    filled = np.zeros_like(targets)                                   # [3, n_classes]
    target_sizes = targets.sum(axis=1)                                # [3]
    filled_sizes = np.zeros(len(ratios))                              # [3]
    allowed = ratios > 0
    assignment = np.full(len(group_counts), -1)
    for g in order:
        counts = group_counts[g]
        classes = np.flatnonzero(counts)                               # the group's classes only
        weights = counts[classes] / counts[classes].sum()              # [k]
        class_deficit = ((targets[:, classes] - filled[:, classes]) / totals[classes]) @ weights   # [3]
        size_deficit = (target_sizes - filled_sizes) / n_total                                    # [3]
        coverage = (filled[:, classes] == 0).mean(axis=1) * (ratios if coverage_weights is None else coverage_weights)  # [3]
        score = np.where(allowed, class_deficit + size_deficit + coverage, -np.inf)
        best = int(np.argmax(score))
        assignment[g] = best
        filled[best, classes] += counts[classes]
        filled_sizes[best] += counts[classes].sum()
    return assignment


def _grouped_labels(labels: np.ndarray, groups: np.ndarray, ratios: Sequence[float], seed: int,
                    group_column: str) -> np.ndarray:
    group_names, group_index = np.unique(groups.astype(str), return_inverse=True)
    class_names, class_index = np.unique(labels.astype(str), return_inverse=True)
    counts = np.zeros((len(group_names), len(class_names)), dtype=np.int64)
    np.add.at(counts, (group_index, class_index), 1)
    ratios_arr = np.asarray(ratios, dtype=float)
    rng = np.random.default_rng(seed)
    fewest_missing: list[tuple[str, str]] | None = None
    # First with the coverage bonus weighted by the ratios; when that never covers every class
    # (few groups, a small test ratio: 4 equal groups at 0.7/0.2/0.1 never reach test), again with
    # an unweighted bonus. Splits found in the first round are kept as they were.
    for attempt in range(2 * GROUPED_ATTEMPTS):
        shuffled = rng.permutation(len(group_names))
        if attempt % GROUPED_ATTEMPTS == 0:  # largest groups first (bin-packing order); random tie-break
            order = shuffled[np.argsort(-counts[shuffled].sum(axis=1), kind="stable")]
        else:
            order = shuffled
        weights = None if attempt < GROUPED_ATTEMPTS else (ratios_arr > 0).astype(float)
        assignment = _grouped_once(counts, ratios_arr, order, weights)
        missing = [
            (SPLITS[s], str(class_names[k]))
            for s in np.flatnonzero(ratios_arr > 0)
            for k in range(len(class_names))
            if counts[assignment == s, k].sum() == 0
        ]
        if not missing:
            return np.asarray([SPLITS[s] for s in assignment], dtype=object)[group_index]
        if fewest_missing is None or len(missing) < len(fewest_missing):
            fewest_missing = missing
    detail = ", ".join(f"{c!r} has no clip in {s}" for s, c in fewest_missing)
    raise SplitError(f"grouped split by {group_column!r}: after {2 * GROUPED_ATTEMPTS} seeded attempts {detail}. "
                     "Those classes occur in too few groups to be spread over every split; "
                     "set drop_small_classes: true to drop them, or use another method")


def small_classes(df, method: str, ratios: Sequence[float], group_column: str = "group") -> dict[str, str]:
    """``{label: reason}`` for classes too small to appear in every split under ``method``."""
    need = _n_required_splits(ratios)
    found = {}
    if method == "grouped":
        n_groups = df.groupby("label", sort=True)[group_column].nunique()
        for label, n in n_groups.items():
            if n < need:
                found[str(label)] = f"{n} {group_column} value(s), needs at least {need}"
    else:
        n_clips = df["label"].value_counts()
        for label, n in sorted(n_clips.items(), key=lambda kv: str(kv[0])):
            if n < need:
                found[str(label)] = f"{n} clip(s), needs at least {need}"
    return found


def assign_splits(df, method: str = "stratified", ratios: Sequence[float] = (0.7, 0.2, 0.1), seed: int = 42,
                  drop_small_classes: bool = False, group_column: str = "group"):
    """Return a copy of the manifest ``df`` with a ``split`` column (train/val/test).

    ``df`` needs ``label`` (and ``group_column`` for ``grouped``); row order is kept. Classes too
    small for every split raise :class:`SplitError` naming them, or with ``drop_small_classes``
    are removed (``result.attrs["dropped_classes"]`` = ``{label: reason}``). The ``random``
    method replicates the authors' rule and therefore neither checks nor drops classes unless
    ``drop_small_classes`` is set.
    """
    if method not in SPLIT_METHODS:
        raise SplitError(f"unknown split method {method!r}; choose one of {', '.join(SPLIT_METHODS)}")
    if "label" not in df.columns:
        raise SplitError("the manifest has no 'label' column")
    if method == "predefined":
        return _predefined(df, drop_small_classes)
    if "split" in df.columns:
        raise SplitError(f"the data comes with a 'split' column; set split method 'predefined' to use it "
                         f"(method {method!r} would silently replace it), or remove the column")
    ratios = check_ratios(ratios)
    if method == "grouped":
        if group_column not in df.columns:
            raise SplitError(f"grouped split: the manifest has no column {group_column!r} "
                             f"(columns: {', '.join(map(str, df.columns))})")
        if df[group_column].isna().any() or (df[group_column].astype(str) == "").any():
            bad = df.index[df[group_column].isna() | (df[group_column].astype(str) == "")][:5].tolist()
            raise SplitError(f"grouped split: column {group_column!r} is empty in rows {bad}")
    out = df.copy()
    dropped: dict[str, str] = {}
    small = small_classes(out, method, ratios, group_column)
    if small and drop_small_classes:
        dropped = small
        out = out[~out["label"].astype(str).isin(set(small))].copy()
    elif small and method != "random":
        detail = "; ".join(f"{label!r}: {why}" for label, why in small.items())
        raise SplitError(f"{method} split: class(es) too small to appear in train, val and test: {detail}. "
                         "Set drop_small_classes: true to drop them (the drop is reported).")
    if len(out) == 0:
        raise SplitError("no clips left to split")
    labels = out["label"].to_numpy()
    if method == "random":
        split = np.empty(len(out), dtype=object)
        for name, idx in zip(SPLITS, random_split_indices(len(out), ratios, seed)):
            split[idx] = name
    elif method == "stratified":
        split = _stratified_labels(labels, ratios, seed)
    else:
        split = _grouped_labels(labels, out[group_column].to_numpy(), ratios, seed, group_column)
    out["split"] = split
    out.attrs["dropped_classes"] = dropped
    out.attrs["split_config"] = {"method": method, "ratios": list(ratios), "seed": int(seed),
                                 "drop_small_classes": bool(drop_small_classes), "group_column": group_column}
    return out


def _predefined(df, drop_small_classes: bool):
    """Keep the given ``split`` column after checking its values; optionally drop classes missing from a split."""
    if "split" not in df.columns:
        raise SplitError("split method 'predefined' needs a 'split' column (train, val or test) in the data")
    values = df["split"].astype(str).str.strip().str.lower()
    bad = ~values.isin(SPLITS)
    if bad.any():
        rows = df.index[bad][:5].tolist()
        raise SplitError(f"predefined split: values {sorted(set(df['split'][bad].astype(str)))[:5]} in rows {rows} "
                         f"are not one of {', '.join(SPLITS)}")
    out = df.copy()
    out["split"] = values
    dropped: dict[str, str] = {}
    if drop_small_classes:
        present = out.groupby("label")["split"].nunique()
        needed = out["split"].nunique()
        dropped = {str(label): f"in {n} of the {needed} given splits" for label, n in present.items() if n < needed}
        out = out[~out["label"].astype(str).isin(set(dropped))].copy()
    out.attrs["dropped_classes"] = dropped
    out.attrs["split_config"] = {"method": "predefined", "drop_small_classes": bool(drop_small_classes)}
    return out


def id_columns_of(df) -> list[str]:
    """The manifest's identifier columns: ``group`` and every extra column (recording, caller, dog...)."""
    return [c for c in df.columns if c not in NON_ID_COLUMNS]


def leakage_report(df, id_columns: Iterable[str] | None = None) -> dict:
    """Describe a split manifest: sizes, class counts, missing classes, and identifiers crossing splits.

    For each identifier column (default: ``group`` and the extra columns), counts the values in
    more than one split, per pair of splits, and the test clips whose value also occurs in train
    (the clips whose score may be inflated by leakage). JSON-serialisable.
    """
    if "split" not in df.columns:
        raise ValueError("leakage_report needs a manifest with a 'split' column")
    id_columns = list(id_columns) if id_columns is not None else id_columns_of(df)
    present = [s for s in SPLITS if (df["split"] == s).any()]
    sizes = {s: int((df["split"] == s).sum()) for s in SPLITS}
    sizes["total"] = int(len(df))
    class_counts = {
        str(label): {s: int(((df["label"] == label) & (df["split"] == s)).sum()) for s in SPLITS}
        for label in sorted(df["label"].unique(), key=str)
    }
    missing = {s: [label for label, c in class_counts.items() if c[s] == 0] for s in present}
    ids = {}
    for column in id_columns:
        if column not in df.columns:
            raise ValueError(f"leakage_report: no column {column!r} in the manifest")
        values = df[column].astype(str)
        splits_of = values.groupby(df["split"]).apply(lambda v: set(v.tolist())).to_dict()
        per_value = df.groupby(values)["split"].nunique()
        crossing = sorted(per_value.index[per_value > 1].tolist())
        pairs = {
            f"{a}-{b}": len(splits_of.get(a, set()) & splits_of.get(b, set()))
            for i, a in enumerate(SPLITS) for b in SPLITS[i + 1:]
        }
        test_mask = df["split"] == "test"
        leaked_test = int(values[test_mask].isin(splits_of.get("train", set())).sum())
        ids[column] = {
            "n_values": int(values.nunique()),
            "n_crossing_splits": len(crossing),
            "fraction_crossing_splits": round(len(crossing) / max(values.nunique(), 1), 6),
            "shared_between": pairs,
            "test_clips_sharing_with_train": leaked_test,
            "fraction_test_clips_sharing_with_train": round(leaked_test / max(int(test_mask.sum()), 1), 6),
            "examples": crossing[:10],
        }
    report = {
        "n_clips": sizes,
        "n_classes": len(class_counts),
        "classes_missing_from_split": missing,
        "class_counts": class_counts,
        "ids": ids,
        "dropped_classes": dict(df.attrs.get("dropped_classes", {})),
    }
    if "split_config" in df.attrs:
        report["split"] = dict(df.attrs["split_config"])
    return report
