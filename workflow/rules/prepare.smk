# One manifest per dataset: one row per clip with its label, group and split, decided here once.


rule prepare:
    input:
        prepare_inputs,
    output:
        manifest=f"{RESULTS}/{{dataset}}/manifest.csv",
        leakage=f"{RESULTS}/{{dataset}}/leakage.json",
    params:
        dcfg=dataset_cfg,
        data_dir=DATA_DIR,
    log:
        f"{LOGS}/prepare/{{dataset}}.log",
    benchmark:
        f"{BENCH}/prepare/{{dataset}}.tsv"
    conda:
        "../../envs/bioprobe.yaml"
    script:
        "../scripts/prepare.py"
