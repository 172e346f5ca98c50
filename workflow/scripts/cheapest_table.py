import _bioprobe_path  # noqa: F401  (first: makes bioprobe importable)
from bioprobe.cheapest import write_cheapest_tables
from bioprobe.smk import logged

with logged(snakemake):
    write_cheapest_tables(snakemake.input.csvs, snakemake.output.csv, snakemake.output.md, snakemake.params.models)
