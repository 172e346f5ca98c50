import _bioprobe_path  # noqa: F401  (first: makes bioprobe importable)
from bioprobe.probes import run_probe_job
from bioprobe.smk import logged

with logged(snakemake):
    run_probe_job(
        snakemake.input.embeddings,
        snakemake.input.manifest,
        snakemake.params.out_dir,
        dataset=snakemake.wildcards.dataset,
        model=snakemake.wildcards.model,
        probe_name=snakemake.wildcards.probe,
        probe_cfg=snakemake.params.pcfg,
        threads=snakemake.threads,
        device=snakemake.params.device,
    )
