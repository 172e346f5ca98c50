import _bioprobe_path  # noqa: F401  (first: makes bioprobe importable)
from bioprobe.smk import go_offline

go_offline()  # HF_HUB_OFFLINE=1 before anything imports huggingface_hub: this job never downloads

from bioprobe.fusion import run_fusion  # noqa: E402
from bioprobe.smk import logged  # noqa: E402

with logged(snakemake):
    models = snakemake.params.models
    run_fusion(
        snakemake.wildcards.dataset,
        snakemake.wildcards.fusion,
        snakemake.config["fusion"][snakemake.wildcards.fusion],  # params.fcfg holds its tracked part
        snakemake.params.pcfg,
        snakemake.input.split,
        embeddings=dict(zip(models, snakemake.input.embeddings)),
        probe_dirs=snakemake.params.probe_dirs,
        out_dir=snakemake.params.out_dir,
        threads=snakemake.threads,
        device=snakemake.params.device,
    )
