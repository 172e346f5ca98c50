import _bioprobe_path  # noqa: F401  (first: makes bioprobe importable)
from bioprobe.cheapest import run_cheapest_layer
from bioprobe.smk import logged

with logged(snakemake):
    probe_dirs = snakemake.params.probe_dirs
    run_cheapest_layer(
        snakemake.wildcards.dataset,
        snakemake.params.entries,
        probe_dirs,
        dict(zip(probe_dirs, snakemake.input.embeddings)),
        snakemake.params.cache,
        snakemake.params.cfg,
        snakemake.output.csv,
    )
