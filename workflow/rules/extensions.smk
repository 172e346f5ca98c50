# Extensions beyond the study (docs/extensions.md), each on only when its config section exists:
#   label_efficiency:  test UAR of every layer against k labelled clips per class
#   cheapest_layer:    the earliest layer equivalent to the best (paired bootstrap, +-delta)
# resources/configs/extensions.yaml turns both on for the study; the demo runs them too.

rule label_efficiency:
    input:
        embeddings=f"{RESULTS}/{{dataset}}/embeddings/{{model}}.h5",
        split=f"{RESULTS}/{{dataset}}/split.csv",
    output:
        csv=f"{RESULTS}/{{dataset}}/label_efficiency/{{model}}/{{probe}}.csv",
    params:
        pcfg=label_efficiency_probe_cfg,
        le=tracked(LABEL_EFFICIENCY or {}, "label_efficiency.schema.yaml"),
        device=config["probe_device"],
    log:
        f"{LOGS}/label_efficiency/{{dataset}}/{{model}}/{{probe}}.log",
    benchmark:
        f"{BENCH}/label_efficiency/{{dataset}}/{{model}}/{{probe}}.tsv"
    threads: 2
    resources:
        gpu=PROBE_GPU,
        mem_mb=12000,
    conda:
        "../../envs/bioprobe.yaml"
    script:
        "../scripts/label_efficiency.py"


rule label_efficiency_fusion:
    input:
        scores=lambda wc: [f"{probe_dir(wc.dataset, m, fusion_cfg(wc).get('probe', 'mlp'))}/scores.csv" for m in fusion_models(wc)],
        embeddings=lambda wc: [embeddings(wc.dataset, m) for m in fusion_models(wc)],
        split=f"{RESULTS}/{{dataset}}/split.csv",
    output:
        csv=f"{RESULTS}/{{dataset}}/label_efficiency/{{fusion}}/{{probe}}.csv",
    params:
        fcfg=lambda wc: tracked(fusion_cfg(wc), "fusion.schema.yaml"),
        pcfg=label_efficiency_probe_cfg,
        le=tracked(LABEL_EFFICIENCY or {}, "label_efficiency.schema.yaml"),
        models=fusion_models,
        probe_dirs=lambda wc: {m: probe_dir(wc.dataset, m, fusion_cfg(wc).get("probe", "mlp")) for m in fusion_models(wc)},
        device=config["probe_device"],
    log:
        f"{LOGS}/label_efficiency/{{dataset}}/{{fusion}}/{{probe}}.log",
    benchmark:
        f"{BENCH}/label_efficiency/{{dataset}}/{{fusion}}/{{probe}}.tsv"
    threads: 2
    resources:
        gpu=PROBE_GPU,
        mem_mb=12000,
    conda:
        "../../envs/bioprobe.yaml"
    script:
        "../scripts/label_efficiency_fusion.py"


rule label_efficiency_figure:
    input:
        tables=lambda wc: label_efficiency_csvs(wc.dataset),
    output:
        report(
            f"{RESULTS}/figures/label_efficiency_{{dataset}}.{{fmt}}",
            caption="../report/label_efficiency.rst",
            category="Label efficiency",
        ),
    params:
        models=figure_models(),
        dataset="{dataset}",
    log:
        f"{LOGS}/figures/label_efficiency_{{dataset}}_{{fmt}}.log",
    benchmark:
        f"{BENCH}/figures/label_efficiency_{{dataset}}_{{fmt}}.tsv"
    localrule: True
    conda:
        "../../envs/bioprobe.yaml"
    script:
        "../scripts/label_efficiency_figure.py"


rule cheapest_layer:
    input:
        scores=lambda wc: [f"{probe_dir(wc.dataset, m, CHEAPEST['probe'])}/scores.csv" for m in MODELS],
        embeddings=lambda wc: [embeddings(wc.dataset, m) for m in MODELS],
        locks=[weights_lock(m) for m in MODELS],
    output:
        csv=f"{RESULTS}/{{dataset}}/cheapest_layer.csv",
    params:
        cfg=tracked(CHEAPEST or {}, "cheapest_layer.schema.yaml"),
        entries={m: bp_models.rule_params(m, config["models"]) for m in MODELS},
        probe_dirs=lambda wc: {m: probe_dir(wc.dataset, m, CHEAPEST["probe"]) for m in MODELS},
        cache=lambda wc, input: os.path.dirname(os.path.dirname(input.locks[0])),
    log:
        f"{LOGS}/cheapest_layer/{{dataset}}.log",
    benchmark:
        f"{BENCH}/cheapest_layer/{{dataset}}.tsv"
    conda:
        "../../envs/bioprobe.yaml"
    script:
        "../scripts/cheapest_layer.py"


rule cheapest_table:
    input:
        csvs=[f"{RESULTS}/{d}/cheapest_layer.csv" for d in DATASETS],
    output:
        csv=report(f"{RESULTS}/tables/cheapest_layer.csv", caption="../report/cheapest_layer.rst", category="Tables"),
        md=f"{RESULTS}/tables/cheapest_layer.md",
    params:
        models=figure_models(),
    log:
        f"{LOGS}/figures/cheapest_table.log",
    benchmark:
        f"{BENCH}/figures/cheapest_table.tsv"
    localrule: True
    conda:
        "../../envs/bioprobe.yaml"
    script:
        "../scripts/cheapest_table.py"
