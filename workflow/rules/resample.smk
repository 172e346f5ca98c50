# Every clip of clips.csv as 16 kHz mono float32 in one HDF5 file.


rule resample:
    input:
        clips=f"{RESULTS}/{{dataset}}/clips.csv",
    output:
        audio=f"{RESULTS}/{{dataset}}/audio16k.h5",
    params:
        root=audio_root,
        audio=audio_settings(),
    log:
        f"{LOGS}/resample/{{dataset}}.log",
    benchmark:
        f"{BENCH}/resample/{{dataset}}.tsv"
    resources:
        mem_mb=8000,
    conda:
        "../../envs/bioprobe.yaml"
    script:
        "../scripts/resample.py"
