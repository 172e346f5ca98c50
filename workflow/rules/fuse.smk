# Fusion across models, as defined in docs/probes.md and recorded in its output.


rule fuse:
    input:
        scores=lambda wc: [f"{probe_dir(wc.dataset, m, fusion_cfg(wc)['probe'])}/scores.csv" for m in fusion_models(wc)],
        embeddings=lambda wc: [embeddings(wc.dataset, m) for m in fusion_models(wc)],
        split=f"{RESULTS}/{{dataset}}/split.csv",
    output:
        scores=f"{RESULTS}/{{dataset}}/fusion/{{fusion}}/scores.csv",
        predictions=f"{RESULTS}/{{dataset}}/fusion/{{fusion}}/predictions.h5",
        summary=f"{RESULTS}/{{dataset}}/fusion/{{fusion}}/summary.csv",
        confusion=f"{RESULTS}/{{dataset}}/fusion/{{fusion}}/confusion.csv",
        definition=f"{RESULTS}/{{dataset}}/fusion/{{fusion}}/definition.json",
    params:
        fcfg=lambda wc: tracked(fusion_cfg(wc), "fusion.schema.yaml"),
        pcfg=lambda wc: config["probes"][fusion_cfg(wc)["probe"]],
        models=fusion_models,
        out_dir=lambda wc: fusion_dir(wc.dataset, wc.fusion),
        device=config["probe_device"],
        probe_dirs=lambda wc: {m: probe_dir(wc.dataset, m, fusion_cfg(wc)["probe"]) for m in fusion_models(wc)},
    log:
        f"{LOGS}/fuse/{{dataset}}/{{fusion}}.log",
    benchmark:
        f"{BENCH}/fuse/{{dataset}}/{{fusion}}.tsv"
    threads: 2
    resources:
        gpu=PROBE_GPU,
        mem_mb=12000,
    conda:
        "../../envs/bioprobe.yaml"
    script:
        "../scripts/fuse.py"
