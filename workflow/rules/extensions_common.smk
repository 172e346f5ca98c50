# Names and paths of the extensions (docs/extensions.md), used by workflow/rules/extensions.smk.
from bioprobe import leakage as bp_leakage
from bioprobe.probes.label_efficiency import used_probe_settings

LABEL_EFFICIENCY = config.get("label_efficiency")
CHEAPEST = config.get("cheapest_layer")
LEAKAGE = config.get("leakage")
# Named splits of each dataset (its splits: entries, and grouped_<column> / nuisance_<column> of the
# leakage analysis): each has a split file and probes; embeddings are shared with the main split.
NAMED_SPLITS = {d: bp_leakage.named_splits(d, config["datasets"][d], LEAKAGE) for d in DATASETS}
LEAKAGE_MODELS = [m for m in MODELS if not LEAKAGE or m in (LEAKAGE.get("models") or MODELS)]
for _dataset in DATASETS:
    _note = bp_leakage.leakage_columns(_dataset, config["datasets"][_dataset], LEAKAGE)[1]
    if _note:
        print(f"bioprobe: leakage: {_note}", file=sys.stderr)


def leakage_split_names(dataset):
    return bp_leakage.leakage_splits(NAMED_SPLITS[dataset])


def named_split_dir(dataset, split):
    return f"{RESULTS}/{dataset}/splits/{split}"


def named_split_spec(wildcards):
    return NAMED_SPLITS[wildcards.dataset][wildcards.split]


def leakage_outputs(dataset):
    outs = []
    for split, spec in NAMED_SPLITS[dataset].items():  # a user's splits: every model and probe type
        if spec["purpose"] == "user":
            outs += [f"{named_split_dir(dataset, split)}/probes/{m}/{p}/scores.csv" for m in MODELS for p in PROBES]
    if LEAKAGE and leakage_split_names(dataset):
        outs += [f"{RESULTS}/{dataset}/leakage/{m}/{LEAKAGE['probe']}/scores.csv" for m in LEAKAGE_MODELS]
        outs += [f"{RESULTS}/{dataset}/leakage/summary.md"]
        outs += [f"{RESULTS}/figures/leakage_{dataset}.{fmt}" for fmt in FIG_FORMATS]
    return outs


def label_efficiency_fusions():
    if not LABEL_EFFICIENCY or not LABEL_EFFICIENCY.get("fusion", True):
        return []
    return [f for f, fcfg in (config.get("fusion") or {}).items() if fcfg.get("method", "concat_best") == "concat_best"]


def label_efficiency_csvs(dataset):
    probe = LABEL_EFFICIENCY["probe"]
    return [f"{RESULTS}/{dataset}/label_efficiency/{m}/{probe}.csv" for m in MODELS + label_efficiency_fusions()]


def extension_outputs():
    outs = []
    for dataset in DATASETS:
        if LABEL_EFFICIENCY:
            outs += label_efficiency_csvs(dataset)
            outs += [f"{RESULTS}/figures/label_efficiency_{dataset}.{fmt}" for fmt in FIG_FORMATS]
        if CHEAPEST:
            outs.append(f"{RESULTS}/{dataset}/cheapest_layer.csv")
        outs += leakage_outputs(dataset)
    if CHEAPEST and DATASETS:
        outs += [f"{RESULTS}/tables/cheapest_layer.{ext}" for ext in ("csv", "md")]
    return outs


def label_efficiency_probe_cfg(wildcards):
    # the probe's seeds and CI settings are not used by label efficiency: not tracked
    return used_probe_settings(probe_cfg(wildcards))
