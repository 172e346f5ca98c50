import copy
from pathlib import Path

import pytest
import yaml

from bioprobe.config import ConfigError, load_config, validate_config

REPO = Path(__file__).resolve().parents[1]


def study_config():
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_study_and_demo_configs_are_valid_and_get_defaults():
    config = load_config(REPO / "config.yaml")
    study_models = ["aves_bio", "hubert", "wavlm", "w2v2", "wavlm_100h", "w2v2_100h", "w2v2_960h"]
    assert list(config["models"])[:7] == study_models
    enabled = [m for m in config["models"].values() if m.get("enabled", True)]
    assert {m["group"] for m in enabled[7:]} == {"baseline"}  # other families follow, switched off
    assert set(config["datasets"]) == {"watkins", "imv", "abzaliev"}
    assert config["audio"] == {"sample_rate": 16000, "resampler": "soxr_hq"}
    demo = load_config(REPO / "resources" / "configs" / "demo.yaml")
    assert demo["figures"]["formats"] == ["png"]
    assert demo["data_dir"] == "resources/demo/data"


def test_defaults_filled_when_sections_are_missing():
    raw = study_config()
    del raw["audio"], raw["figures"], raw["data_dir"]
    config = validate_config(raw)
    assert config["audio"]["resampler"] == "soxr_hq"
    assert config["figures"]["formats"] == ["pdf", "png"]
    assert config["data_dir"] == "resources/data"
    assert "audio" not in raw  # the caller's dict is not modified


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda c: c["audio"].update(resampler="linear"), "audio.resampler"),
        (lambda c: c.update(unknown_section=1), "unknown_section"),
        (lambda c: c["models"].update({"bad/name": c["models"]["hubert"]}), "bad/name"),
        (lambda c: c["models"]["w2v2_100h"].update(base="nope"), "models.w2v2_100h.base"),
        (lambda c: c["fusion"]["concat_best"].update(probe="nope"), "fusion.concat_best.probe"),
    ],
)
def test_errors_name_the_key(mutate, expected):
    raw = study_config()
    mutate(raw)
    with pytest.raises(ConfigError) as err:
        validate_config(raw)
    assert expected in str(err.value)


def test_enum_error_lists_allowed_values():
    raw = study_config()
    raw["audio"]["resampler"] = "linear"
    with pytest.raises(ConfigError, match="allowed: soxr_hq, soxr_vhq, torchaudio_sinc"):
        validate_config(raw)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("datasets: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(bad)


def test_key_order_does_not_matter_but_entry_order_is_kept():
    raw = study_config()
    shuffled = copy.deepcopy(raw)
    shuffled["models"] = {name: dict(reversed(list(entry.items()))) for name, entry in raw["models"].items()}
    shuffled["embed"] = dict(reversed(list(raw["embed"].items())))
    a, b = validate_config(raw), validate_config(shuffled)
    assert repr(a) == repr(b)
    assert list(a["models"]) == list(raw["models"])  # legend and table order as written


def test_embed_runtime_settings_are_split_from_tracked_ones():
    from bioprobe.config import embed_result_settings, embed_settings

    config = load_config(REPO / "config.yaml")
    tracked = embed_result_settings(config["embed"])
    assert "batch_size" not in tracked and "device" not in tracked and tracked["min_samples"] == 5000
    assert config["embed"]["batching"] == "masked" and config["embed"]["length_ratio"] == 1.25
    assert "batching" not in tracked and "length_ratio" not in tracked  # exact batchings change speed only
    assert embed_settings(tracked, config) == config["embed"]
    equal = {**config["embed"], "batching": "equal_length", "length_ratio": 2.0}
    assert embed_result_settings(equal) == tracked  # switching batching re-runs nothing


def test_tracked_params_leave_out_schema_defaults():
    from bioprobe.config import embed_result_settings, embed_settings, tracked

    config = load_config(REPO / "config.yaml")
    # every audio and embed setting of the study is at its default: nothing is tracked but
    # std_ddof, whose default changed the embeddings (x-tracked: always)
    assert tracked(config["audio"], "config.schema.yaml", ("audio",)) == {}
    assert tracked(embed_result_settings(config["embed"]), "embed.schema.yaml") == {"std_ddof": 1}
    changed = {**config["embed"], "min_samples": 8000}
    assert tracked(embed_result_settings(changed), "embed.schema.yaml") == {"min_samples": 8000, "std_ddof": 1}
    # the job still gets every setting: the config's section under the tracked ones
    assert embed_settings({"min_samples": 8000}, {"embed": changed}) == changed
    # nested settings: only the keys that differ, type-dependent defaults from the entry's type
    folder = {"type": "folder", "root": "r", "labels": "l.csv", "enabled": True,
              "split": {"method": "stratified", "seed": 7, "ratios": [0.7, 0.2, 0.1]}}
    assert tracked(folder, "datasets.schema.yaml", (), {k: folder[k] for k in ("type", "root", "labels")}) == {
        "type": "folder", "root": "r", "labels": "l.csv", "split": {"seed": 7}}


def test_a_new_key_with_a_neutral_default_leaves_tracked_params_unchanged(tmp_path):
    """The rule that keeps results fresh across upgrades: a key added to a schema with a default
    is not tracked until set to another value; one marked x-tracked: always is tracked at once."""
    import shutil

    from bioprobe.config import SCHEMA_DIR, tracked

    config = load_config(REPO / "resources" / "configs" / "demo.yaml")
    before = tracked(config["embed"], "embed.schema.yaml")
    new_dir = tmp_path / "schemas"
    shutil.copytree(SCHEMA_DIR, new_dir)
    schema = yaml.safe_load((new_dir / "embed.schema.yaml").read_text())
    schema["properties"]["new_neutral"] = {"type": "integer", "default": 0}
    schema["properties"]["new_changing"] = {"type": "integer", "default": 1, "x-tracked": "always"}
    (new_dir / "embed.schema.yaml").write_text(yaml.safe_dump(schema))
    upgraded = validate_config(yaml.safe_load((REPO / "resources" / "configs" / "demo.yaml").read_text()), new_dir)
    assert upgraded["embed"]["new_neutral"] == 0 and upgraded["embed"]["new_changing"] == 1  # filled in
    after = tracked(upgraded["embed"], "embed.schema.yaml", schema_dir=new_dir)
    assert after == {**before, "new_changing": 1}
    assert tracked({**upgraded["embed"], "new_neutral": 3}, "embed.schema.yaml", schema_dir=new_dir)["new_neutral"] == 3


def test_a_section_left_at_its_defaults_tracks_nothing_of_it():
    from bioprobe.config import tracked

    raw = yaml.safe_load((REPO / "resources" / "configs" / "demo.yaml").read_text())
    raw["datasets"]["mine"] = {"type": "folder", "root": "r", "labels": "l.csv"}
    config = validate_config(raw)
    entry = config["datasets"]["mine"]
    assert isinstance(entry["split"], dict) and entry["split"]  # the schema filled a nested split section in
    minimal = {"type": "folder", "root": "r", "labels": "l.csv"}
    assert tracked(entry, "datasets.schema.yaml", (), minimal) == minimal  # no empty "split": {} left behind


def test_x_tracked_always_is_honoured_in_nested_settings(tmp_path):
    import shutil

    from bioprobe.config import SCHEMA_DIR, tracked

    new_dir = tmp_path / "schemas"
    shutil.copytree(SCHEMA_DIR, new_dir)
    schema = yaml.safe_load((new_dir / "embed.schema.yaml").read_text())
    schema["properties"]["nested"] = {"type": "object", "default": {}, "properties": {
        "inner_changing": {"type": "integer", "default": 1, "x-tracked": "always"},
        "inner_neutral": {"type": "integer", "default": 0}}}
    (new_dir / "embed.schema.yaml").write_text(yaml.safe_dump(schema))
    config = validate_config(yaml.safe_load((REPO / "resources" / "configs" / "demo.yaml").read_text()), new_dir)
    assert config["embed"]["nested"] == {"inner_changing": 1, "inner_neutral": 0}
    assert tracked(config["embed"], "embed.schema.yaml", schema_dir=new_dir)["nested"] == {"inner_changing": 1}
