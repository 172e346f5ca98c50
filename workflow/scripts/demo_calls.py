import _bioprobe_path  # noqa: F401  (first: makes bioprobe importable)
from pathlib import Path

from bioprobe.demo import make_synthetic_calls
from bioprobe.smk import logged

with logged(snakemake):
    cfg = snakemake.params.cfg
    make_synthetic_calls(
        Path(snakemake.output.labels).parent,
        n_classes=cfg["n_classes"],
        clips_per_class=cfg["clips_per_class"],
        seed=cfg["seed"],
    )
