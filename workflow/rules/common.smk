# Names, paths and input functions shared by the rules. Only cheap imports here.
import os
import re
import sys

from bioprobe import datasets as bp_datasets
from bioprobe import models as bp_models
from bioprobe.config import effective_embed, embed_result_settings, tracked

# Normalised, so that paths built here and by the library compare equal ("data/" == "data").
DATA_DIR = os.path.normpath(config["data_dir"])
MODEL_CACHE = os.path.normpath(config["model_cache"])
RESULTS = os.path.normpath(config["results_dir"])
# Logs of another results folder (e.g. results/study_exact) go beside its results.
LOGS = "logs" if RESULTS == "results" else f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"


# Source files this workflow makes itself (the demo's labels): tracked by date like any output.
MADE_BY_WORKFLOW = tuple(
    f"{d['out']}/labels.csv" for d in [(config.get("demo") or {}).get("calls")] if d
)


def _enabled_datasets():
    names = []
    for name, dcfg in config["datasets"].items():
        if not dcfg.get("enabled", True):
            continue
        available, reason = bp_datasets.dataset_is_available(dcfg)
        if not available:
            print(f"bioprobe: dataset '{name}' is left out of this run: {reason}", file=sys.stderr)
            continue
        # a folder dataset's root: and labels: must exist: said now, naming the key, not as a missing input
        bp_datasets.check_paths(name, dcfg, MADE_BY_WORKFLOW)
        names.append(name)
    return names


DATASETS = _enabled_datasets()
if not DATASETS:
    print("bioprobe: no dataset of this config is enabled and available: nothing will be embedded or probed",
          file=sys.stderr)
# A model with `enabled: false` is left out of the run (it may still lend its architecture to a random_init).
MODELS = [name for name, mcfg in config["models"].items() if mcfg.get("enabled", True)]
PROBES = list(config["probes"])
FUSIONS = list(config.get("fusion") or {})
FIG_FORMATS = config["figures"]["formats"]
# Probes on the GPU share it with embedding jobs through the gpu resource (--resources gpu=1).
PROBE_GPU = 1 if config["probe_device"] == "cuda" else 0


def _alternatives(names):
    # An exact list of names keeps paths unambiguous (no wildcard swallows a '/').
    return "|".join(re.escape(n) for n in names) if names else "[A-Za-z0-9][A-Za-z0-9_-]*"


wildcard_constraints:
    dataset=_alternatives(list(config["datasets"])),
    model=_alternatives(MODELS),
    probe=_alternatives(PROBES),
    fusion=_alternatives(FUSIONS),
    fmt=_alternatives(FIG_FORMATS),


def dataset_cfg(wildcards):
    # Without its embed: overrides (tracked by the embed rule): the downloads stay shared by
    # configs that embed differently (resources/configs/study_exact.yaml).
    return {k: v for k, v in config["datasets"][wildcards.dataset].items() if k != "embed"}


def model_cfg(wildcards):
    return config["models"][wildcards.model]


def model_weights_cfg(wildcards):
    # Self-contained (a random_init's `of: <model name>` inlined) and without the keys that only
    # name or describe the model: renaming a model re-draws figures and tables, but does not
    # re-fetch weights or re-embed.
    # Its embed: overrides are tracked by the embed rule (embed_params), not here.
    return bp_models.rule_params(wildcards.model, config["models"])


def model_fetch_cfg(wildcards):
    # What fetch_weights tracks: also without the keys that only change embeddings (layer0).
    return bp_models.rule_params(wildcards.model, config["models"], fetch=True)


def probe_cfg(wildcards):
    return config["probes"][wildcards.probe]


def fusion_cfg(wildcards):
    return config["fusion"][wildcards.fusion]


def clips_csv(dataset):
    return f"{RESULTS}/{dataset}/clips.csv"


def split_csv(dataset):
    return f"{RESULTS}/{dataset}/split.csv"


def embeddings(dataset, model):
    return f"{RESULTS}/{dataset}/embeddings/{model}.h5"


def probe_dir(dataset, model, probe):
    return f"{RESULTS}/{dataset}/probes/{model}/{probe}"


def fusion_dir(dataset, fusion):
    return f"{RESULTS}/{dataset}/fusion/{fusion}"


def weights_lock(model):
    return f"{MODEL_CACHE}/locks/{model}.json"


def probe_scores_of(dataset):
    return [f"{probe_dir(dataset, m, p)}/scores.csv" for m in MODELS for p in PROBES]


def fusion_scores_of(dataset):
    return [f"{fusion_dir(dataset, f)}/scores.csv" for f in FUSIONS]


def all_outputs():
    outs = []
    for dataset in DATASETS:
        outs += probe_scores_of(dataset) + fusion_scores_of(dataset)
        outs.append(f"{RESULTS}/{dataset}/comparisons.csv")
    return outs + figure_outputs()  # common_figures.smk


def prepare_inputs(wildcards):
    return bp_datasets.prepare_inputs(wildcards.dataset, dataset_cfg(wildcards), DATA_DIR)


def clips_inputs(wildcards):
    pairs = bp_datasets.clips_inputs(wildcards.dataset, dataset_cfg(wildcards), DATA_DIR, MADE_BY_WORKFLOW)
    return [ancient(path) if is_ancient else path for path, is_ancient in pairs]


def download_settings(wildcards):
    return bp_datasets.download_settings(dataset_cfg(wildcards))


def audio_settings():
    # what the resampled audio depends on; the resample script reads the full section from config
    return tracked(config["audio"], "config.schema.yaml", ("audio",))


def embed_params(wildcards):
    # The embed: settings of this dataset and model, with their overrides, that change results:
    # batch size (unless study_repeat_pad) and device are not tracked; nor are settings left at
    # their schema default (std_ddof is marked x-tracked: always).
    merged = effective_embed(config, wildcards.dataset, wildcards.model)
    return tracked(embed_result_settings(merged), "embed.schema.yaml")


def figure_models():
    # what figures and tables show of each model: its name, group and pairing, in config order
    keys = (*bp_models.DESCRIPTIVE_KEYS, "source")
    return {m: {k: v for k, v in config["models"][m].items() if k in keys} for m in MODELS}  # enabled ones


def audio_root(wildcards):
    return str(bp_datasets.audio_root(wildcards.dataset, dataset_cfg(wildcards), DATA_DIR))


def weights_inputs(wildcards):
    # The offline demo makes its tiny models with a rule: depend on them when the model is one.
    mcfg = model_weights_cfg(wildcards)
    demo = (config.get("demo") or {}).get("models")
    of = mcfg.get("of")
    local = mcfg.get("id") or (of.get("id") if isinstance(of, dict) else of) or ""
    if demo and str(local).startswith(demo["out"] + "/"):
        return [f"{local}/config.json"]
    if demo and mcfg.get("source") == "aves" and str(mcfg.get("config_url", "")).startswith(demo["out"] + "/"):
        return [f"{demo['out']}/aves/config.json"]
    return []


def fusion_models(wildcards):
    return fusion_cfg(wildcards).get("models") or MODELS
