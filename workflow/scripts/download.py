import _bioprobe_path  # noqa: F401  (first: makes bioprobe importable)
from bioprobe import datasets
from bioprobe.smk import logged

with logged(snakemake):
    name = snakemake.wildcards.dataset
    datasets.download(name, snakemake.config["datasets"][name], snakemake.params.data_dir)
