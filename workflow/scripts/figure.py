import _bioprobe_path  # noqa: F401  (first: makes bioprobe importable)
from bioprobe.figures import make
from bioprobe.smk import logged

with logged(snakemake):
    i, p, w, out = snakemake.input, snakemake.params, snakemake.wildcards, list(snakemake.output)
    common = {"models": p.models, "fusions": p.fusions, "out": out, "dpi": p.dpi, "dataset_labels": p.dataset_labels}
    if snakemake.rule == "layerwise_figure":
        make.make_layerwise(i.scores, w.dataset, floor=p.floor, **common)
    elif snakemake.rule == "study_fig1":
        make.make_compare(i.scores, p.datasets, p.roles, **common)
    elif snakemake.rule == "study_fig2":
        make.make_fine_tuning(i.scores, p.datasets, p.roles, **common)
    elif snakemake.rule == "study_fig4_confusion":
        make.make_confusion(i.confusion, w.dataset, w.fusion, **common)
    elif snakemake.rule == "published_figure":
        make.make_published(i.best, p.datasets, **common)
    elif snakemake.rule == "per_class_figure":
        for model, predictions in zip(p.shown, i.predictions):  # out: {dataset}/{model}.{format}
            common["out"] = [o for o in out if o.rsplit("/", 1)[-1].rsplit(".", 1)[0] == model]
            make.make_per_class(predictions, w.dataset, model, p.probe, **common)
    else:
        raise ValueError(f"workflow/scripts/figure.py: no figure for rule {snakemake.rule!r}")
