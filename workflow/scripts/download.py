import _bioprobe_path  # noqa: F401  (first: makes bioprobe importable)
from bioprobe import datasets
from bioprobe.smk import logged

with logged(snakemake):
    datasets.download(snakemake.wildcards.dataset, snakemake.params.dcfg, snakemake.params.data_dir)
