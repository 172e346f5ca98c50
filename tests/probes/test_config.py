"""Probe configuration: defaults, the study protocol, named errors, and the schema accepting the same keys as the code."""

import pytest

from bioprobe.probes.config import ALLOWED_KEYS, COMMON_DEFAULTS, KNN_DEFAULTS, TRAINED_DEFAULTS, resolve_probe_config


@pytest.mark.parametrize(
    "cfg, message",
    [
        ({"type": "mlp", "evaluate": "final"}, "probes.p.evaluate"),
        ({"type": "mlp", "dropout": 0.1}, "unknown key"),
        ({"type": "linear", "hidden_sizes": [8]}, "unknown key"),
        ({"type": "mlp", "seeds": []}, "seeds"),
        ({"type": "mlp", "lr": -1}, "probes.p.lr"),
        ({"type": "knn", "k": 0}, "probes.p.k"),
        ({"type": "svm"}, "probes.p.type"),
    ],
)
def test_bad_probe_config_is_named(cfg, message):
    with pytest.raises(ValueError, match=message):
        resolve_probe_config("p", cfg)


def test_study_defaults():
    cfg = resolve_probe_config("mlp", {"type": "mlp", "protocol": "study"})
    assert cfg["hidden_sizes"] == [128, 64, 32] and cfg["epochs"] == 30 and cfg["lr"] == 1e-3
    assert cfg["batch_size"] == 16 and cfg["patience"] == 10 and cfg["lr_factor"] == 0.1 and cfg["lr_patience"] == 10
    assert cfg["evaluate"] == "best" and cfg["seeds"] == [42]


def test_schema_and_code_accept_the_same_keys():
    from pathlib import Path

    import jsonschema
    import yaml

    root = Path(__file__).resolve().parents[2]
    schema = yaml.safe_load((root / "workflow/schemas/probes.schema.yaml").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    assert set(schema["properties"]) == set().union(*ALLOWED_KEYS.values())
    example = {**COMMON_DEFAULTS, **TRAINED_DEFAULTS, **KNN_DEFAULTS}
    for probe_type, keys in ALLOWED_KEYS.items():
        for key in set(schema["properties"]) - {"type"}:
            entry = {"type": probe_type, key: example[key]}
            assert validator.is_valid(entry) == (key in keys), (probe_type, key)
    for name, entry in yaml.safe_load((root / "config.yaml").read_text())["probes"].items():
        validator.validate(entry)
        resolve_probe_config(name, entry)
