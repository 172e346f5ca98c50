"""Every figure and table of the study, built from a small synthetic results set, content checked.

Figures are written as SVG (text kept as text), so that panel titles, tick labels and legend
entries can be read back from the file; the functions also return what they drew.
"""

import re
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from bioprobe.figures import make
from bioprobe.figures.comparison import comparison_frame, comparison_latex, comparison_markdown
from bioprobe.figures.confusion import plot_confusion, row_normalise
from bioprobe.figures.data import layer_curves, per_class_recall, read_confusion
from bioprobe.figures.perclass import recall_summary
from bioprobe.figures.published import match_published, read_published
from bioprobe.figures.roles import figure_roles
from bioprobe.figures.style import BASELINE_GREY, OKABE_ITO, model_styles
from bioprobe.figures.make import write_tables

REPO = Path(__file__).resolve().parents[1]
STUDY = yaml.safe_load((REPO / "config.yaml").read_text())
MODELS = {m: c for m, c in STUDY["models"].items() if c.get("enabled", True)}  # the models the study runs
FUSIONS = STUDY["fusion"]
DATASETS = {"imv": 11, "watkins": 32}  # dataset: classes


def svg_texts(path) -> list[str]:
    return [re.sub(r"<[^>]+>", "", t).strip() for t in re.findall(r"<text[^>]*>(.*?)</text>", Path(path).read_text(), re.S)]


def layer_uar(dataset, model, layer):
    """A deterministic, model- and layer-dependent UAR (AVES peaks late, HuBERT early)."""
    base = {"imv": 0.55, "watkins": 0.85}[dataset]
    peak = {"aves_bio": 8, "hubert": 1}.get(model, 5)
    bonus = 0.02 * (sorted(MODELS).index(model) % 5)
    return base + bonus - 0.01 * abs(layer - peak)


def write_results(root: Path, seeds=(42,)) -> dict:
    """scores.csv + summary.csv for every (dataset, model) and fusion, as the probe stage writes them."""
    paths = {"probe": [], "fusion": []}
    rng = np.random.default_rng(0)
    for dataset in DATASETS:
        for model, cfg in MODELS.items():
            layers = [0] if cfg["source"] in ("logmel", "mfcc") else list(range(13))
            rows, summary = [], []
            for layer in layers:
                for split in ("val", "test"):
                    # validation peaks one layer later than test: the chosen layer is not the test-best one
                    shifted = layer - 1 if split == "val" else layer
                    uars = [layer_uar(dataset, model, shifted) + 0.001 * rng.normal() for _ in seeds]
                    for seed, u in zip(seeds, uars):
                        rows.append((dataset, model, layer, "mlp", seed, split, u, u - 0.03, u + 0.03))
                    summary.append((dataset, model, layer, "mlp", split, np.mean(uars), np.mean(uars) - 0.02, np.mean(uars) + 0.02))
            paths["probe"].append(_write(root / dataset / "probes" / model / "mlp", rows, summary))
        for fusion in FUSIONS:
            u = layer_uar(dataset, "hubert", 1) + 0.01
            rows = [(dataset, fusion, -1, "mlp", s, split, u, u - 0.03, u + 0.03) for s in seeds for split in ("val", "test")]
            summary = [(dataset, fusion, -1, "mlp", split, u, u - 0.02, u + 0.02) for split in ("val", "test")]
            paths["fusion"].append(_write(root / dataset / "fusion" / fusion, rows, summary))
    return paths


def _write(folder: Path, rows, summary) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    cols = ["dataset", "model", "layer", "probe", "seed", "split", "uar", "ci_low", "ci_high"]
    pd.DataFrame(rows, columns=cols).to_csv(folder / "scores.csv", index=False)
    scols = ["dataset", "model", "layer", "probe", "split", "uar_mean", "ci_low", "ci_high"]
    pd.DataFrame(summary, columns=scols).to_csv(folder / "summary.csv", index=False)
    return str(folder / "scores.csv")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    return root, write_results(root)


# --- style ------------------------------------------------------------------------------------


def test_one_style_per_model_colour_by_group():
    styles = model_styles(MODELS, FUSIONS)
    assert set(styles) == set(MODELS) | set(FUSIONS)
    groups = {s.group for s in styles.values()}
    assert groups == {"PT", "PT+FT", "baseline", "fusion"}
    # within a group: distinct marker and line style; baselines grey and dotted
    pt = [styles[m] for m in ("aves_bio", "hubert", "wavlm", "w2v2")]
    assert len({(s.marker, s.linestyle) for s in pt}) == 4 and len({s.marker for s in pt}) == 4
    assert styles["logmel"].color == BASELINE_GREY and styles["logmel"].linestyle == ":"
    assert styles["aves_bio"].color == OKABE_ITO[0] and styles["wavlm_100h"].color == OKABE_ITO[1]
    assert styles["w2v2_100h"].color != styles["wavlm_100h"].color  # a darker shade of the group's colour
    assert styles["w2v2_100h"].label == "W2V2-100h" and styles["concat_best"].label == "Fusion (concat_best)"


# --- roles ------------------------------------------------------------------------------------


def test_roles_of_the_study_and_defaults():
    roles = figure_roles(STUDY)
    assert roles["compare"] == ["aves_bio", "hubert"]
    assert roles["fine_tuned"] == {"w2v2": ["w2v2_100h", "w2v2_960h"], "wavlm": ["wavlm_100h"]}
    assert roles["probe"] == "mlp" and "logmel" in roles["floor"]
    bare = {**STUDY, "figures": {}}
    defaults = figure_roles(bare)
    assert defaults["compare"] == ["aves_bio", "hubert", "wavlm", "w2v2"]  # neither baseline nor fine-tuned
    assert set(defaults["fine_tuned"]) == {"wavlm", "w2v2"}
    assert defaults["floor"] == [m for m, c in MODELS.items() if c.get("group") == "baseline"]


def test_roles_name_a_bad_key():
    with pytest.raises(ValueError, match=r"figures.compare: 'nope' not under models"):
        figure_roles({**STUDY, "figures": {"compare": ["nope"]}})
    with pytest.raises(ValueError, match=r"figures.fine_tuned: no model has `base: hubert`"):
        figure_roles({**STUDY, "figures": {"fine_tuned": ["hubert"]}})
    with pytest.raises(ValueError, match=r"figures.probe: 'knn'"):
        figure_roles({**STUDY, "figures": {"probe": "knn"}})


# --- layer-wise figures -----------------------------------------------------------------------


def test_layer_curves_bands_from_seeds_else_bootstrap():
    rows = [("d", "m", 0, "mlp", s, "test", u, u - 0.1, u + 0.1) for s, u in ((1, 0.5), (2, 0.7))]
    rows += [("d", "one", 0, "mlp", 1, "test", 0.6, 0.55, 0.66)]
    scores = pd.DataFrame(rows, columns=["dataset", "model", "layer", "probe", "seed", "split", "uar", "ci_low", "ci_high"])
    curves = layer_curves(scores).set_index("model")
    assert curves.loc["m", "band"] == "seeds" and curves.loc["m", "uar"] == pytest.approx(0.6)
    assert curves.loc["m", "low"] == pytest.approx(0.6 - np.std([0.5, 0.7], ddof=1))
    assert curves.loc["one", "band"] == "bootstrap" and (curves.loc["one", "low"], curves.loc["one", "high"]) == (0.55, 0.66)


def test_study_figure_1_panels_and_lines(results, tmp_path):
    _, paths = results
    out = [tmp_path / "fig1.svg", tmp_path / "fig1.png", tmp_path / "fig1.pdf"]
    drawn = make.make_compare(paths["probe"], list(DATASETS), figure_roles(STUDY), MODELS, FUSIONS, out,
                              dataset_labels={"imv": "InfantMarmosetsVox"})
    floor = STUDY["figures"]["floor"]
    assert drawn == {d: ["aves_bio", "hubert", *floor] for d in DATASETS}
    texts = svg_texts(out[0])
    assert {"InfantMarmosetsVox", "watkins", "AVES-bio", "HuBERT", "log-mel", "CNN", "12"} <= set(texts)
    assert "WavLM" not in texts and "W2V2-100h" not in texts
    assert out[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out[2].read_bytes()[:4] == b"%PDF"


def test_study_figure_2_one_panel_per_base_and_dataset(results, tmp_path):
    _, paths = results
    out = [tmp_path / "fig2.svg"]
    drawn = make.make_fine_tuning(paths["probe"], list(DATASETS), figure_roles(STUDY), MODELS, FUSIONS, out)
    assert set(drawn) == {(b, d) for b in ("w2v2", "wavlm") for d in DATASETS}
    floor = STUDY["figures"]["floor"]
    assert drawn[("w2v2", "imv")] == ["w2v2", "w2v2_100h", "w2v2_960h", *floor]
    assert drawn[("wavlm", "watkins")] == ["wavlm", "wavlm_100h", *floor]
    texts = svg_texts(out[0])
    assert {"W2V2 · imv", "WavLM · watkins", "W2V2-960h", "WavLM-100h"} <= set(texts)
    assert "AVES-bio" not in texts


def test_layerwise_overview_draws_every_model(results, tmp_path):
    _, paths = results
    out = [tmp_path / "all.svg"]
    make.make_layerwise(paths["probe"], "imv", MODELS, FUSIONS, STUDY["figures"]["floor"], out)
    texts = set(svg_texts(out[0]))
    assert {MODELS[m]["label"] for m in MODELS} <= texts and "imv, probe mlp" in texts


# --- the comparison table -----------------------------------------------------------------------


def test_comparison_table_bold_underline_published(results, tmp_path):
    _, paths = results
    outs = {k: tmp_path / f"cmp.{k}" for k in ("csv", "md", "tex")}
    best = write_tables(paths["probe"], paths["fusion"], MODELS, FUSIONS, {d: d for d in DATASETS},
                        tmp_path / "b.csv", tmp_path / "b.md", tmp_path / "a.csv", comparison=outs)
    table = pd.read_csv(outs["csv"])
    for dataset in DATASETS:
        col = table[table["dataset"] == dataset].sort_values("test_uar", ascending=False)
        assert list(col["rank"][:2]) == [1, 2]
        first, second = col.iloc[0], col.iloc[1]
        md_rows = {line.split(" | ")[1]: line for line in outs["md"].read_text().splitlines() if line.startswith("| ")}
        assert f"**{first.test_uar:.1f}**" in md_rows[first.label]
        assert f"<u>{second.test_uar:.1f}</u>" in md_rows[second.label]
        tex = outs["tex"].read_text()
        assert f"\\textbf{{{first.test_uar:.1f}}}" in tex and f"\\underline{{{second.test_uar:.1f}}}" in tex
    hubert = table[(table["model"] == "hubert") & (table["dataset"] == "imv")].iloc[0]
    assert hubert.published_uar == pytest.approx(64.35)
    assert hubert.difference == pytest.approx(hubert.test_uar - 64.35)
    assert hubert.layer == best.set_index(["model", "dataset"]).loc[("hubert", "imv"), "best_layer"] == 2  # val-chosen
    assert np.isnan(table[table["model"] == "logmel"]["published_uar"]).all()
    assert (table[table["model"] == "concat_best"]["published_uar"] == [62.48, 94.78]).all()  # the study's Fusion row
    md = outs["md"].read_text()
    assert "| Group | Model | imv | published | Δ | watkins | published | Δ |" in md
    assert "W2V2 arch. (random)" in md and "\\_" in outs["tex"].read_text()  # concat\_best escaped


def test_latex_table_structure():
    best = pd.DataFrame({
        "dataset": ["d1", "d1", "d1"], "model": ["a_b", "c", "e"], "label": ["A&B", "C", "E"], "group": ["PT", "PT", "x"],
        "probe": "mlp", "best_layer": [0, 3, 5], "test_uar": [0.5, 0.7, 0.6], "test_ci_low": [0.4, 0.6, 0.5],
        "test_ci_high": [0.6, 0.8, 0.7], "published_uar": [np.nan, 71.0, np.nan],
    })
    table = comparison_frame(best)
    assert list(table["rank"]) == [3, 1, 2]
    tex = comparison_latex(table, ["d1"], dataset_labels={"d1": "Data_1"})
    assert "\\multicolumn{3}{c}{Data\\_1}" in tex
    assert tex.count("\\toprule") == tex.count("\\bottomrule") == 1 and "\\cmidrule(lr){3-5}" in tex
    assert "A\\&B & 50.0\\,{\\scriptsize[40.0, 60.0]} (CNN) &  &  \\\\" in tex
    assert "C & \\textbf{70.0}\\,{\\scriptsize[60.0, 80.0]} (3) & 71.00 & $-1.0$ \\\\" in tex
    assert "\\underline{60.0}" in tex
    assert "**70.0**" in comparison_markdown(table, ["d1"])


# --- published numbers --------------------------------------------------------------------------


def test_published_matched_by_key_or_published_as_never_by_label(tmp_path):
    path = tmp_path / "pub.csv"
    path.write_text("# a comment\ndataset,model,uar\nimv,hubert,64.35\nimv,fusion,62.48\nmine,special,50\n")
    published = read_published(path)
    models = {"hubert": {"label": "W2V2"}, "renamed": {"label": "HuBERT"}, "other": {"published_as": "hubert"},
              "x": {"published_as": "special"}}
    rows = pd.DataFrame({"dataset": ["imv", "imv", "imv", "imv", "mine", "imv"],
                         "model": ["hubert", "renamed", "other", "late", "x", "x"]})
    got = match_published(rows, published, models, {"late": {}}, {"imv": "imv", "mine": "folder"})
    assert got.iloc[0] == 64.35 and np.isnan(got.iloc[1]) and got.iloc[2] == 64.35
    assert got.iloc[3] == 62.48 and got.iloc[4] == 50 and np.isnan(got.iloc[5])
    # a dataset is matched by its type too
    assert match_published(pd.DataFrame({"dataset": ["imv_grouped"], "model": ["hubert"]}), published, models, {},
                           {"imv_grouped": "imv"}).iloc[0] == 64.35


def test_published_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("dataset_type,model_label,uar\nimv,HuBERT,64\n")
    with pytest.raises(ValueError, match="bad.csv: published-numbers file lacks columns"):
        read_published(bad)
    bad.write_text("dataset,model,uar\nimv,hubert,0.64\nimv,hubert,0.65\n")
    with pytest.raises(ValueError, match="more than one number"):
        read_published(bad)
    bad.write_text("dataset,model,uar\nimv,hubert,164\n")
    with pytest.raises(ValueError, match="in %"):
        read_published(bad)
    bad.write_text("dataset,model,uar\nimv,hubert,64.1\nwatkins,hubert,n/a\n")
    with pytest.raises(ValueError, match=r"in % \(0-100\); row\(s\) \[1\] are not"):
        read_published(bad)
    # fractions pass the range check but would read as differences of about +50 points
    bad.write_text("dataset,model,uar\nimv,hubert,0.642\nwatkins,hubert,0.91\n")
    with pytest.raises(ValueError, match=r"bad.csv: every UAR is at most 1: these look like fractions"):
        read_published(bad)
    bad.write_text("dataset,model,uar\nimv,hubert,0.642\nwatkins,hubert,91\n")  # one low number is a number
    assert read_published(bad)["uar"].tolist() == [0.642, 91.0]
    assert len(read_published(REPO / "resources" / "published" / "sarkar2025_best_layer.csv")) == 24


def test_published_against_reproduced(results, tmp_path):
    _, paths = results
    write_tables(paths["probe"], paths["fusion"], MODELS, FUSIONS, {d: d for d in DATASETS},
                 tmp_path / "b.csv", tmp_path / "b.md", tmp_path / "a.csv")
    out = [tmp_path / "pub.svg"]
    drawn = make.make_published(tmp_path / "b.csv", list(DATASETS), MODELS, FUSIONS, out)
    study = ["aves_bio", "hubert", "wavlm", "w2v2", "wavlm_100h", "w2v2_100h", "w2v2_960h"]
    assert drawn == {d: [*study, "concat_best", "late_average"] for d in DATASETS}  # no baselines: nothing published
    texts = set(svg_texts(out[0]))
    assert {"published UAR [%]", "y = x", "best layer on test", "AVES-bio"} <= texts and "log-mel" not in texts


# --- confusion matrices and per-class recall --------------------------------------------------


def write_confusion(path, n_classes, n_seeds=1):
    rng = np.random.default_rng(n_classes)
    names = [f"species_{k:02d}" for k in range(n_classes)]
    counts = rng.integers(0, 4, size=(n_classes, n_classes)) + np.diag(rng.integers(5, 20, n_classes))
    rows = [("watkins", "concat_best", "mlp", -1, names[i], names[j], counts[i, j], n_seeds)
            for i in range(n_classes) for j in range(n_classes)]
    cols = ["dataset", "model", "probe", "layer", "true_label", "predicted_label", "count", "n_seeds"]
    pd.DataFrame(rows, columns=cols).to_csv(path, index=False)
    return names, counts


@pytest.mark.parametrize("n_classes,annotated,width", [(11, True, 3.4), (32, False, 7.0)])
def test_confusion_figure_counts_only_up_to_12_classes(tmp_path, n_classes, annotated, width):
    names, counts = write_confusion(tmp_path / "confusion.csv", n_classes)
    classes, matrix, info = read_confusion(tmp_path / "confusion.csv")
    assert classes == names and (matrix == counts).all()
    out = [tmp_path / "c.svg"]
    drawn = make.make_confusion(tmp_path / "confusion.csv", "watkins", "concat_best", MODELS, FUSIONS, out)
    assert drawn == {"annotated": annotated, "width_in": width}
    texts = svg_texts(out[0])
    assert texts.count("species_00") == 2  # both axes
    cell_counts = [t for t in texts if t.isdigit() and t not in {"0"}]
    assert (str(counts[0, 0]) in cell_counts) is annotated


def test_row_normalise_is_recall():
    recall = row_normalise(np.array([[3, 1], [0, 0]]))
    assert recall.tolist() == [[0.75, 0.25], [0.0, 0.0]]
    with pytest.raises(ValueError, match="expected \\(2, 2\\)"):
        plot_confusion(["a", "b"], np.ones((3, 3)), "x", [])


def write_predictions(path, classes, y_true, y_pred, layers, best_layer):
    with h5py.File(path, "w") as h5:
        h5.create_dataset("classes", data=np.array(classes, dtype=object), dtype=h5py.string_dtype())
        h5.create_dataset("layers", data=np.array(layers))
        h5.create_dataset("test/y_true", data=np.array(y_true, dtype=np.int16))
        h5.create_dataset("test/y_pred", data=np.array(y_pred, dtype=np.int16))
        h5.attrs["best_layer"] = best_layer


def test_per_class_recall_sorted_by_support(tmp_path):
    path = tmp_path / "predictions.h5"
    y_true = [0, 1, 1, 1, 2, 2]
    # seeds x layers x clips: layer 0 gets class 1 right, layer 1 gets everything right in seed 0 only
    y_pred = [[[0, 1, 1, 1, 0, 0], [0, 1, 1, 1, 2, 2]], [[0, 1, 1, 1, 0, 0], [1, 0, 0, 0, 2, 2]]]
    write_predictions(path, ["a", "b", "c"], y_true, y_pred, [0, 1], best_layer=1)
    recall, support, best = per_class_recall(path)
    assert list(recall.index) == ["b", "c", "a"] and list(support) == [3, 2, 1] and best == 1
    assert recall.loc["b"].tolist() == [1.0, 0.5] and recall.loc["c"].tolist() == [0.0, 1.0] and recall.loc["a", 1] == 0.5
    assert recall_summary(recall)[0] == pytest.approx((1 + 0 + 1) / 3)  # the UAR of layer 0
    out = [tmp_path / "pc.svg"]
    drawn = make.make_per_class(path, "imv", "hubert", "mlp", MODELS, FUSIONS, out)
    assert drawn["classes"] == ["b", "c", "a"] and drawn["layers"] == [0, 1]
    texts = svg_texts(out[0])
    assert {"b (3)", "c (2)", "a (1)", "CNN", "1"} <= set(texts)
    assert any("HuBERT on imv" in t for t in texts)


# --- mutation pass 2: what the tables and figures show ------------------------------------------


def test_comparison_ranks_within_each_probe_and_ties_share_a_rank():
    uars = {"mlp": [0.7, 0.7, 0.6], "knn": [0.9, 0.5, 0.8]}
    best = pd.DataFrame([
        {"dataset": "d1", "model": m, "label": m.upper(), "group": "PT", "probe": probe, "best_layer": 1,
         "test_uar": u, "test_ci_low": np.nan, "test_ci_high": np.nan, "published_uar": np.nan}
        for probe, values in uars.items() for m, u in zip(("a", "b", "c"), values)])
    table = comparison_frame(best)
    # competition ranking within each probe: the two tied best share rank 1, the next is third
    assert table.loc[table["probe"] == "mlp", "rank"].tolist() == [1, 1, 3]
    assert table.loc[table["probe"] == "knn", "rank"].tolist() == [1, 3, 2]
    md = comparison_markdown(table, ["d1"])
    mlp = md.split("## Probe `mlp`")[1]
    assert mlp.count("**70.0**") == 2 and "<u>" not in mlp  # no second place after a tie for first
    knn = md.split("## Probe `knn`")[1].split("## Probe")[0]
    assert "**90.0**" in knn and "<u>80.0</u>" in knn and "| 50.0 (1) |" in knn


def test_comparison_markdown_difference_is_signed():
    best = pd.DataFrame({"dataset": "d1", "model": ["a", "b"], "label": ["A", "B"], "group": "PT", "probe": "mlp",
                         "best_layer": [2, 3], "test_uar": [0.75, 0.70], "test_ci_low": np.nan, "test_ci_high": np.nan,
                         "published_uar": [71.0, 71.0]})
    rows = {line.split(" | ")[1]: line for line in comparison_markdown(comparison_frame(best), ["d1"]).splitlines()
            if line.startswith("| PT")}
    assert rows["A"].endswith("| **75.0** (2) | 71.00 | +4.0 |")
    assert rows["B"].endswith("| <u>70.0</u> (3) | 71.00 | −1.0 |")


def test_layer_curve_band_stays_within_0_and_1_and_val_uar_is_the_validation_mean():
    rows = [("d", "m", 0, "mlp", s, "test", u) for s, u in ((1, 0.95), (2, 1.0))]
    rows += [("d", "m", 0, "mlp", s, "val", u) for s, u in ((1, 0.4), (2, 0.6))]
    curves = layer_curves(pd.DataFrame(rows, columns=["dataset", "model", "layer", "probe", "seed", "split", "uar"]))
    row = curves.iloc[0]
    sd = np.std([0.95, 1.0], ddof=1)
    assert row.uar == pytest.approx(0.975) and row.low == pytest.approx(0.975 - sd)
    assert row.high == 1.0  # 0.975 + 0.035 clipped: no UAR above 100 %
    assert row.val_uar == pytest.approx(0.5)


def test_flat_line_is_the_test_uar_of_the_validation_best_feature_set():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bioprobe.figures.layerwise import draw_layer_panel

    # feature sets 0, 1, 2: validation ties 1 and 2 (the lower one wins); test best is 0
    val, test = [0.5, 0.7, 0.7], [0.9, 0.6, 0.8]
    rows = [("d", "logmel", k, "mlp", 1, split, u) for split, us in (("val", val), ("test", test)) for k, u in enumerate(us)]
    curves = layer_curves(pd.DataFrame(rows, columns=["dataset", "model", "layer", "probe", "seed", "split", "uar"]))
    fig, ax = plt.subplots()
    drawn = draw_layer_panel(ax, curves, ["logmel"], model_styles(MODELS, FUSIONS), flat=["logmel"])
    assert drawn == ["logmel"]
    assert [list(line.get_ydata()) for line in ax.lines] == [[60.0, 60.0]]
    plt.close(fig)


def test_default_figure_probe_is_the_first_probe():
    config = {**STUDY, "probes": {"knn": {"type": "knn"}, "mlp": {"type": "mlp"}}, "figures": {}}
    assert figure_roles(config)["probe"] == "knn"


def test_published_prefers_the_fusion_key_and_the_dataset_name(tmp_path):
    path = tmp_path / "pub.csv"
    path.write_text("dataset,model,uar\nimv,fusion,62.48\nimv,concat_best,70\nimv,hubert,64.35\nimv_twins,hubert,50\n")
    rows = pd.DataFrame({"dataset": ["imv", "imv", "imv_twins", "imv_twins"],
                         "model": ["concat_best", "late_average", "hubert", "concat_best"]})
    got = match_published(rows, read_published(path), {"hubert": {}}, {"concat_best": {}, "late_average": {}},
                          {"imv": "imv", "imv_twins": "imv"})
    # a fusion's own row before the study's "fusion" row; the dataset's own row before its type's
    assert got.tolist() == [70.0, 62.48, 50.0, 70.0]


def test_comparison_row_missing_a_dataset_keeps_its_columns():
    best = pd.DataFrame({"dataset": ["d1", "d2", "d2"], "model": ["a", "a", "b"], "label": ["A", "A", "B"], "group": "PT",
                         "probe": "mlp", "best_layer": 1, "test_uar": [0.6, 0.7, 0.8], "test_ci_low": np.nan,
                         "test_ci_high": np.nan, "published_uar": [65.0, np.nan, np.nan]})
    md = comparison_markdown(comparison_frame(best), ["d1", "d2"])
    lines = [line for line in md.splitlines() if line.startswith("| ")]
    assert lines[0] == "| Group | Model | d1 | published | Δ | d2 |"
    assert lines[2] == "| PT | B |  |  |  | **80.0** (1) |"  # no d1 result: three empty cells, d2 under d2
    tex = comparison_latex(comparison_frame(best), ["d1", "d2"])
    assert "PT & B &  &  &  & \\textbf{80.0} (1) \\\\" in tex
