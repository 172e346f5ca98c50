import _bioprobe_path  # noqa: F401  (first: makes bioprobe importable)
from bioprobe.probe import run_probe_job
from bioprobe.smk import logged

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
