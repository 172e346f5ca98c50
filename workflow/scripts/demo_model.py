import _bioprobe_path  # noqa: F401  (first: makes bioprobe importable)
from pathlib import Path

from bioprobe.smk import logged
from bioprobe.tiny import save_tiny_aves_model, save_tiny_hf_model

with logged(snakemake):
    out_dir = Path(snakemake.output.config).parent
    if snakemake.wildcards.kind == "aves":
        save_tiny_aves_model(out_dir, seed=snakemake.params.seed)
    else:
        save_tiny_hf_model(snakemake.wildcards.kind, out_dir, seed=snakemake.params.seed)
