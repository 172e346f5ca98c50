# Two files per dataset, made by two rules so that a label or split change never touches audio:
#   clips.csv  what audio each clip is (clip_id, path, start, end); resample and embed read it
#   split.csv  label, group, id columns and split (train/val/test/excluded) per clip; probes read it
# Each rule tracks as params only the config keys it uses (bioprobe.datasets.clip_settings /
# split_settings); the scripts read the full dataset entry from the config.


rule clips:
    input:
        clips_inputs,
    output:
        clips=f"{RESULTS}/{{dataset}}/clips.csv",
    params:
        settings=lambda wc: bp_datasets.clip_settings(dataset_cfg(wc), MADE_BY_WORKFLOW),
    log:
        f"{LOGS}/clips/{{dataset}}.log",
    benchmark:
        f"{BENCH}/clips/{{dataset}}.tsv"
    conda:
        "../../envs/bioprobe.yaml"
    script:
        "../scripts/clips.py"


rule split:
    input:
        prepare_inputs,
        clips=f"{RESULTS}/{{dataset}}/clips.csv",
    output:
        split=f"{RESULTS}/{{dataset}}/split.csv",
        leakage=f"{RESULTS}/{{dataset}}/leakage.json",
    params:
        settings=lambda wc: bp_datasets.split_settings(dataset_cfg(wc)),
    log:
        f"{LOGS}/split/{{dataset}}.log",
    benchmark:
        f"{BENCH}/split/{{dataset}}.tsv"
    conda:
        "../../envs/bioprobe.yaml"
    script:
        "../scripts/split.py"
