import _bioprobe_path  # noqa: F401  (first: makes bioprobe importable)
from bioprobe.label_efficiency_plot import plot_label_efficiency
from bioprobe.probes.label_efficiency import read_label_efficiency
from bioprobe.smk import logged

with logged(snakemake):
    table = read_label_efficiency(snakemake.input.tables)
    plot_label_efficiency(table, snakemake.params.dataset, snakemake.params.models, snakemake.output[0])
