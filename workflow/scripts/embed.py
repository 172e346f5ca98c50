import _bioprobe_path  # noqa: F401  (first: makes bioprobe importable)
from bioprobe.smk import go_offline

go_offline()  # HF_HUB_OFFLINE=1 before anything imports huggingface_hub: this job never downloads

from bioprobe.config import embed_settings  # noqa: E402
from bioprobe.embed import embed_dataset  # noqa: E402
from bioprobe.smk import logged  # noqa: E402

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
