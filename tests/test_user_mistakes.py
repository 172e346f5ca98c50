"""A researcher's own data and model: the mistakes they make, each stopped early with a clear error.

Found by playing that user (README "Bring your own data and models") on a realistic folder of
calls; each test failed before its fix. All cheap: no Snakemake run, no model loaded.
"""

from __future__ import annotations

import os
import socket

import pandas as pd
import pytest
import yaml

from archives import make_folder_dataset
from bioprobe import datasets
from bioprobe.config import ConfigError, validate_config
from bioprobe.datasets import folder
from bioprobe.models import is_local_path
from bioprobe.splits import SplitError
from bioprobe.weights import WeightsUnavailableError, fetch_weights, lock_path
from test_config import study_config


def folder_cfg(root, labels, **more) -> dict:
    return {"type": "folder", "root": str(root), "labels": str(labels), **more}


# ---------------------------------------------------------------- classes


def test_one_class_stops_the_split_before_any_probe(tmp_path):
    """With one class every layer scores 100% UAR: the split refuses it instead of a meaningless result."""
    labels = make_folder_dataset(tmp_path / "calls", labels=("call",), files_per_label=6)
    with pytest.raises(SplitError, match=r"dataset 'mine': only one label, 'call', among the 6 clip\(s\) to split: "
                                         r"a probe needs at least two classes"):
        datasets.prepare("mine", folder_cfg(tmp_path / "calls", labels), "unused", tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clips.csv"]  # no split.csv, no leakage.json


def test_one_class_left_by_the_label_settings_says_what_excluded_the_others(tmp_path):
    labels = make_folder_dataset(tmp_path / "calls", labels=("bark", "growl"), files_per_label=6)
    cfg = folder_cfg(tmp_path / "calls", labels, label_map={"growl": None})
    with pytest.raises(SplitError, match=r"only one label, 'bark'.*clips excluded: 6 by label_map"):
        datasets.prepare("mine", cfg, "unused", tmp_path / "out")
    # two classes split as before
    datasets.prepare("mine", folder_cfg(tmp_path / "calls", labels), "unused", tmp_path / "ok")
    assert set(pd.read_csv(tmp_path / "ok" / "split.csv")["label"]) == {"bark", "growl"}


def test_a_class_too_small_to_split_names_the_dataset(tmp_path):
    labels = make_folder_dataset(tmp_path / "calls", files_per_label=6)
    frame = pd.read_csv(labels, dtype=str, keep_default_na=False)
    frame.loc[0, "label"] = "grunt"  # a label with a single clip
    frame.to_csv(labels, index=False)
    with pytest.raises(SplitError, match=r"dataset 'mine': stratified split: .*'grunt': 1 clip\(s\), needs at least 3"):
        datasets.prepare("mine", folder_cfg(tmp_path / "calls", labels), "unused", tmp_path / "out")


# ---------------------------------------------------------------- the labels CSV


def test_duplicate_rows_are_an_error_naming_their_lines(tmp_path):
    make_folder_dataset(tmp_path / "root", files_per_label=2)
    csv = tmp_path / "mine.csv"
    csv.write_text("path,label,start,end\n"
                   "audio/bark/bark_000.wav,bark,,\n"
                   "audio/bark/bark_001.wav,bark,0.1,0.3\n"
                   "audio/bark/bark_000.wav,bark,,\n"            # the whole file again
                   "audio/bark/bark_001.wav,growl,0.1,0.3\n"     # the same segment, another label
                   "audio/bark/bark_001.wav,bark,0.2,0.3\n")     # another segment: fine
    with pytest.raises(ValueError, match=r"mine\.csv: the same clip \(path, start and end\) is listed more than once: "
                                         r"lines 2, 4; lines 3, 5\. "):
        datasets.build_manifest("m", folder_cfg(tmp_path / "root", csv), "unused")
    csv.write_text("path,label,start,end\naudio/bark/bark_000.wav,bark,,0.3\naudio/bark/bark_000.wav,bark,0,0.3\n")
    with pytest.raises(ValueError, match=r"listed more than once: lines 2, 3"):  # an empty start is 0
        datasets.build_manifest("m", folder_cfg(tmp_path / "root", csv), "unused")


def test_a_spreadsheet_byte_order_mark_keeps_the_clip_digest_on_the_paths(tmp_path):
    """Excel's "CSV UTF-8" starts with a BOM: the clip digest must still see the path column."""
    text = "path,label\na.wav,bark\nb.wav,growl\n"
    plain, bom = tmp_path / "plain.csv", tmp_path / "bom.csv"
    plain.write_text(text, encoding="utf-8")
    bom.write_text(text, encoding="utf-8-sig")
    digest = folder.clip_columns_digest({"labels": str(bom)})
    assert digest == folder.clip_columns_digest({"labels": str(plain)})
    bom.write_text(text.replace("b.wav", "c.wav"), encoding="utf-8-sig")  # a path edited: the clips change
    assert folder.clip_columns_digest({"labels": str(bom)}) != digest


@pytest.mark.parametrize("content, encoding, match", [
    ("path;label\naudio/bark/bark_000.wav;bark\n", "utf-8",
     r"unknown column\(s\) \['path;label'\].*looks separated by ';': the file must be comma-separated"),
    ("path,label\naudio/bark/bark_000.wav,aboyé\n", "cp1252", r"mine\.csv: not UTF-8 text .*save it as CSV in UTF-8"),
    (",path,label\n0,audio/bark/bark_000.wav,bark\n", "utf-8",
     r"unknown column\(s\) \['Unnamed: 0'\].*an index written by pandas \(write with index=False\)"),
    ("path,label\naudio\\bark\\bark_000.wav,bark\n", "utf-8",
     r"audio file missing .* line\(s\) 2, e\.g\. 'audio\\\\bark\\\\bark_000\.wav' \(paths are separated by '/'"),
])
def test_csv_from_another_system_says_what_to_change(tmp_path, content, encoding, match):
    make_folder_dataset(tmp_path / "root", files_per_label=2)
    csv = tmp_path / "mine.csv"
    csv.write_bytes(content.encode(encoding))
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        datasets.build_manifest("m", folder_cfg(tmp_path / "root", csv), "unused")


# ---------------------------------------------------------------- paths


def test_wrong_or_relative_dataset_paths_name_the_key_and_what_they_resolved_to(tmp_path, monkeypatch):
    labels = make_folder_dataset(tmp_path / "calls", files_per_label=2)
    monkeypatch.chdir(tmp_path / "calls")
    datasets.check_paths("mine", folder_cfg("audio/..", "labels.csv"))  # relative to the working directory: fine
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=(r"config key 'datasets\.mine\.labels': the labels file 'labels\.csv' "
                                                 r"\(relative to the directory snakemake runs in, '.*': '.*/labels\.csv'\) "
                                                 r"does not exist")):
        datasets.check_paths("mine", folder_cfg("calls", "labels.csv"))
    with pytest.raises(FileNotFoundError, match=r"config key 'datasets\.mine\.root': the audio folder '.*/nowhere' is not a folder"):
        datasets.check_paths("mine", folder_cfg(tmp_path / "nowhere", labels))
    with pytest.raises(FileNotFoundError, match=r"'datasets\.mine\.labels': the labels file .* is a folder, not a CSV file"):
        datasets.check_paths("mine", folder_cfg(tmp_path / "calls", tmp_path / "calls"))
    # the demo's labels are made by a rule of the workflow: not there yet, and that is fine
    datasets.check_paths("demo", folder_cfg("out/calls", "out/calls/labels.csv"), made_by_workflow=("out/calls/labels.csv",))
    datasets.check_paths("w", {"type": "watkins"})  # downloaded types: nothing to check before the download


def test_tilde_in_the_folders_snakemake_writes_is_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    raw = study_config()
    raw.update(results_dir="~/results", model_cache="~/models", data_dir="~/data")
    raw["figures"]["published"] = "~/published.csv"
    config = validate_config(raw)
    assert (config["results_dir"], config["model_cache"], config["data_dir"]) == (
        f"{tmp_path}/results", f"{tmp_path}/models", f"{tmp_path}/data")
    assert config["figures"]["published"] == f"{tmp_path}/published.csv"
    assert validate_config(study_config())["results_dir"] == "results"  # other paths stay as written


def test_a_typo_in_a_config_key_suggests_the_key(tmp_path):
    raw = study_config()
    raw["datasets"]["mine"] = {"type": "folder", "root": "calls", "lables": "labels.csv"}
    raw["datasets"]["imv"]["split"]["ratio"] = raw["datasets"]["imv"]["split"].pop("ratios")
    with pytest.raises(ConfigError) as err:
        validate_config(raw)
    text = str(err.value)
    assert "config key 'datasets.mine': Additional properties are not allowed ('lables' was unexpected)" in text
    assert "did you mean 'labels' instead of 'lables'?" in text
    assert "config key 'datasets.imv.split'" in text and "did you mean 'ratios' instead of 'ratio'?" in text
    raw = study_config()
    raw["models"]["w2v2_random"]["of"] = "w2v"  # a misspelt model name, caught when the run starts
    with pytest.raises(ConfigError, match=r"config key 'models\.w2v2_random\.of': 'w2v' is not a model of this config "
                                          r"\(.*\), a Hugging Face id \(org/name\) or a folder; did you mean 'w2v2'"):
        validate_config(raw)
    raw["models"]["w2v2_random"]["of"] = "facebook/wav2vec2-base"  # a hub id: fine
    raw["models"]["wavlm_100h"]["base"] = "wavml"
    with pytest.raises(ConfigError, match=r"'models\.wavlm_100h\.base': 'wavml' is not a model .*did you mean 'wavlm'"):
        validate_config(raw)
    del raw["models"]
    with pytest.raises(ConfigError, match=r"'models' is a required property(\n|$)") as err:
        validate_config(yaml.safe_load(yaml.safe_dump(raw)))
    assert "config.yaml of bioprobe" not in str(err.value)  # not the whole schema's description


# ---------------------------------------------------------------- models


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_a_model_folder_that_does_not_exist_says_what_it_resolved_to(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_ENDPOINT", _closed_port_url())
    # org/name is a hub id unless the folder exists: the hub's error adds what the folder would have been
    with pytest.raises(WeightsUnavailableError, match=(r"cannot fetch models/my_hubert@main .* If 'models/my_hubert' "
                                                       r"is meant as a local folder: there is no folder 'models/my_hubert' "
                                                       r"\(relative to the directory snakemake runs in")):
        fetch_weights("mine", {"source": "huggingface", "id": "models/my_hubert"}, tmp_path / "cache")
    # more than org/name cannot be a hub id: a local folder, said so without asking the hub
    assert is_local_path("data/models/my_hubert") and not is_local_path("facebook/hubert-base-ls960")
    with pytest.raises(FileNotFoundError, match=(r"local model folder 'data/models/my_hubert' \(relative to the directory "
                                                 rf"snakemake runs in, '{tmp_path}': '{tmp_path}/data/models/my_hubert'\) "
                                                 r"does not exist")):
        fetch_weights("mine", {"source": "huggingface", "id": "data/models/my_hubert"}, tmp_path / "cache")
    assert not lock_path("mine", tmp_path / "cache").exists()
    assert not os.path.exists(tmp_path / "data")


def test_a_model_folder_given_as_its_weights_file_says_to_give_the_folder(tmp_path):
    weights = tmp_path / "my_hubert" / "model.safetensors"
    weights.parent.mkdir()
    weights.write_bytes(b"not read")
    with pytest.raises(NotADirectoryError, match=r"model 'mine': '.*/model\.safetensors' is a file; give the folder "
                                                 r"save_pretrained wrote \(the one holding config\.json\)"):
        fetch_weights("mine", {"source": "huggingface", "id": str(weights)}, tmp_path / "cache")


def test_new_weights_saved_in_a_model_folder_are_recorded_when_the_fetch_re_runs(tmp_path, caplog):
    """A retrained model saved over the old one: the lock catches it, and its advice works when followed."""
    from bioprobe.tiny import save_tiny_hf_model
    from bioprobe.weights import pinned_path, verify_lock

    folder, cache = tmp_path / "my_hubert", tmp_path / "cache"
    save_tiny_hf_model("hubert", folder, seed=0)
    mcfg = {"source": "huggingface", "id": str(folder)}
    old = fetch_weights("mine", mcfg, cache)
    fetch_weights("rand", {"source": "random_init", "of": str(folder)}, cache)
    save_tiny_hf_model("hubert", folder, seed=1)  # new weights (and config), same folder
    with pytest.raises(ValueError, match=rf"does not match its lock .* run again with --forcerun {lock_path('mine', cache)}"):
        verify_lock(old, cache)  # what the embed step checks
    # --forcerun (or deleting the lock) re-runs the rule: Snakemake deletes the lock, its pinned copy is left
    for name in ("mine", "rand"):
        lock_path(name, cache).unlink()
        assert pinned_path(name, cache).exists()
    with caplog.at_level("WARNING"):
        new = fetch_weights("mine", mcfg, cache)
    assert "files of its local folder changed" in caplog.text
    assert new["files"]["model.safetensors"]["sha256"] != old["files"]["model.safetensors"]["sha256"]
    verify_lock(new, cache)
    verify_lock(fetch_weights("rand", {"source": "random_init", "of": str(folder)}, cache), cache)
    # the lock itself still guards the folder between the fetch and the embedding
    save_tiny_hf_model("hubert", folder, seed=2)
    with pytest.raises(ValueError, match="does not match its lock"):
        fetch_weights("mine", mcfg, cache)
