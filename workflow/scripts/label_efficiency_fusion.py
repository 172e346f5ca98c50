import _bioprobe_path  # noqa: F401  (first: makes bioprobe importable)
from bioprobe.fusion import run_fusion_label_efficiency
from bioprobe.smk import logged

with logged(snakemake):
    run_fusion_label_efficiency(
        snakemake.wildcards.dataset,
        snakemake.wildcards.fusion,
        snakemake.params.fcfg,
        snakemake.input.split,
        embeddings=dict(zip(snakemake.params.models, snakemake.input.embeddings)),
        probe_dirs=snakemake.params.probe_dirs,
        out_csv=snakemake.output.csv,
        probe_name=snakemake.wildcards.probe,
        probe_cfg=snakemake.params.pcfg,
        le_cfg=snakemake.params.le,
        threads=snakemake.threads,
        device=snakemake.params.device,
    )
