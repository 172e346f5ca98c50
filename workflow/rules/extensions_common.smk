# Names and paths of the extensions (docs/extensions.md), used by workflow/rules/extensions.smk.
from bioprobe.probes.label_efficiency import used_probe_settings

LABEL_EFFICIENCY = config.get("label_efficiency")
CHEAPEST = config.get("cheapest_layer")


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
    if CHEAPEST and DATASETS:
        outs += [f"{RESULTS}/tables/cheapest_layer.{ext}" for ext in ("csv", "md")]
    return outs


def label_efficiency_probe_cfg(wildcards):
    # the probe's seeds and CI settings are not used by label efficiency: not tracked
    return used_probe_settings(probe_cfg(wildcards))
