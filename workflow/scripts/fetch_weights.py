from bioprobe.smk import logged
from bioprobe.weights import fetch_weights

with logged(snakemake):
    fetch_weights(snakemake.wildcards.model, snakemake.params.mcfg, snakemake.params.cache)
