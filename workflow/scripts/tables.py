import _bioprobe_path  # noqa: F401  (first: makes bioprobe importable)
from bioprobe.smk import logged
from bioprobe.figures.make import write_tables

with logged(snakemake):
    write_tables(
        probe_scores=snakemake.input.scores,
        fusion_scores=snakemake.input.fusion,
        models=snakemake.params.models,
        fusion=snakemake.params.fusion,
        datasets=snakemake.params.datasets,
        best_csv=snakemake.output.best_csv,
        best_md=snakemake.output.best_md,
        all_scores_csv=snakemake.output.all_scores,
        published_csv=snakemake.input.published,
        dataset_labels=snakemake.params.dataset_labels,
        comparison={
            "csv": snakemake.output.comparison_csv,
            "md": snakemake.output.comparison_md,
            "tex": snakemake.output.comparison_tex,
        },
    )
