import _bioprobe_path  # noqa: F401  (first: makes bioprobe importable)
from bioprobe import datasets
from bioprobe.smk import logged

with logged(snakemake):
    name = snakemake.wildcards.dataset
    datasets.write_split(name, snakemake.config["datasets"][name], snakemake.config["data_dir"],
                         clips_csv=snakemake.input.clips, accepted_csv=snakemake.input.accepted, split_out=snakemake.output.split,
                         leakage_out=snakemake.output.leakage)
