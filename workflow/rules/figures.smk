# The study's figures and tables, regenerated from the result files (see bioprobe.figures).
# Local rules: quick; on a cluster they run where Snakemake runs instead of waiting in the queue.
# Every figure job writes all of figures.formats; the report shows one of them (PNG if asked).
# Figure rules read only result files and the descriptive keys of models: changing a figure
# setting, a label or a group re-draws figures and re-writes tables, and re-runs nothing else.

include: "common_figures.smk"


rule layerwise_figure:
    input:
        scores=lambda wc: probe_scores_of(wc.dataset),
    output:
        figure_files("layerwise_{dataset}", "../report/layerwise.rst", "Layer-wise UAR, every model", "{dataset}"),
    params:
        models=FIG_MODELS,
        fusions=FIG_FUSIONS,
        floor=ROLES["floor"],
        dpi=FIG["dpi"],
        dataset_labels=FIG["dataset_labels"],
    log:
        f"{LOGS}/figures/layerwise_{{dataset}}.log",
    benchmark:
        f"{BENCH}/figures/layerwise_{{dataset}}.tsv"
    localrule: True
    conda:
        "../../envs/bioprobe.yaml"
    script:
        "../scripts/figure.py"


rule study_fig1:
    input:
        scores=scores_of(ROLES["compare"] + ROLES["floor"]),
    output:
        figure_files("study_fig1_layerwise", "../report/study_fig1.rst", "Study figure 1: layer-wise UAR"),
    params:
        datasets=DATASETS,
        roles=ROLES,
        models=FIG_MODELS,
        fusions=FIG_FUSIONS,
        dpi=FIG["dpi"],
        dataset_labels=FIG["dataset_labels"],
    log:
        f"{LOGS}/figures/study_fig1.log",
    benchmark:
        f"{BENCH}/figures/study_fig1.tsv"
    localrule: True
    conda:
        "../../envs/bioprobe.yaml"
    script:
        "../scripts/figure.py"


rule study_fig2:
    input:
        scores=scores_of(list(dict.fromkeys([m for b, t in ROLES["fine_tuned"].items() for m in (b, *t)] + ROLES["floor"]))),
    output:
        figure_files("study_fig2_fine_tuning", "../report/study_fig2.rst", "Study figure 2: fine-tuning"),
    params:
        datasets=DATASETS,
        roles=ROLES,
        models=FIG_MODELS,
        fusions=FIG_FUSIONS,
        dpi=FIG["dpi"],
        dataset_labels=FIG["dataset_labels"],
    log:
        f"{LOGS}/figures/study_fig2.log",
    benchmark:
        f"{BENCH}/figures/study_fig2.tsv"
    localrule: True
    conda:
        "../../envs/bioprobe.yaml"
    script:
        "../scripts/figure.py"


rule study_fig4_confusion:
    input:
        confusion=lambda wc: f"{fusion_dir(wc.dataset, wc.fusion)}/confusion.csv",
    output:
        figure_files(
            "study_fig4_confusion_{dataset}_{fusion}", "../report/study_fig4.rst", "Study figure 4: confusion matrices", "{dataset}"
        ),
    params:
        models=FIG_MODELS,
        fusions=FIG_FUSIONS,
        dpi=FIG["dpi"],
        dataset_labels=FIG["dataset_labels"],
    log:
        f"{LOGS}/figures/confusion_{{dataset}}_{{fusion}}.log",
    benchmark:
        f"{BENCH}/figures/confusion_{{dataset}}_{{fusion}}.tsv"
    localrule: True
    conda:
        "../../envs/bioprobe.yaml"
    script:
        "../scripts/figure.py"


rule published_figure:
    input:
        best=f"{RESULTS}/tables/best_layer.csv",
    output:
        figure_files("published_vs_reproduced", "../report/published.rst", "Published against reproduced"),
    params:
        datasets=DATASETS,
        models=FIG_MODELS,
        fusions=FIG_FUSIONS,
        dpi=FIG["dpi"],
        dataset_labels=FIG["dataset_labels"],
    log:
        f"{LOGS}/figures/published_vs_reproduced.log",
    benchmark:
        f"{BENCH}/figures/published_vs_reproduced.tsv"
    localrule: True
    conda:
        "../../envs/bioprobe.yaml"
    script:
        "../scripts/figure.py"


rule per_class_figure:
    input:
        predictions=lambda wc: [f"{probe_dir(wc.dataset, m, FIG_PROBE)}/predictions.h5" for m in MODELS],
    output:
        [
            f
            for m in MODELS
            for f in figure_files(
                f"per_class/{{dataset}}/{m}", "../report/per_class.rst", "Per-class recall against layer", "{dataset}"
            )
        ],
    params:
        probe=FIG_PROBE,
        shown=MODELS,
        models=FIG_MODELS,
        fusions=FIG_FUSIONS,
        dpi=FIG["dpi"],
        dataset_labels=FIG["dataset_labels"],
    log:
        f"{LOGS}/figures/per_class_{{dataset}}.log",
    benchmark:
        f"{BENCH}/figures/per_class_{{dataset}}.tsv"
    localrule: True
    conda:
        "../../envs/bioprobe.yaml"
    script:
        "../scripts/figure.py"


rule tables:
    input:
        scores=[s for d in DATASETS for s in probe_scores_of(d)],
        fusion=[s for d in DATASETS for s in fusion_scores_of(d)],
        # the CI of the seed-mean UAR, beside each scores.csv
        summaries=[s.replace("scores.csv", "summary.csv") for d in DATASETS for s in probe_scores_of(d) + fusion_scores_of(d)],
        published=published_numbers(),
    output:
        best_csv=report(f"{RESULTS}/tables/best_layer.csv", caption="../report/best_layer.rst", category="Tables"),
        best_md=f"{RESULTS}/tables/best_layer.md",
        all_scores=f"{RESULTS}/tables/all_scores.csv",
        comparison_csv=report(
            f"{RESULTS}/tables/study_fig3_comparison.csv", caption="../report/study_fig3.rst", category="Tables"
        ),
        comparison_md=report(
            f"{RESULTS}/tables/study_fig3_comparison.md", caption="../report/study_fig3.rst", category="Tables"
        ),
        comparison_tex=report(
            f"{RESULTS}/tables/study_fig3_comparison.tex", caption="../report/study_fig3.rst", category="Tables"
        ),
    params:
        models=FIG_MODELS,
        fusion=FIG_FUSIONS,
        datasets={d: config["datasets"][d]["type"] for d in DATASETS},
        dataset_labels=FIG["dataset_labels"],
    log:
        f"{LOGS}/figures/tables.log",
    benchmark:
        f"{BENCH}/figures/tables.tsv"
    localrule: True
    conda:
        "../../envs/bioprobe.yaml"
    script:
        "../scripts/tables.py"
