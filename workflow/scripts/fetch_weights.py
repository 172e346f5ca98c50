import _bioprobe_path  # noqa: F401  (first: makes bioprobe importable)
from bioprobe.models import with_mirrors
from bioprobe.smk import logged
from bioprobe.weights import fetch_weights

with logged(snakemake):
    name = snakemake.wildcards.model
    # mirror URLs are not tracked params (where a file comes from, not what it is): from the config
    fetch_weights(name, with_mirrors(name, snakemake.config["models"], snakemake.params.mcfg), snakemake.params.cache)
