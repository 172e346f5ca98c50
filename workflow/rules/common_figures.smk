# Names and input functions of the figure rules (figures.smk). Only cheap imports here.

from bioprobe.figures.roles import figure_roles

FIG = config["figures"]
ROLES = figure_roles(config)
FIG_PROBE = ROLES["probe"]
# What figures need to know of a model: how to draw it (label, group), whether it has layers.
FIG_MODELS = figure_models()  # name, group, pairing and published_as of each model (common.smk)
FIG_FUSIONS = {f: {"method": c.get("method")} for f, c in (config.get("fusion") or {}).items()}
REPORT_FORMAT = next(f for f in ("png", "svg", "pdf") if f in FIG_FORMATS)


def published_numbers():
    # Relative: the working directory first, then the repository (where the study's file lives).
    path = FIG["published"]
    if os.path.isabs(path) or os.path.exists(path):
        return path
    in_repo = os.path.join(workflow.basedir, path)
    return in_repo if os.path.exists(in_repo) else path


def figure_files(stem, caption, category, subcategory=None):
    paths = [f"{RESULTS}/figures/{stem}.{fmt}" for fmt in FIG_FORMATS]
    shown = {"caption": caption, "category": category, "subcategory": subcategory}
    return [report(p, **shown) if p.endswith(f".{REPORT_FORMAT}") else p for p in paths]


def scores_of(models, datasets=None, probe=None):
    probe = probe or FIG_PROBE
    return [f"{probe_dir(d, m, probe)}/scores.csv" for d in (datasets or DATASETS) for m in models]


def figure_outputs():
    """Every figure and table of a run (rule all)."""
    outs = []
    stems = [f"layerwise_{d}" for d in DATASETS]
    if DATASETS and ROLES["compare"]:
        stems.append("study_fig1_layerwise")
    if DATASETS and ROLES["fine_tuned"]:
        stems.append("study_fig2_fine_tuning")
    if DATASETS:
        stems.append("published_vs_reproduced")
    stems += [f"study_fig4_confusion_{d}_{f}" for d in DATASETS for f in FUSIONS]
    stems += [f"per_class/{d}/{m}" for d in DATASETS for m in MODELS]
    for stem in stems:
        outs += [f"{RESULTS}/figures/{stem}.{fmt}" for fmt in FIG_FORMATS]
    if DATASETS:
        outs += [f"{RESULTS}/tables/{name}" for name in ("best_layer.csv", "best_layer.md", "all_scores.csv")]
        outs += [f"{RESULTS}/tables/study_fig3_comparison.{ext}" for ext in ("csv", "md", "tex")]
    return outs
