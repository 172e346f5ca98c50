import _bioprobe_path  # noqa: F401  (first: makes bioprobe importable)
from bioprobe.smk import go_offline

go_offline()  # HF_HUB_OFFLINE=1 before anything imports huggingface_hub: this job never downloads

from bioprobe.probes import run_probe_job  # noqa: E402
from bioprobe.smk import logged  # noqa: E402

with logged(snakemake):
    run_probe_job(
        snakemake.input.embeddings,
        snakemake.input.split,
        snakemake.params.out_dir,
        dataset=snakemake.wildcards.dataset,
        model=snakemake.wildcards.model,
        probe_name=snakemake.wildcards.probe,
        probe_cfg=snakemake.params.pcfg,
        threads=snakemake.threads,
        device=snakemake.params.device,
    )
