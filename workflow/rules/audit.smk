# The audit: every clip of clips.csv judged once, each source file read once (bioprobe.audit).
# It is the one writer of rejected.csv and of the audio warnings; the split and the resampling
# take clips_accepted.csv, so later steps only ever see accepted clips. on_bad_audio: fail stops
# here naming every bad file; skip goes on without them.


rule audit:
    input:
        clips=f"{RESULTS}/{{dataset}}/clips.csv",
    output:
        accepted=f"{RESULTS}/{{dataset}}/clips_accepted.csv",
        rejected=f"{RESULTS}/{{dataset}}/rejected.csv",
        warnings=f"{RESULTS}/{{dataset}}/audio_warnings.csv",
    params:
        # on_bad_audio is read from the config by the script, not tracked: it decides whether
        # the audit stops, not what it writes, so changing it re-runs nothing
        root=audio_root,
        sample_rate=config["audio"]["sample_rate"],
    log:
        f"{LOGS}/audit/{{dataset}}.log",
    benchmark:
        f"{BENCH}/audit/{{dataset}}.tsv"
    resources:
        mem_mb=2000,
    conda:
        "../../envs/bioprobe.yaml"
    script:
        "../scripts/audit.py"
