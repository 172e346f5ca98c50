import _bioprobe_path  # noqa: F401  (first: makes bioprobe importable)
from bioprobe.audio import resample_manifest
from bioprobe.smk import logged

with logged(snakemake):
    resample_manifest(
        snakemake.input.manifest,
        snakemake.params.root,
        snakemake.output.audio,
        sample_rate=snakemake.params.audio["sample_rate"],
        resampler=snakemake.params.audio["resampler"],
    )
