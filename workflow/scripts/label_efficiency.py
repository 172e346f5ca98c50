import _bioprobe_path  # noqa: F401  (first: makes bioprobe importable)
from bioprobe.probes.label_efficiency import run_label_efficiency_job
from bioprobe.smk import logged

with logged(snakemake):
    run_label_efficiency_job(
        snakemake.input.embeddings,
        snakemake.input.split,
        snakemake.output.csv,
        dataset=snakemake.wildcards.dataset,
        model=snakemake.wildcards.model,
        probe_name=snakemake.wildcards.probe,
        probe_cfg=snakemake.params.pcfg,
        le_cfg=snakemake.params.le,
        threads=snakemake.threads,
        device=snakemake.params.device,
    )
