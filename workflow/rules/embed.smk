# Model weights are fetched by a local rule (login node, internet); embedding runs on a GPU node
# offline from the cache that the fetch filled.


def weights_inputs(wildcards):
    # The offline demo makes its tiny models with a rule: depend on them when the model is one.
    mcfg = model_weights_cfg(wildcards)
    demo = (config.get("demo") or {}).get("models")
    local = mcfg.get("id") or mcfg.get("of") or ""
    if demo and str(local).startswith(demo["out"] + "/"):
        return [f"{local}/config.json"]
    if demo and mcfg.get("source") == "aves" and str(mcfg.get("config_url", "")).startswith(demo["out"] + "/"):
        return [f"{demo['out']}/aves/config.json"]
    return []


rule fetch_weights:
    input:
        weights_inputs,
    output:
        lock=f"{MODEL_CACHE}/locks/{{model}}.json",
    params:
        mcfg=model_weights_cfg,
        cache=MODEL_CACHE,
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
        embed=config["embed"],
        cache=MODEL_CACHE,
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
