import _bioprobe_path  # noqa: F401  (first: makes bioprobe importable)
from bioprobe.audio import resample_manifest
from bioprobe.smk import logged

with logged(snakemake):
    audio = snakemake.config["audio"]  # the full section; params.audio holds its tracked part
    resample_manifest(
        snakemake.input.clips,
        snakemake.params.root,
        snakemake.output.audio,
        sample_rate=audio["sample_rate"],
        resampler=audio["resampler"],
    )
