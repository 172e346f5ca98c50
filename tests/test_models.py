"""Model entries (bioprobe.models): source checks, local paths, ``of:`` resolution, rule parameters."""

import pytest

from bioprobe.models import (
    DESCRIPTIVE_KEYS,
    MODEL_SOURCES,
    check_source,
    is_local_path,
    resolve_architecture,
    resolve_model_entry,
    rule_params,
)

HUBERT = {"source": "huggingface", "id": "facebook/hubert-base-ls960", "revision": "main"}
MODELS = {
    "hubert": {**HUBERT, "label": "HuBERT", "group": "speech"},
    "rand": {"source": "random_init", "of": "hubert", "seed": 7, "label": "random HuBERT"},
    "lm": {"source": "logmel", "n_mels": 40},
}


def test_check_source_accepts_each_source_and_names_what_is_wrong():
    assert MODEL_SOURCES == ("huggingface", "aves", "logmel", "mfcc", "random_init")
    assert check_source("h", HUBERT) == "huggingface"
    assert check_source("lm", MODELS["lm"]) == "logmel"
    with pytest.raises(ValueError, match="model 'm': unknown source 'fairseq'; supported sources are huggingface, aves"):
        check_source("m", {"source": "fairseq"})
    with pytest.raises(ValueError, match=r"model 'a' \(source aves\): missing required key 'weights_url'"):
        check_source("a", {"source": "aves", "config_url": "https://x/c.json"})
    with pytest.raises(ValueError, match="must be a mapping, got list"):
        check_source("m", ["huggingface"])


def test_is_local_path(tmp_path, monkeypatch):
    assert is_local_path("file:///data/aves.pt") and is_local_path("/data/model") and is_local_path("./m")
    assert is_local_path("~/models/hubert")
    assert not is_local_path("https://example.org/aves.pt")
    assert not is_local_path("facebook/hubert-base-ls960")
    (tmp_path / "org" / "name").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert is_local_path("org/name")  # an existing relative folder wins over a hub id


def test_resolve_architecture_of_a_name_an_entry_an_id_or_a_folder(tmp_path):
    assert resolve_architecture("rand", MODELS["rand"], MODELS) == MODELS["hubert"]
    assert resolve_architecture("r", {"of": dict(HUBERT)}) == HUBERT
    assert resolve_architecture("r", {"of": "org/name", "revision": "v2"}) == {"source": "huggingface", "id": "org/name", "revision": "v2"}
    assert resolve_architecture("r", {"of": str(tmp_path)})["id"] == str(tmp_path)
    with pytest.raises(ValueError, match=r"neither a model under models: \(pass the models: section\)"):
        resolve_architecture("r", {"of": "hubert"})
    with pytest.raises(ValueError, match="must be a huggingface or aves model, got source 'logmel'"):
        resolve_architecture("r", {"of": "lm"}, MODELS)
    with pytest.raises(ValueError, match="random_init needs `of`"):
        resolve_architecture("r", {})


def test_resolve_model_entry_and_rule_params():
    rand = resolve_model_entry("rand", MODELS)
    assert rand["of"] == HUBERT  # inlined, without the descriptive keys of the copied entry
    assert rand["label"] == "random HuBERT"
    assert resolve_model_entry("hubert", MODELS) == MODELS["hubert"]
    assert MODELS["rand"]["of"] == "hubert"  # the config is not modified
    params = rule_params("rand", MODELS)
    assert params == {"source": "random_init", "of": HUBERT, "seed": 7}
    assert not set(DESCRIPTIVE_KEYS) & set(rule_params("hubert", MODELS))
    with pytest.raises(KeyError, match="'nope' is not under models: \\(known: hubert, rand, lm\\)"):
        resolve_model_entry("nope", MODELS)


def test_rule_params_leave_out_embed_overrides_and_fetch_params_layer0():
    aves = {"source": "aves", "config_url": "c.json", "weights_url": "w.pt", "layer0": "study", "label": "AVES",
            "embed": {"chunk_seconds": 18.75}}
    models = {"aves": aves, "rand": {"source": "random_init", "of": "aves", "seed": 0, "embed": {"batch_size": 2}}}
    weights = {"source": "aves", "config_url": "c.json", "weights_url": "w.pt"}
    # the embed rule: layer0 changes the embeddings, the overrides are tracked with the embed settings
    assert rule_params("aves", models) == {**weights, "layer0": "study"}
    assert rule_params("rand", models) == {"source": "random_init", "of": {**weights, "layer0": "study"}, "seed": 0}
    # fetch_weights: neither changes what is fetched
    assert rule_params("aves", models, fetch=True) == weights
    assert rule_params("rand", models, fetch=True) == {"source": "random_init", "of": weights, "seed": 0}
