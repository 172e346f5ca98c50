# One job per (dataset, model, probe type) trains the probes of every layer at once.


rule probe:
    input:
        embeddings=f"{RESULTS}/{{dataset}}/embeddings/{{model}}.h5",
        split=f"{RESULTS}/{{dataset}}/split.csv",
    output:
        scores=f"{RESULTS}/{{dataset}}/probes/{{model}}/{{probe}}/scores.csv",
        predictions=f"{RESULTS}/{{dataset}}/probes/{{model}}/{{probe}}/predictions.h5",
        summary=f"{RESULTS}/{{dataset}}/probes/{{model}}/{{probe}}/summary.csv",
        confusion=f"{RESULTS}/{{dataset}}/probes/{{model}}/{{probe}}/confusion.csv",
    params:
        pcfg=probe_cfg,
        out_dir=lambda wc: probe_dir(wc.dataset, wc.model, wc.probe),
        device=config["probe_device"],
    log:
        f"{LOGS}/probe/{{dataset}}/{{model}}/{{probe}}.log",
    benchmark:
        f"{BENCH}/probe/{{dataset}}/{{model}}/{{probe}}.tsv"
    threads: 2
    resources:
        gpu=PROBE_GPU,
        mem_mb=12000,  # an IMV-sized job (73k clips x 13 layers x 1536 dims) peaks near 7 GB
    conda:
        "../../envs/bioprobe.yaml"
    script:
        "../scripts/probe.py"


rule compare:
    input:
        scores=lambda wc: probe_scores_of(wc.dataset),
    output:
        comparisons=f"{RESULTS}/{{dataset}}/comparisons.csv",
    params:
        models=figure_models(),
        probe_dirs=lambda wc: {(m, p): probe_dir(wc.dataset, m, p) for m in MODELS for p in PROBES},
    log:
        f"{LOGS}/compare/{{dataset}}.log",
    benchmark:
        f"{BENCH}/compare/{{dataset}}.tsv"
    conda:
        "../../envs/bioprobe.yaml"
    script:
        "../scripts/compare.py"
