import _bioprobe_path  # noqa: F401  (first: makes bioprobe importable)
from bioprobe.config import embed_settings
from bioprobe.embed import embed_dataset
from bioprobe.smk import logged

with logged(snakemake):
    embed_dataset(
        snakemake.input.audio,
        snakemake.output.embeddings,
        snakemake.wildcards.model,
        snakemake.params.mcfg,
        embed_settings(snakemake.params.embed, snakemake.config, snakemake.wildcards.dataset, snakemake.wildcards.model),
        snakemake.params.cache,
        threads=snakemake.threads,
    )
