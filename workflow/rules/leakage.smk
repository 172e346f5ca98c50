# Named splits of a dataset and the leakage analysis (bioprobe.leakage, docs/extensions.md#leakage):
#   results/{dataset}/splits/{split}/split.csv        another split of the same clips (and target)
#   results/{dataset}/splits/{split}/probes/...       its probes, on the dataset's embeddings
#   results/{dataset}/leakage/{model}/{probe}/scores.csv   per layer: main vs grouped split, nuisance
#   results/figures/leakage_{dataset}.{fmt}, results/{dataset}/leakage/summary.md
# The main split (split.csv) and its probes are untouched by any of these.

SPLIT_NAMES = sorted({s for specs in NAMED_SPLITS.values() for s in specs})


rule named_split:
    input:
        prepare_inputs,
        clips=f"{RESULTS}/{{dataset}}/clips.csv",
        accepted=f"{RESULTS}/{{dataset}}/clips_accepted.csv",
    output:
        split=f"{RESULTS}/{{dataset}}/splits/{{split}}/split.csv",
        leakage=f"{RESULTS}/{{dataset}}/splits/{{split}}/leakage.json",
    wildcard_constraints:
        split=_alternatives(SPLIT_NAMES),
    params:
        settings=lambda wc: bp_datasets.named_split_settings(dataset_cfg(wc), named_split_spec(wc)),
        spec=named_split_spec,
    log:
        f"{LOGS}/split/{{dataset}}/{{split}}.log",
    benchmark:
        f"{BENCH}/split/{{dataset}}/{{split}}.tsv"
    localrule: True
    conda:
        "../../envs/bioprobe.yaml"
    script:
        "../scripts/named_split.py"


rule probe_split:
    input:
        embeddings=f"{RESULTS}/{{dataset}}/embeddings/{{model}}.h5",
        split=f"{RESULTS}/{{dataset}}/splits/{{split}}/split.csv",
    output:
        scores=f"{RESULTS}/{{dataset}}/splits/{{split}}/probes/{{model}}/{{probe}}/scores.csv",
        predictions=f"{RESULTS}/{{dataset}}/splits/{{split}}/probes/{{model}}/{{probe}}/predictions.h5",
        summary=f"{RESULTS}/{{dataset}}/splits/{{split}}/probes/{{model}}/{{probe}}/summary.csv",
        confusion=f"{RESULTS}/{{dataset}}/splits/{{split}}/probes/{{model}}/{{probe}}/confusion.csv",
    wildcard_constraints:
        split=_alternatives(SPLIT_NAMES),
    params:
        pcfg=probe_cfg,
        out_dir=lambda wc: f"{named_split_dir(wc.dataset, wc.split)}/probes/{wc.model}/{wc.probe}",
        device=config["probe_device"],
    log:
        f"{LOGS}/probe/{{dataset}}/splits/{{split}}/{{model}}/{{probe}}.log",
    benchmark:
        f"{BENCH}/probe/{{dataset}}/splits/{{split}}/{{model}}/{{probe}}.tsv"
    threads: 2
    resources:
        gpu=PROBE_GPU,
        mem_mb=12000,
    conda:
        "../../envs/bioprobe.yaml"
    script:
        "../scripts/probe.py"


rule leakage:
    input:
        main=lambda wc: f"{probe_dir(wc.dataset, wc.model, wc.probe)}/summary.csv",
        main_split=f"{RESULTS}/{{dataset}}/split.csv",
        summaries=lambda wc: [f"{named_split_dir(wc.dataset, s)}/probes/{wc.model}/{wc.probe}/summary.csv"
                              for s in leakage_split_names(wc.dataset)],
        splits=lambda wc: [f"{named_split_dir(wc.dataset, s)}/split.csv" for s in leakage_split_names(wc.dataset)],
    output:
        scores=f"{RESULTS}/{{dataset}}/leakage/{{model}}/{{probe}}/scores.csv",
    params:
        splits=lambda wc: leakage_split_names(wc.dataset),
        specs=lambda wc: {s: NAMED_SPLITS[wc.dataset][s] for s in leakage_split_names(wc.dataset)},
        main_method=lambda wc: bp_datasets.split_config(dataset_cfg(wc))["method"],
    log:
        f"{LOGS}/leakage/{{dataset}}/{{model}}/{{probe}}.log",
    benchmark:
        f"{BENCH}/leakage/{{dataset}}/{{model}}/{{probe}}.tsv"
    localrule: True
    conda:
        "../../envs/bioprobe.yaml"
    script:
        "../scripts/leakage.py"


rule leakage_figure:
    input:
        tables=lambda wc: [f"{RESULTS}/{wc.dataset}/leakage/{m}/{LEAKAGE['probe']}/scores.csv" for m in LEAKAGE_MODELS],
    output:
        figures=figure_files("leakage_{dataset}", "../report/leakage.rst", "Leakage", "{dataset}"),
        summary=report(f"{RESULTS}/{{dataset}}/leakage/summary.md", caption="../report/leakage_summary.rst",
                       category="Leakage", subcategory="{dataset}"),
    params:
        models=figure_models(),
        dpi=FIG["dpi"],
    log:
        f"{LOGS}/figures/leakage_{{dataset}}.log",
    benchmark:
        f"{BENCH}/figures/leakage_{{dataset}}.tsv"
    localrule: True
    conda:
        "../../envs/bioprobe.yaml"
    script:
        "../scripts/leakage_figure.py"
