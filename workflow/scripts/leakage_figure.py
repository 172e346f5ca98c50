import _bioprobe_path  # noqa: F401  (first: makes bioprobe importable)
from bioprobe.figures.leakage import make_leakage
from bioprobe.smk import logged

with logged(snakemake):
    make_leakage(snakemake.input.tables, snakemake.wildcards.dataset, snakemake.params.models,
                 snakemake.output.figures, snakemake.output.summary, dpi=snakemake.params.dpi)
