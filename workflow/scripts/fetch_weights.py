import _bioprobe_path  # noqa: F401  (first: makes bioprobe importable)
from bioprobe.smk import logged
from bioprobe.weights import fetch_weights

with logged(snakemake):
    fetch_weights(snakemake.wildcards.model, snakemake.params.mcfg, snakemake.params.cache)
