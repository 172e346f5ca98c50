# Download, verify and extract a dataset. A local rule: on a cluster it runs on the login node,
# which has internet, and never re-downloads verified data.


rule download:
    output:
        marker=f"{DATA_DIR}/{{dataset}}/.complete.json",
    params:
        settings=download_settings,  # only what changes what is downloaded
        data_dir=lambda wc, output: os.path.dirname(os.path.dirname(output.marker)),
    log:
        f"{LOGS}/download/{{dataset}}.log",
    benchmark:
        f"{BENCH}/download/{{dataset}}.tsv"
    localrule: True
    retries: 1
    conda:
        "../../envs/bioprobe.yaml"
    script:
        "../scripts/download.py"
