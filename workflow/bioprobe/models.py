"""Model entries of the config (``models:``): what they may say and how they resolve.

This module owns the *entries*, not the weights or the encoders: the list of model sources,
the checks an entry must pass, whether a reference (``id``, URL) is a local path, and the
resolution of ``random_init``'s ``of:`` into the entry of the architecture it copies. It sits at
the bottom of the import graph: :mod:`bioprobe.weights`, :mod:`bioprobe.encoders`,
:mod:`bioprobe.budget` and the Snakefile use it, and it imports nothing from bioprobe (and
neither torch nor transformers), so the Snakefile can import it at parse time.
"""

from __future__ import annotations

import os
from typing import Mapping

#: Every ``source`` a model entry may have.
MODEL_SOURCES: tuple[str, ...] = ("huggingface", "aves", "logmel", "mfcc", "random_init")
#: The sources with pretrained weights to fetch (the ones ``random_init`` may copy).
PRETRAINED_SOURCES: tuple[str, ...] = ("huggingface", "aves")
#: Keys of an entry that only name, group or switch it (``enabled``) in the run; they do not change the
#: weights or the embeddings, so the weight and embedding rules never see them.
DESCRIPTIVE_KEYS: tuple[str, ...] = ("label", "group", "base", "published_as", "enabled")
#: An entry's ``embed:`` overrides: the embed rule tracks them within each job's merged embed
#: settings (:func:`bioprobe.config.effective_embed`), so no rule sees them in the entry.
EMBED_OVERRIDES_KEY = "embed"
#: Keys that change an entry's embeddings but not what is fetched: not in fetch_weights' params.
EMBED_ONLY_KEYS: tuple[str, ...] = ("layer0", "max_layer")
#: Keys that say how far a model is run (``max_layer``), not what it is: a ``random_init``'s
#: ``of: <model name>`` copies the other entry's architecture without them.
FORWARD_KEYS: tuple[str, ...] = ("max_layer",)
#: The keys a source cannot do without.
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "huggingface": ("id",),
    "aves": ("config_url", "weights_url"),
    "random_init": ("of",),
}


def check_source(name: str, mcfg: Mapping) -> str:
    """Return ``mcfg['source']`` or raise a clear error if it is missing or not supported."""
    if not isinstance(mcfg, Mapping):
        raise ValueError(f"model {name!r}: its config entry must be a mapping, got {type(mcfg).__name__}")
    source = mcfg.get("source")
    if source not in MODEL_SOURCES:
        raise ValueError(
            f"model {name!r}: unknown source {source!r}; supported sources are {', '.join(MODEL_SOURCES)}"
        )
    for key in REQUIRED_KEYS.get(source, ()):
        if not mcfg.get(key):
            raise ValueError(f"model {name!r} (source {source}): missing required key {key!r}")
    return source


def is_local_path(ref: str) -> bool:
    """True if a model reference (``id``, URL) points to the local file system."""
    ref = str(ref)
    if ref.startswith("file://"):
        return True
    if "://" in ref:
        return False
    # A hub id is "name" or "org/name": a reference with more parts can only be a folder.
    return (ref.startswith(("/", "./", "../", "~")) or os.path.exists(os.path.expanduser(ref))
            or len([part for part in ref.split("/") if part]) > 2)


def describe_local_path(ref: str) -> str:
    """``ref`` as written and, when relative, what it resolves to (the working directory's child)."""
    ref = str(ref).removeprefix("file://")
    path = os.path.expanduser(ref)
    if os.path.isabs(path):
        return repr(path)
    return f"{ref!r} (relative to the directory snakemake runs in, {os.getcwd()!r}: {os.path.abspath(path)!r})"


def resolve_architecture(name: str, mcfg: Mapping, models: Mapping | None = None) -> dict:
    """For a ``random_init`` entry, the entry of the model whose architecture it copies.

    ``of`` may name another entry of ``models`` (``of: hubert``), be a full entry (a mapping),
    a Hugging Face repo id or a local model folder.
    """
    of = mcfg.get("of")
    if isinstance(of, Mapping):
        base = dict(of)
    elif isinstance(of, str) and models is not None and of in models:
        base = dict(models[of])
    elif isinstance(of, str) and of:
        if "/" not in of and not is_local_path(of):
            raise ValueError(
                f"model {name!r}: random_init of={of!r} is neither a model under models: "
                f"{'(pass the models: section) ' if models is None else ''}nor a Hugging Face id (org/name) nor a folder"
            )
        base = {"source": "huggingface", "id": of, "revision": mcfg.get("revision", "main")}
    else:
        raise ValueError(f"model {name!r}: random_init needs `of` (a model name, Hugging Face id or folder)")
    if base.get("source") not in PRETRAINED_SOURCES:
        raise ValueError(
            f"model {name!r}: random_init `of` must be a huggingface or aves model, got source {base.get('source')!r}"
        )
    return base


def resolve_model_entry(name: str, models: Mapping) -> dict:
    """Model ``name``'s entry, self-contained: a ``random_init``'s ``of: <model name>`` is inlined.

    Lets the workflow pass one entry to :func:`bioprobe.weights.fetch_weights`,
    :func:`bioprobe.encoders.load_encoder` and :func:`bioprobe.embed.embed_dataset` without the
    whole ``models:`` section. Cheap (no torch): usable at Snakefile parse time.
    """
    if name not in models:
        raise KeyError(f"model {name!r} is not under models: (known: {', '.join(models)})")
    entry = dict(models[name])
    of = entry.get("of")
    if entry.get("source") == "random_init" and isinstance(of, str) and of in models:
        entry["of"] = {k: v for k, v in models[of].items() if k not in (*DESCRIPTIVE_KEYS, *FORWARD_KEYS)}
    return entry


def rule_params(name: str, models: Mapping, fetch: bool = False) -> dict:
    """Model ``name``'s self-contained entry without its descriptive keys: what the rules pass on.

    Renaming a model (``label``) or regrouping it in figures then re-draws figures and tables
    without re-fetching weights or re-embedding. The ``embed:`` overrides are left out too
    (tracked by the embed rule with the other embed settings), and with ``fetch`` the keys that
    only change embeddings (``layer0``), also from an inlined ``of``: changing them never
    re-fetches weights.
    """
    drop = DESCRIPTIVE_KEYS + (EMBED_OVERRIDES_KEY,) + (EMBED_ONLY_KEYS if fetch else ())
    entry = resolve_model_entry(name, models)
    if isinstance(entry.get("of"), dict):
        entry["of"] = {k: v for k, v in entry["of"].items() if k not in drop}
    return {k: v for k, v in entry.items() if k not in drop}
