"""Fusion of several models' layer probes into one classifier (config.yaml ``fusion:``).

The study reports a "Fusion" row but does not say how it fused; its authors' code has no
fusion. bioprobe therefore defines its own, records the definition with every result
(``definition.json``) and labels it as bioprobe's in tables. Both methods first choose, per
model, its *best layer*: the layer with the highest mean validation UAR over seeds of the named
probe (ties -> lowest layer), read from that probe job's ``scores.csv``. Only validation data
decides anything; the test split is used once, for the reported numbers.

``concat_best`` (default)
    Concatenate the models' best-layer pooled embeddings clip by clip (``[n, sum of dims]``),
    z-score with train statistics, and train the named probe on it with that probe's settings
    (seeds, epochs, early stopping, ...). Reported as layer ``-1``.
``late_average``
    For each seed of the named probe, average the models' best-layer test (and validation)
    class posteriors with equal weights and take the argmax. Nothing is trained. Reported as
    layer ``-1``; needs the same seeds in every model's probe job.

Outputs (in the fusion's ``out_dir``): the same files as a probe job (``scores.csv`` with
``model`` = the fusion's name, ``predictions.h5``, ``confusion.csv``, ``summary.csv``) plus
``definition.json``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .probes import (
    ALL_LAYERS,
    ProbeData,
    ProbeResult,
    SPLITS,
    TorchSettings,
    best_layer,
    class_names,
    fit_probe,
    load_probe_data,
    read_manifest,
    read_predictions,
    read_scores,
    resolve_device,
    resolve_probe_config,
    write_probe_outputs,
)

LOG = logging.getLogger(__name__)

FUSION_METHODS = ("concat_best", "late_average")

STUDY_NOTE = (
    "The study (Sarkar & Magimai-Doss, ICASSP 2025) reports a 'Fusion' row but does not define "
    "its fusion; this result uses bioprobe's definition recorded here, so it is not the study's method."
)

DEFINITIONS = {
    "concat_best": (
        "Per model, the layer with the highest mean validation UAR over seeds of the named probe "
        "(ties -> lowest layer). The models' pooled embeddings of these layers are concatenated per "
        "clip, z-scored with train-split statistics and classified by the named probe trained with "
        "its own settings; val/test UAR as for any probe."
    ),
    "late_average": (
        "Per model, the layer with the highest mean validation UAR over seeds of the named probe "
        "(ties -> lowest layer). For each seed, the class posteriors of these layers' probes are "
        "averaged over models with equal weights; the predicted class is the argmax (ties -> lowest "
        "class index). No training."
    ),
}


def resolve_fusion_config(fusion_name: str, fusion_cfg: dict) -> dict:
    """Fill defaults (``probe: mlp``, ``models: null`` = all) and check the fusion entry."""
    where = f"fusion.{fusion_name}"
    if not isinstance(fusion_cfg, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(fusion_cfg).__name__}")
    unknown = set(fusion_cfg) - {"method", "probe", "models"}
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: method, probe, models")
    cfg = {"method": "concat_best", "probe": "mlp", "models": None, **fusion_cfg}
    if cfg["method"] not in FUSION_METHODS:
        raise ValueError(f"{where}.method: must be one of {', '.join(FUSION_METHODS)}, got {cfg['method']!r}")
    if not isinstance(cfg["probe"], str) or not cfg["probe"]:
        raise ValueError(f"{where}.probe: must name an entry of probes:, got {cfg['probe']!r}")
    models = cfg["models"]
    if models is not None and (not isinstance(models, list) or len(models) < 2 or not all(isinstance(m, str) for m in models)):
        raise ValueError(f"{where}.models: must be null (all models) or a list of at least two model names, got {models!r}")
    return cfg


def fusion_models(fusion_name: str, cfg: dict, available: list[str]) -> list[str]:
    """The models a fusion uses: its ``models:`` list (checked) or all available ones."""
    models = cfg["models"] or list(available)
    missing = [m for m in models if m not in available]
    if missing:
        raise ValueError(f"fusion.{fusion_name}: model(s) {missing} have no probe results for this dataset; available: {available}")
    if len(models) < 2:
        raise ValueError(f"fusion.{fusion_name}: needs at least two models, got {models}")
    return models


def choose_best_layers(models: list[str], probe_dirs: dict) -> dict:
    """Per model: ``{"layer", "val_uar_mean", "scores"}`` from its probe job's scores.csv."""
    chosen = {}
    for model in models:
        path = Path(probe_dirs[model]) / "scores.csv"
        scores = read_scores(path)
        layer = best_layer(scores)
        if layer == ALL_LAYERS:
            raise ValueError(f"{path}: the probe has no per-layer results (layer -1); fusion needs a per-layer probe (mlp, linear, knn)")
        val = scores[(scores["split"] == "val") & (scores["layer"] == layer)]
        chosen[model] = {"layer": layer, "val_uar_mean": float(val["uar"].mean()), "scores": str(path)}
    return chosen


def concat_best_data(models: list[str], chosen: dict, embeddings: dict, manifest_csv) -> ProbeData:
    """Concatenate each model's best layer into one ``[n, 1, sum(dims)]`` feature set."""
    parts = [load_probe_data(embeddings[m], manifest_csv, layers=[chosen[m]["layer"]]) for m in models]
    first = parts[0]
    return ProbeData(
        features=np.ascontiguousarray(np.concatenate([p.features for p in parts], axis=2)),
        labels=first.labels,
        split=first.split,
        clip_ids=first.clip_ids,
        classes=first.classes,
        layer_ids=[ALL_LAYERS],
        source={"embeddings": ";".join(str(embeddings[m]) for m in models), "manifest": str(manifest_csv)},
    )


def manifest_data(manifest_csv) -> ProbeData:
    """Labels and splits of a manifest without features (late fusion trains nothing)."""
    manifest = read_manifest(manifest_csv)
    classes = class_names(manifest)
    index = {c: i for i, c in enumerate(classes)}
    return ProbeData(
        features=np.zeros((len(manifest), 1, 0), dtype=np.float32),
        labels=np.array(manifest["label"].map(index), dtype=np.int64),
        split=manifest["split"].to_numpy(str),
        clip_ids=list(manifest["clip_id"]),
        classes=classes,
        layer_ids=[ALL_LAYERS],
        source={"manifest": str(manifest_csv)},
    )


def late_average_result(models: list[str], chosen: dict, probe_dirs: dict, data: ProbeData) -> ProbeResult:
    """Average the best layers' posteriors over models, per seed -> a one-"layer" result."""
    rows = {s: data.indices(s) for s in SPLITS}
    seeds = None
    summed = {}
    for model in models:
        path = Path(probe_dirs[model]) / "predictions.h5"
        pred = read_predictions(path)
        if pred["classes"] != data.classes:
            raise ValueError(f"{path}: classes {pred['classes']} differ from the manifest's {data.classes}")
        if seeds is None:
            seeds = pred["seeds"]
        elif pred["seeds"] != seeds:
            raise ValueError(f"{path}: seeds {pred['seeds']} differ from the other models' {seeds}; late_average needs equal seeds")
        column = pred["layers"].index(chosen[model]["layer"])
        for split in ("val", "test"):
            expected = [data.clip_ids[i] for i in rows[split]]
            if pred[split]["clip_id"] != expected:
                raise ValueError(f"{path}: {split} clips differ from the manifest's; re-run the probe job")
            post = pred[split]["posteriors"][:, column]  # [S, n, C]
            summed[split] = post.astype(np.float64) if split not in summed else summed[split] + post
    posteriors = {s: (summed[s] / len(models)).astype(np.float32)[:, None] for s in ("val", "test")}  # [S, 1, n, C]
    return ProbeResult(
        layers=[ALL_LAYERS],
        seeds=list(seeds),
        posteriors=posteriors,
        rows=rows,
        epoch=np.full((len(seeds), 1), np.nan),
    )


def run_fusion(
    dataset: str,
    fusion_name: str,
    fusion_cfg: dict,
    probe_cfg: dict,
    manifest_csv,
    embeddings: dict,
    probe_dirs: dict,
    out_dir,
    threads: int | None = None,
    device: str = "cpu",
    log=None,
) -> None:
    """Fuse the models of one dataset as ``fusion_cfg`` says; write the outputs into ``out_dir``.

    ``probe_cfg`` is the ``probes:`` entry named by ``fusion_cfg["probe"]``; ``embeddings`` and
    ``probe_dirs`` map model names to that dataset's embedding file and that probe's job folder
    (all models of the dataset; ``fusion_cfg["models"]`` may pick a subset). Writes
    ``definition.json``, ``predictions.h5``, ``confusion.csv``, ``summary.csv`` and, last,
    ``scores.csv`` (``model`` = ``fusion_name``, ``layer`` = -1).
    """
    from .fileio import write_json

    cfg = resolve_fusion_config(fusion_name, fusion_cfg)
    probe_name = cfg["probe"]
    pcfg = resolve_probe_config(probe_name, probe_cfg)
    models = fusion_models(fusion_name, cfg, list(probe_dirs))
    chosen = choose_best_layers(models, probe_dirs)
    ids = {"dataset": dataset, "model": fusion_name, "probe": probe_name}
    LOG.info("fusion %s (%s) on %s: best layers %s", fusion_name, cfg["method"], dataset,
             {m: c["layer"] for m, c in chosen.items()})
    if cfg["method"] == "concat_best":
        missing = [m for m in models if m not in embeddings]
        if missing:
            raise ValueError(f"fusion.{fusion_name}: no embedding file given for {missing}")
        if pcfg["type"] == "weighted_sum":
            raise ValueError(f"fusion.{fusion_name}: concat_best needs a per-layer probe (mlp, linear, knn), probes.{probe_name} is weighted_sum")
        data = concat_best_data(models, chosen, embeddings, manifest_csv)
        with TorchSettings(threads):
            result = fit_probe(data, pcfg, resolve_device(device), log)
    else:
        data = manifest_data(manifest_csv)
        result = late_average_result(models, chosen, probe_dirs, data)
    out_dir = Path(out_dir)
    definition = {
        "dataset": dataset,
        "fusion": fusion_name,
        "method": cfg["method"],
        "definition": DEFINITIONS[cfg["method"]],
        "probe": probe_name,
        "probe_config": pcfg,
        "models": models,
        "best_layers": {m: {"layer": c["layer"], "val_uar_mean": c["val_uar_mean"]} for m, c in chosen.items()},
        "input_dim": int(data.features.shape[2]) if cfg["method"] == "concat_best" else None,
        "layer_label": ALL_LAYERS,
        "note": STUDY_NOTE,
    }
    write_json(out_dir / "definition.json", definition)
    write_probe_outputs(out_dir, data, result, ids, pcfg, extra_attrs={"fusion_method": cfg["method"], "fusion_models": models})


def run_fusion_label_efficiency(dataset: str, fusion_name: str, fusion_cfg: dict, manifest_csv, embeddings: dict,
                                probe_dirs: dict, out_csv, probe_name: str, probe_cfg: dict, le_cfg: dict | None,
                                threads: int | None = None, device: str = "cpu") -> None:
    """Label efficiency (:mod:`bioprobe.probes.label_efficiency`) of a ``concat_best`` fusion.

    The models' best layers are those of the full fusion (chosen on the *whole* validation
    split of ``fusion_cfg``'s probe jobs, ``probe_dirs``); the concatenated input is then
    trained with probe ``probe_name`` on k labelled clips per class. Writes ``out_csv`` with
    ``model`` = the fusion's name and ``layer`` = -1.
    """
    from .probes.label_efficiency import label_efficiency_table, resolve_label_efficiency_config, write_label_efficiency

    cfg = resolve_fusion_config(fusion_name, fusion_cfg)
    if cfg["method"] != "concat_best":
        raise ValueError(f"fusion.{fusion_name}: label efficiency trains concat_best fusions, not {cfg['method']}")
    models = fusion_models(fusion_name, cfg, list(probe_dirs))
    data = concat_best_data(models, choose_best_layers(models, probe_dirs), embeddings, manifest_csv)
    with TorchSettings(threads):
        frame = label_efficiency_table(data, {"dataset": dataset, "model": fusion_name}, probe_name, probe_cfg,
                                       resolve_label_efficiency_config(le_cfg), resolve_device(device))
    write_label_efficiency(frame, out_csv)
