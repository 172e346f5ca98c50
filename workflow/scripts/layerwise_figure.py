import _bioprobe_path  # noqa: F401  (first: makes bioprobe importable)
from bioprobe.plots import plot_layerwise
from bioprobe.smk import logged
from bioprobe.tables import read_scores

with logged(snakemake):
    plot_layerwise(read_scores(snakemake.input.scores), snakemake.params.dataset, snakemake.params.models, snakemake.output[0])
