# The study's figures and tables, regenerated from the scores.


rule layerwise_figure:
    input:
        scores=lambda wc: probe_scores_of(wc.dataset),
    output:
        report(
            f"{RESULTS}/figures/layerwise_{{dataset}}.{{fmt}}",
            caption="../report/layerwise.rst",
            category="Layer-wise UAR",
        ),
    params:
        models=figure_models(),
        dataset="{dataset}",
    log:
        f"{LOGS}/figures/layerwise_{{dataset}}_{{fmt}}.log",
    benchmark:
        f"{BENCH}/figures/layerwise_{{dataset}}_{{fmt}}.tsv"
    conda:
        "../../envs/bioprobe.yaml"
    script:
        "../scripts/layerwise_figure.py"


rule tables:
    input:
        scores=[s for d in DATASETS for s in probe_scores_of(d)],
        fusion=[s for d in DATASETS for s in fusion_scores_of(d)],
        # the CI of the seed-mean UAR, beside each scores.csv
        summaries=[s.replace("scores.csv", "summary.csv") for d in DATASETS for s in probe_scores_of(d) + fusion_scores_of(d)],
    output:
        best_csv=report(f"{RESULTS}/tables/best_layer.csv", category="Tables"),
        best_md=f"{RESULTS}/tables/best_layer.md",
        all_scores=f"{RESULTS}/tables/all_scores.csv",
    params:
        models=figure_models(),
        fusion={f: tracked(fcfg, "fusion.schema.yaml") for f, fcfg in (config.get("fusion") or {}).items()},
        datasets={d: config['datasets'][d]['type'] for d in DATASETS},
    log:
        f"{LOGS}/figures/tables.log",
    benchmark:
        f"{BENCH}/figures/tables.tsv"
    conda:
        "../../envs/bioprobe.yaml"
    script:
        "../scripts/tables.py"
