# The offline demo's inputs: synthetic calls and tiny random models, made rather than downloaded.

DEMO = config.get("demo") or {}

if "calls" in DEMO:

    rule demo_calls:
        output:
            labels=f"{DEMO['calls']['out']}/labels.csv",
        params:
            cfg=DEMO["calls"],
        log:
            f"{LOGS}/demo/calls.log",
        benchmark:
            f"{BENCH}/demo/calls.tsv"
        localrule: True
        conda:
            "../../envs/bioprobe.yaml"
        script:
            "../scripts/demo_calls.py"


if "models" in DEMO:

    rule demo_model:
        output:
            config=f"{DEMO['models']['out']}/{{kind}}/config.json",
        params:
            seed=DEMO["models"]["seed"],
        wildcard_constraints:
            kind="hubert|wav2vec2|wavlm|aves",
        log:
            f"{LOGS}/demo/model_{{kind}}.log",
        benchmark:
            f"{BENCH}/demo/model_{{kind}}.tsv"
        localrule: True
        conda:
            "../../envs/bioprobe.yaml"
        script:
            "../scripts/demo_model.py"
