import _bioprobe_path  # noqa: F401  (first: makes bioprobe importable)
from bioprobe.smk import logged
from bioprobe.stats import run_comparisons

with logged(snakemake):
    run_comparisons(
        snakemake.wildcards.dataset,
        snakemake.params.models,
        snakemake.params.probe_dirs,
        snakemake.output.comparisons,
    )
