"""Loading and validating config.yaml against the workflow's JSON schemas.

Imported by the Snakefile at parse time: it must stay light (yaml and jsonschema only).
Each section's entries are validated against the schema file of the module that owns them
(``datasets.schema.yaml``, ``models.schema.yaml``, ...), so an error names the exact key, the
value found and what is allowed, and defaults from the schemas are filled in.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import yaml

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
MAIN_SCHEMA = "config.schema.yaml"


class ConfigError(ValueError):
    """config.yaml does not match the schema; the message names the key."""


def _load_yaml(path: Path) -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh) or {}


def load_schemas(schema_dir: Path = SCHEMA_DIR) -> dict[str, dict]:
    """All schema files of ``schema_dir`` by file name (a missing sub-schema accepts any object)."""
    schemas = {p.name: _load_yaml(p) for p in sorted(schema_dir.glob("*.schema.yaml"))}
    main = schemas.get(MAIN_SCHEMA, {})
    for ref in _refs(main):
        schemas.setdefault(ref, {"type": "object"})
    return schemas


def _refs(node) -> set[str]:
    found = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and not value.startswith("#"):
                found.add(value)
            else:
                found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def _validator(schemas: dict[str, dict], root: dict | None = None):
    """A validator of ``root`` (default: the main schema) that fills in defaults while validating."""
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    registry = Registry().with_resources(
        (name, Resource.from_contents(schema, default_specification=DRAFT202012)) for name, schema in schemas.items()
    )
    base = jsonschema.validators.validator_for(schemas[MAIN_SCHEMA], default=jsonschema.Draft202012Validator)

    def fill_defaults(validator, properties, instance, schema):
        # Standard jsonschema extension: set missing properties to their schema default first.
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from jsonschema.Draft202012Validator.VALIDATORS["properties"](validator, properties, instance, schema)

    filling = jsonschema.validators.extend(base, {"properties": fill_defaults})
    return filling(schemas[MAIN_SCHEMA] if root is None else root, registry=registry)


def _describe(error) -> str:
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    schema = error.schema if isinstance(error.schema, dict) else {}
    allowed = ""
    if error.validator == "enum":
        allowed = f"; allowed: {', '.join(map(str, error.validator_value))}"
        allowed += _did_you_mean([error.instance], error.validator_value)
    elif error.validator == "additionalProperties" and isinstance(schema.get("properties"), dict):
        allowed = f"; allowed keys: {', '.join(sorted(schema['properties']))}"
        extra = [k for k in (error.instance if isinstance(error.instance, dict) else {}) if k not in schema["properties"]]
        allowed += _did_you_mean(extra, schema["properties"])
    elif error.validator == "required":
        pass  # the message names the missing key; the schema's description is about something else
    elif "description" in schema:
        allowed = f" ({schema['description']})"
    return f"config key '{where}': {error.message}{allowed}"


def _did_you_mean(found, allowed) -> str:
    """``"; did you mean 'labels'?"`` for the first of ``found`` close to one of ``allowed`` (a typo)."""
    import difflib

    choices = [str(a) for a in allowed]
    for value in found:
        if isinstance(value, str):
            close = difflib.get_close_matches(value, choices, n=1, cutoff=0.7)
            if close:
                return f"; did you mean {close[0]!r} instead of {value!r}?"
    return ""


def validate_config(config: dict, schema_dir: Path = SCHEMA_DIR) -> dict:
    """Return a validated copy of ``config`` with schema defaults filled in.

    Raises :class:`ConfigError` listing every problem, each naming its key.
    """
    config = copy.deepcopy(config)
    schemas = load_schemas(schema_dir)
    validator = _validator(schemas)
    # Defaults are filled while validating; a second pass reports on the filled config.
    list(validator.iter_errors(config))
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(_describe(e) for e in _leaf_errors(errors)))
    _check_references(config)
    _check_embed_overrides(config, schemas)
    return canonical_order(expand_user_paths(config))


#: Top-level folders (and files) Snakemake reads and writes as they are written: a leading ``~``
#: would otherwise be a folder named ``~`` in the working directory.
USER_PATH_KEYS = (("data_dir",), ("model_cache",), ("results_dir",), ("figures", "published"))


def expand_user_paths(config: dict) -> dict:
    """``config`` with ``~`` expanded in :data:`USER_PATH_KEYS` (other values are left as written).

    Dataset and model paths (``root``, ``labels``, a model ``id``) are expanded where they are
    read; these are the paths Snakemake itself builds inputs and outputs from.
    """
    for path in USER_PATH_KEYS:
        node = config
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get(path[-1]), str) and node[path[-1]].startswith("~"):
            node[path[-1]] = os.path.expanduser(node[path[-1]])
    return config


def _leaf_errors(errors):
    """Prefer the most specific errors of if/then/anyOf branches over their summaries."""
    out = []
    for error in errors:
        if error.context:
            out.extend(_leaf_errors(sorted(error.context, key=lambda e: list(map(str, e.absolute_path)))))
        else:
            out.append(error)
    seen, unique = set(), []
    for error in out:
        text = _describe(error)
        if text not in seen:
            seen.add(text)
            unique.append(error)
    return unique


def _check_references(config: dict) -> None:
    """Cross-entry checks no JSON schema can express: names that must refer to other entries."""
    models, probes = config.get("models", {}), config.get("probes", {})
    for name, mcfg in models.items():
        base = mcfg.get("base")
        if base is not None and base not in models:
            raise ConfigError(f"config key 'models.{name}.base': {base!r} is not a model of this config; models: {', '.join(models)}"
                              + _did_you_mean([base], models))
        _check_random_init_of(name, mcfg, models)
    for name, fcfg in (config.get("fusion") or {}).items():
        probe = fcfg.get("probe")
        if probe is not None and probe not in probes:
            raise ConfigError(f"config key 'fusion.{name}.probe': {probe!r} is not a probe of this config; probes: {', '.join(probes)}")
        for model in fcfg.get("models") or []:
            if model not in models:
                raise ConfigError(f"config key 'fusion.{name}.models': {model!r} is not a model of this config")
            if not models[model].get("enabled", True):
                raise ConfigError(f"config key 'fusion.{name}.models': model {model!r} is disabled (enabled: false); enable it or drop it here")
    for model in (config.get("leakage") or {}).get("models") or []:
        if model not in models or not models[model].get("enabled", True):
            raise ConfigError(f"config key 'leakage.models': {model!r} is not an enabled model of this config")
    for dataset in ((config.get("leakage") or {}).get("by") or {}):
        if dataset not in config.get("datasets", {}):
            raise ConfigError(f"config key 'leakage.by': {dataset!r} is not a dataset of this config")
    sections = (("label_efficiency", ("mlp", "linear")), ("cheapest_layer", ("mlp", "linear", "knn")),
                ("leakage", ("mlp", "linear", "knn")))
    for section, types in sections:
        probe = (config.get(section) or {}).get("probe")
        if probe is not None and probe not in probes:
            raise ConfigError(f"config key '{section}.probe': {probe!r} is not a probe of this config; probes: {', '.join(probes)}")
        if probe is not None and probes[probe].get("type") not in types:
            raise ConfigError(f"config key '{section}.probe': probes.{probe} is of type {probes[probe].get('type')!r}; "
                              f"{section} needs one of {', '.join(types)}")


def _check_random_init_of(name: str, mcfg: dict, models: dict) -> None:
    """A ``random_init``'s ``of:`` names a model of this config, a hub id (org/name) or a folder.

    Checked here so that a misspelt model name stops the run when it starts, not when its
    weights are fetched.
    """
    from .models import is_local_path

    of = mcfg.get("of")
    if mcfg.get("source") != "random_init" or not isinstance(of, str) or of in models:
        return
    if "/" not in of and not is_local_path(of):
        raise ConfigError(f"config key 'models.{name}.of': {of!r} is not a model of this config ({', '.join(models)}), "
                          f"a Hugging Face id (org/name) or a folder" + _did_you_mean([of], models))


# embed: settings that change how fast embeddings are computed, not what they are (batched
# output equals one clip at a time, so results do not depend on them): changing them re-runs
# nothing. `batching` is one of them while its value is exact (bioprobe.batching.EXACT_BATCHINGS:
# masked, equal_length), so switching between those re-runs nothing either.
EMBED_RUNTIME_KEYS = ("batch_size", "max_batch_seconds", "length_ratio", "device")
# Under batching: study_repeat_pad, batch_size decides which clips share a batch and how far they
# are padded, so it changes the embeddings and is tracked (max_batch_seconds is not used there).
PADDED_BATCHING_TRACKED_KEYS = ("batch_size",)
# Keys added after embeddings were first made, with the value that gives the former embeddings:
# left out of the tracked settings at that value only, so that a config at that value re-runs
# nothing on upgrading, and any other value (the new default std_ddof 1 included) is tracked.
# The schema always fills these keys in, so "left out" can only mean "that value".
EMBED_KEYS_ADDED_AT_NEUTRAL = {"std_ddof": 0}


def embed_result_settings(embed: dict) -> dict:
    """The ``embed:`` settings that determine the embeddings (tracked as rule params)."""
    from .batching import EXACT_BATCHINGS

    exact = embed.get("batching", "masked") in EXACT_BATCHINGS
    runtime = [k for k in EMBED_RUNTIME_KEYS if exact or k not in PADDED_BATCHING_TRACKED_KEYS]
    return {
        k: v
        for k, v in embed.items()
        if k not in runtime
        and not (k == "batching" and v in EXACT_BATCHINGS)
        and not (k in EMBED_KEYS_ADDED_AT_NEUTRAL and v == EMBED_KEYS_ADDED_AT_NEUTRAL[k])
    }


def effective_embed(config: dict, dataset: str | None = None, model: str | None = None) -> dict:
    """The ``embed:`` settings of one (dataset, model) job.

    The ``embed:`` section, then the dataset entry's ``embed:`` overrides, then the model
    entry's (e.g. a smaller ``chunk_seconds`` for one model), each key overriding the one before.
    """
    merged = dict(config.get("embed") or {})
    if dataset is not None:
        merged.update((config.get("datasets") or {}).get(dataset, {}).get("embed") or {})
    if model is not None:
        merged.update((config.get("models") or {}).get(model, {}).get("embed") or {})
    return merged


def embed_settings(result_settings: dict, config: dict, dataset: str | None = None, model: str | None = None) -> dict:
    """All ``embed:`` settings for a job: the tracked ones plus the runtime ones from ``config``."""
    # the job's merged settings (defaults filled) under the tracked ones, which may leave out
    # values equal to their schema default (see tracked())
    return {**effective_embed(config, dataset, model), **result_settings}


def _check_embed_overrides(config: dict, schemas: dict) -> None:
    """Every dataset's and model's ``embed:`` overrides, merged over ``embed:``, must be valid."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schemas.get("embed.schema.yaml", {"type": "object"}))
    for section in ("datasets", "models"):
        for name, entry in (config.get(section) or {}).items():
            override = entry.get("embed") if isinstance(entry, dict) else None
            if not override:
                continue
            merged = {**(config.get("embed") or {}), **override}
            for error in validator.iter_errors(merged):
                key = ".".join(str(p) for p in error.absolute_path)
                where = f"{section}.{name}.embed.{key}" if key in override else f"embed.{key} (with {section}.{name}.embed)"
                raise ConfigError(f"config key '{where}': {error.message}")


# --- Tracked params -------------------------------------------------------------------------
# A rule's params are what Snakemake compares with the run that made its outputs. Schema defaults
# are filled into the config, so a key added to a schema with a default would change every
# rule's params and make every result stale. Hence the rule: a setting is tracked only when its
# value differs from its schema default, or when its schema marks it ``x-tracked: always``. A new
# key whose default reproduces the behaviour without it needs nothing; a new key whose default
# changes results must be marked ``x-tracked: always`` (results made before it become stale
# once, as they should).

TRACKED_ALWAYS = "x-tracked"


_SCHEMAS_CACHE: dict = {}
_VALIDATORS_CACHE: dict = {}


def _schemas(schema_dir: Path) -> dict[str, dict]:
    """:func:`load_schemas`, read once per folder (the Snakefile asks for defaults many times)."""
    key = str(schema_dir)
    if key not in _SCHEMAS_CACHE:
        _SCHEMAS_CACHE[key] = load_schemas(schema_dir)
    return _SCHEMAS_CACHE[key]


def _subschema(schema_dir: Path, schema_file: str, *path: str) -> dict:
    node = _schemas(schema_dir)[schema_file]
    for key in path:
        node = node["properties"][key]
    return node


def _always_tracked(node) -> set[str]:
    """Property names marked ``x-tracked: always`` anywhere in a schema node."""
    found = set()
    if isinstance(node, dict):
        for key, sub in (node.get("properties") or {}).items():
            if isinstance(sub, dict) and sub.get(TRACKED_ALWAYS) == "always":
                found.add(key)
        for value in node.values():
            found |= _always_tracked(value)
    elif isinstance(node, list):
        for value in node:
            found |= _always_tracked(value)
    return found


_DEFAULTS_CACHE: dict = {}


def schema_defaults(schema_file: str, path: tuple[str, ...] = (), minimal: dict | None = None,
                    schema_dir: Path = SCHEMA_DIR) -> tuple[dict, set[str]]:
    """The values the schema fills into ``minimal`` (default ``{}``), and the always-tracked keys.

    ``schema_file``/``path`` name the schema of one section or entry (``("config.schema.yaml",
    ("audio",))``, ``("datasets.schema.yaml", ())``); ``minimal`` holds the keys that select
    type-dependent defaults (a dataset's ``type``, ``root``, ``labels``).
    """
    key = (str(schema_dir), schema_file, path, repr(sorted((minimal or {}).items())))
    if key not in _DEFAULTS_CACHE:
        schema = _subschema(schema_dir, schema_file, *path)
        vkey = key[:3]
        if vkey not in _VALIDATORS_CACHE:
            _VALIDATORS_CACHE[vkey] = _validator(_schemas(schema_dir), root=schema)
        filled = copy.deepcopy(minimal or {})
        list(_VALIDATORS_CACHE[vkey].iter_errors(filled))
        _DEFAULTS_CACHE[key] = (filled, _always_tracked(schema))
    filled, always = _DEFAULTS_CACHE[key]
    return copy.deepcopy(filled), set(always)


def without_defaults(value, defaults, always: set[str] = frozenset()):
    """``value`` without the keys (recursively) equal to their entry in ``defaults``.

    Keys named in ``always`` are kept whatever their value; a nested setting left empty is dropped.
    """
    if not isinstance(value, dict) or not isinstance(defaults, dict):
        return value
    out = {}
    for key, item in value.items():
        if key in always or key not in defaults:
            out[key] = item
            continue
        if isinstance(item, dict) and isinstance(defaults[key], dict):
            inner = without_defaults(item, defaults[key], always)
            if inner:
                out[key] = inner
        elif item != defaults[key]:
            out[key] = item
    return out


def tracked(value: dict, schema_file: str, path: tuple[str, ...] = (), minimal: dict | None = None,
            schema_dir: Path = SCHEMA_DIR) -> dict:
    """The part of a config section that a rule tracks as ``params`` (see the rule above)."""
    defaults, always = schema_defaults(schema_file, path, minimal, schema_dir)
    return without_defaults(value, defaults, always | set(minimal or {}))


# Sections whose entry order means something (figure legends, table rows): kept as written.
ORDERED_SECTIONS = ("datasets", "models", "probes", "fusion")


def canonical_order(config: dict) -> dict:
    """Sort the keys of every setting dict, keeping the order of entries in ORDERED_SECTIONS.

    Snakemake re-runs a job when its params change, and a dict's repr depends on key order:
    with canonical order, re-ordering keys in config.yaml changes nothing downstream.
    """

    def sort(node):
        if isinstance(node, dict):
            return {k: sort(node[k]) for k in sorted(node, key=str)}
        if isinstance(node, list):
            return [sort(v) for v in node]
        return node

    out = {}
    for key, value in config.items():
        if key in ORDERED_SECTIONS and isinstance(value, dict):
            out[key] = {name: sort(entry) for name, entry in value.items()}
        else:
            out[key] = sort(value)
    return out


def load_config(path: str | Path) -> dict:
    """Read and validate a config file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = _load_yaml(path)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from err
    try:
        return validate_config(raw)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
