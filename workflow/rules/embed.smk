# Model weights are fetched by a local rule (login node, internet); embedding runs on a GPU node
# offline from the cache that the fetch filled.


rule fetch_weights:
    input:
        weights_inputs,
    output:
        lock=f"{MODEL_CACHE}/locks/{{model}}.json",
    params:
        mcfg=model_fetch_cfg,
        cache=lambda wc, output: os.path.dirname(os.path.dirname(output.lock)),
    log:
        f"{LOGS}/fetch_weights/{{model}}.log",
    benchmark:
        f"{BENCH}/fetch_weights/{{model}}.tsv"
    localrule: True
    retries: 1
    conda:
        "../../envs/bioprobe.yaml"
    script:
        "../scripts/fetch_weights.py"


rule embed:
    input:
        audio=f"{RESULTS}/{{dataset}}/audio16k.h5",
        lock=f"{MODEL_CACHE}/locks/{{model}}.json",
    output:
        embeddings=f"{RESULTS}/{{dataset}}/embeddings/{{model}}.h5",
    params:
        mcfg=model_weights_cfg,
        embed=embed_params,  # with the dataset's and model's overrides; batch size and device not tracked
        cache=lambda wc, input: os.path.dirname(os.path.dirname(input.lock)),
    log:
        f"{LOGS}/embed/{{dataset}}/{{model}}.log",
    benchmark:
        f"{BENCH}/embed/{{dataset}}/{{model}}.tsv"
    threads: 4
    resources:
        gpu=1,
        mem_mb=16000,
    conda:
        "../../envs/bioprobe.yaml"
    script:
        "../scripts/embed.py"
