import _bioprobe_path  # noqa: F401  (first: makes bioprobe importable)
from bioprobe import datasets
from bioprobe.smk import logged

with logged(snakemake):
    datasets.prepare(
        snakemake.wildcards.dataset,
        snakemake.params.dcfg,
        snakemake.params.data_dir,
        manifest_out=snakemake.output.manifest,
        leakage_out=snakemake.output.leakage,
    )
