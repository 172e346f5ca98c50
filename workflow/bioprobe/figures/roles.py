"""Which models each figure compares, from the config's ``figures:`` section (cheap: no plotting).

* ``compare``: the models of study figure 1, drawn layer-wise against each other, one panel per
  dataset (the study: AVES-bio and HuBERT). Default: every model that is neither a baseline
  nor fine-tuned (no ``base:``).
* ``fine_tuned``: the pre-trained models of study figure 2; each is drawn against the models
  whose ``base:`` names it, one panel per (base model, dataset). Default: every model some
  other model names as its ``base:``.
* ``floor``: models drawn faintly under the curves of figures 1 and 2. Default: the models of
  group ``baseline``.
* ``probe``: the probe whose scores the layer-wise, per-class and published figures show.
  Default: the first probe.
"""

from __future__ import annotations

from typing import Mapping

from .style import BASELINE_GROUP


def _check_models(key: str, names, models: Mapping) -> list[str]:
    unknown = [n for n in names if n not in models]
    if unknown:
        raise ValueError(f"config figures.{key}: {', '.join(map(repr, unknown))} not under models: (known: {', '.join(models)})")
    return list(names)


def figure_roles(config: Mapping) -> dict:
    """Resolve ``figures:`` roles against ``models:`` and ``probes:``; errors name the key.

    Returns ``{"compare": [...], "fine_tuned": {base: [models...]}, "floor": [...], "probe": str}``
    with models in config order.
    """
    # models with `enabled: false` are not in the run: no figure shows them
    models = {m: c for m, c in config["models"].items() if (c or {}).get("enabled", True)}
    fig = config.get("figures") or {}
    floor = fig.get("floor")
    if floor is None:
        floor = [m for m, c in models.items() if (c or {}).get("group") == BASELINE_GROUP]
    floor = _check_models("floor", floor, models)
    compare = fig.get("compare")
    if compare is None:
        compare = [m for m, c in models.items() if m not in floor and not (c or {}).get("base")]
    compare = _check_models("compare", compare, models)
    for name, cfg in models.items():
        base = (cfg or {}).get("base")
        if base is not None and base not in models:
            raise ValueError(f"config models.{name}.base: {base!r} is not under models: (known: {', '.join(models)})")
    bases = fig.get("fine_tuned")
    if bases is None:
        bases = [m for m in models if any((c or {}).get("base") == m for c in models.values())]
    bases = _check_models("fine_tuned", bases, models)
    fine_tuned = {}
    for base in bases:
        tuned = [m for m, c in models.items() if (c or {}).get("base") == base]
        if not tuned:
            raise ValueError(f"config figures.fine_tuned: no model has `base: {base}`, so there is nothing to compare it with")
        fine_tuned[base] = tuned
    probes = list(config["probes"])
    probe = fig.get("probe") or probes[0]
    if probe not in probes:
        raise ValueError(f"config figures.probe: {probe!r} is not under probes: (known: {', '.join(probes)})")
    return {"compare": compare, "fine_tuned": fine_tuned, "floor": floor, "probe": probe}
