"""How much of a layer's score is leakage: named splits, the split gap and nuisance decoding.

A random split (the study's) puts calls of one recording or one animal in both train and test,
so a layer can score by recognising the recording or the animal instead of the call type. For
each identifier column ``c`` of a dataset (IMV: ``recording`` and ``individual``, the caller;
Abzaliev: ``dog``),
the leakage analysis adds two *named splits* of the same clips (nothing upstream of the probes
is re-run: they reuse the embeddings):

``grouped_<c>``
    the target (the dataset's labels) under a split grouped by ``c``: no value of ``c`` in two
    splits; ratios and seed of the dataset's own split. A layer that leans on the recording or
    the animal loses UAR here. Classes found in fewer values of ``c`` than there are splits are
    left out of it (``drop_small_classes``; the table's ``n_classes`` shows it).
``nuisance_<c>``
    the identifier itself as the target (UAR over its values), on a random split stratified by
    ``c`` (a grouped split cannot decode values it never saw); values with fewer clips than
    splits are left out (``drop_small_classes``). High UAR: the layer knows the recording/animal.

A dataset may also name splits of its own (``splits:`` in its config entry), each with the keys
of ``split:`` plus ``target`` (the column predicted, default ``label``); they get probes of every
model and probe type. Every named split is written to ``results/{dataset}/splits/{name}/split.csv``
and probed under ``results/{dataset}/splits/{name}/probes/``; the dataset's ``split:`` (named
:data:`MAIN`) stays the one of the study's tables and figures.

:func:`leakage_table` joins, per layer, the test UAR of the main split, of each grouped split and
of each nuisance split into ``results/{dataset}/leakage/{model}/{probe}/scores.csv``;
:func:`leakage_summary` names the layers with the largest grouped-split loss and the highest
nuisance decoding. Parse-time helpers here import only the standard library.
"""

from __future__ import annotations

import re
from typing import Mapping

#: The name of a dataset's own ``split:`` in leakage tables.
MAIN = "main"
GROUPED, NUISANCE = "grouped", "nuisance"

#: The identifier columns tested by default, per dataset type; watkins and folder datasets have
#: none unless named under ``leakage.by`` (see :func:`leakage_columns`).
DEFAULT_COLUMNS = {"imv": ("recording", "individual"), "abzaliev": ("dog",), "watkins": (), "folder": ()}

TABLE_COLUMNS = ("dataset", "model", "probe", "layer", "split", "method", "task", "group_column", "target",
                 "n_classes", "chance", "n_test", "uar", "uar_std", "ci_low", "ci_high")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class LeakageConfigError(ValueError):
    """A named split or a leakage setting that cannot work (names the dataset and key)."""


def leakage_columns(name: str, dcfg: Mapping, leakage_cfg: Mapping | None) -> tuple[list[str], str | None]:
    """``(identifier columns tested, note)`` for dataset ``name``.

    ``leakage.by.<name>`` wins; else :data:`DEFAULT_COLUMNS` of the type. A Watkins dataset's
    group is the file itself unless ``group_prefix_chars`` is set, so it is skipped by default
    with a note (and tested on ``group`` when the prefix groups files); ``task: caller`` of IMV
    takes ``individual`` (the caller) out: it is then the target. The note says why a dataset is
    skipped. (IMV's raw ``caller`` column numbers the marmoset within its twin pair: 2 values.)
    """
    if not leakage_cfg:
        return [], None
    by = leakage_cfg.get("by") or {}
    if name in by:
        columns = list(by[name])
        return columns, None if columns else f"{name}: leakage.by.{name} is empty, leakage not measured"
    kind = dcfg.get("type")
    columns = list(DEFAULT_COLUMNS.get(kind, ()))
    if kind == "watkins":
        if int(dcfg.get("group_prefix_chars", 0) or 0) > 0:
            return ["group"], None
        return [], (f"{name}: Watkins gives no recording or animal id (each file is its own group), so there is "
                    "no leakage to measure; set group_prefix_chars to group files by tape, or leakage.by."
                    f"{name} to name a column")
    if kind == "imv" and dcfg.get("task") == "caller":
        columns = [c for c in columns if c != "individual"]
    if not columns:
        return [], (f"{name}: no identifier column is tested by default for a {kind} dataset; "
                    f"name one under leakage.by.{name} (e.g. [group])")
    return columns, None


def split_name(kind: str, column: str) -> str:
    """The named split of the leakage analysis for ``kind`` (grouped or nuisance) and ``column``."""
    return f"{kind}_{column}"


def named_splits(name: str, dcfg: Mapping, leakage_cfg: Mapping | None = None) -> dict[str, dict]:
    """Every named split of dataset ``name``: ``{split name: spec}``.

    A spec has the keys of a dataset's ``split:`` filled in (``method, ratios, seed,
    drop_small_classes, group_by``) plus ``target`` (column predicted), ``purpose`` (``user``,
    ``grouped`` or ``nuisance``) and ``column`` (the identifier column, for the leakage splits).
    Ratios and seed default to those of the dataset's own split. The dataset's ``splits:``
    entries come first, then the leakage analysis' splits (:func:`leakage_columns`).
    """
    from .datasets import split_config

    main = split_config(dict(dcfg))
    base = {"ratios": list(main["ratios"]), "seed": int(main["seed"]), "drop_small_classes": False,
            "group_by": "group", "target": "label"}
    out: dict[str, dict] = {}
    for split, spec in (dcfg.get("splits") or {}).items():
        if not _NAME.match(str(split)) or split == MAIN:
            raise LeakageConfigError(f"datasets.{name}.splits: {split!r} is not a usable split name "
                                     f"(letters, digits, _ and -; not {MAIN!r}, the name of split:)")
        if "method" not in spec:
            raise LeakageConfigError(f"datasets.{name}.splits.{split}: no method (random, stratified, grouped or predefined)")
        full = {**base, **spec}
        out[split] = {**full, "purpose": "user", "column": full["group_by"] if spec["method"] == "grouped" else ""}
    columns, _ = leakage_columns(name, dcfg, leakage_cfg)
    for column in columns:
        grouped = {**base, "method": "grouped", "group_by": column, "drop_small_classes": True,
                   "purpose": GROUPED, "column": column}
        nuisance = {**base, "method": "stratified", "target": column, "drop_small_classes": True,
                    "purpose": NUISANCE, "column": column}
        for split, spec in ((split_name(GROUPED, column), grouped), (split_name(NUISANCE, column), nuisance)):
            if split in out:
                raise LeakageConfigError(f"datasets.{name}.splits.{split}: this name is taken by the leakage analysis "
                                         f"(leakage.by); rename the split")
            out[split] = spec
    return out


def leakage_splits(specs: Mapping[str, Mapping]) -> list[str]:
    """The names of the leakage analysis' splits among ``specs`` (grouped, then nuisance, by column)."""
    return [s for s, spec in specs.items() if spec.get("purpose") in (GROUPED, NUISANCE)]


def _test_rows(summary, source: str):
    """The per-layer test rows of a probe's ``summary.csv`` frame, checked."""
    missing = {"layer", "split", "uar_mean", "uar_std", "ci_low", "ci_high"} - set(summary.columns)
    if missing:
        raise ValueError(f"{source}: missing column(s) {sorted(missing)} (not a probe summary.csv)")
    test = summary[summary["split"] == "test"]
    if test.empty:
        raise ValueError(f"{source}: no test rows")
    return test.set_index("layer").sort_index()


def leakage_table(ids: Mapping, main: tuple, named: Mapping[str, tuple], specs: Mapping[str, Mapping],
                  main_method: str):
    """One row per (layer, split): the test UAR of the main split and of every leakage split.

    ``main`` and each value of ``named`` are ``(summary frame, split frame, source name)``: a
    probe's ``summary.csv`` and the split file it was trained on (for the class count and the
    test size). ``ids``: ``dataset``, ``model``, ``probe``. Columns: :data:`TABLE_COLUMNS`;
    ``task`` is ``target`` or ``nuisance``, ``chance`` = 1 / classes (the UAR of a guess).
    """
    import pandas as pd

    parts = [(MAIN, {"method": main_method, "purpose": "", "column": "", "target": "label"}, main)]
    parts += [(split, specs[split], named[split]) for split in named]
    rows = []
    for split, spec, (summary, split_frame, source) in parts:
        test = _test_rows(summary, source)
        used = split_frame[split_frame["split"] != "excluded"]
        n_classes = int(used["label"].nunique())
        n_test = int((used["split"] == "test").sum())
        for layer, row in test.iterrows():
            rows.append({
                **{k: ids[k] for k in ("dataset", "model", "probe")}, "layer": int(layer), "split": split,
                "method": spec["method"], "task": NUISANCE if spec.get("purpose") == NUISANCE else "target",
                "group_column": spec.get("column", ""), "target": spec.get("target", "label"),
                "n_classes": n_classes, "chance": 1.0 / max(n_classes, 1), "n_test": n_test,
                "uar": float(row["uar_mean"]), "uar_std": float(row["uar_std"]),
                "ci_low": float(row["ci_low"]), "ci_high": float(row["ci_high"]),
            })
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def split_gaps(frame):
    """Per (model, grouped split, layer): main-split UAR minus grouped-split UAR (``gap``), with both UARs."""
    import pandas as pd

    main = frame[frame["split"] == MAIN].set_index(["model", "layer"])["uar"]
    grouped = frame[(frame["task"] == "target") & (frame["split"] != MAIN)]
    if grouped.empty:
        return pd.DataFrame(columns=["model", "split", "group_column", "layer", "main_uar", "grouped_uar", "gap"])
    out = grouped[["model", "split", "group_column", "layer", "uar"]].rename(columns={"uar": "grouped_uar"})
    out["main_uar"] = [main.get((m, layer), float("nan")) for m, layer in zip(out["model"], out["layer"])]
    out["gap"] = out["main_uar"] - out["grouped_uar"]
    return out[["model", "split", "group_column", "layer", "main_uar", "grouped_uar", "gap"]].reset_index(drop=True)


def leakage_summary(frame, dataset: str, labels: Mapping[str, str] | None = None, top: int = 3) -> str:
    """A short Markdown summary of one dataset's leakage tables (all models concatenated).

    Per identifier column: the (model, layer) pairs whose grouped-split loss is largest, and
    those whose nuisance decoding is highest (UAR and chance).
    """
    labels = labels or {}
    name = lambda m: labels.get(m, m)  # noqa: E731
    lines = [f"## Leakage on {dataset}", ""]
    if frame.empty:
        return "\n".join(lines + ["No leakage split was measured.", ""])
    main_method = frame.loc[frame["split"] == MAIN, "method"].iloc[0]
    gaps = split_gaps(frame)
    for column in sorted({c for c in frame["group_column"] if c}):
        lines.append(f"### By {column}")
        sub = gaps[gaps["group_column"] == column].sort_values("gap", ascending=False)
        classes = frame.loc[(frame["group_column"] == column) & (frame["task"] == "target"), "n_classes"]
        main_classes = frame.loc[frame["split"] == MAIN, "n_classes"]
        if len(classes) and len(main_classes) and int(classes.iloc[0]) != int(main_classes.iloc[0]):
            lines.append(f"The grouped split has {int(classes.iloc[0])} of the {int(main_classes.iloc[0])} classes: "
                         f"the others occur in too few {column} values to reach every split.")
        if not sub.empty:
            lines.append(f"Largest loss from the {main_method} split to the split grouped by {column} (test UAR):")
            for _, r in sub.head(top).iterrows():
                lines.append(f"- {name(r['model'])}, layer {int(r['layer'])}: {r['main_uar']:.3f} -> "
                             f"{r['grouped_uar']:.3f} ({-r['gap']:+.3f})")
            lines.append(f"Mean change over every model and layer: {-sub['gap'].mean():+.3f} UAR.")
        nuisance = frame[(frame["task"] == NUISANCE) & (frame["group_column"] == column)].sort_values("uar", ascending=False)
        if not nuisance.empty:
            chance = float(nuisance["chance"].iloc[0])
            lines.append(f"Highest decoding of the {column} itself ({int(nuisance['n_classes'].iloc[0])} values, "
                         f"chance {chance:.3f}):")
            for _, r in nuisance.head(top).iterrows():
                lines.append(f"- {name(r['model'])}, layer {int(r['layer'])}: UAR {r['uar']:.3f}")
        lines.append("")
    return "\n".join(lines)


def write_leakage_table(ids: Mapping, main: tuple[str, str], named: Mapping[str, tuple[str, str]],
                        specs: Mapping[str, Mapping], main_method: str, out_csv) -> None:
    """Read the probes' ``summary.csv`` and split files, write :func:`leakage_table` to ``out_csv`` atomically.

    ``main`` and each value of ``named``: ``(summary.csv, split.csv)`` paths.
    """
    import pandas as pd

    from .fileio import write_csv

    def load(pair):
        summary_csv, split_csv = pair
        summary = pd.read_csv(summary_csv)
        split = pd.read_csv(split_csv, dtype=str, keep_default_na=False)
        return summary, split, str(summary_csv)

    table = leakage_table(ids, load(main), {s: load(p) for s, p in named.items()}, specs, main_method)
    write_csv(out_csv, table)
