"""``max_layer``: a cut model returns exactly the first k + 1 layers of the full pass and never
runs the blocks above; embedding files hold layers 0..k; unset changes nothing."""

import numpy as np
import pytest
import torch

from bioprobe.embed import embed_dataset
from bioprobe.encoders import load_encoder
from bioprobe.models import resolve_model_entry, rule_params
from bioprobe.store import AudioWriter, read_embeddings
from bioprobe.tiny import save_tiny_aves_model, save_tiny_hf_model

KINDS = ("hubert", "wav2vec2", "wav2vec2_stable", "wavlm", "aves", "random_init")


@pytest.fixture(scope="module")
def entries(tmp_path_factory):
    root = tmp_path_factory.mktemp("max_layer_models")
    out = {kind: {"source": "huggingface", "id": str(save_tiny_hf_model(kind, root / kind, seed=1))}
           for kind in ("hubert", "wav2vec2", "wav2vec2_stable", "wavlm")}
    config, weights = save_tiny_aves_model(root / "aves", seed=1)
    out["aves"] = {"source": "aves", "config_url": str(config), "weights_url": str(weights)}
    out["random_init"] = {"source": "random_init", "of": out["wavlm"], "seed": 3}
    return out


def _blocks(encoder):
    model = encoder.model.inner if hasattr(encoder.model, "inner") else encoder.model
    inner = model.encoder
    return inner.transformer.layers if hasattr(inner, "transformer") else inner.layers


@pytest.mark.parametrize("kind", KINDS)
def test_cut_model_equals_the_first_layers_of_the_full_pass(entries, tmp_path, kind):
    full = load_encoder(kind, entries[kind], tmp_path / "cache")
    wave = torch.randn(2, 9000, generator=torch.Generator().manual_seed(0)) * 0.3
    with torch.inference_mode():
        reference = full(wave)  # [3, B, T, D]: the tiny models have 2 blocks
    for k in (0, 1, 2):
        cut = load_encoder(kind, {**entries[kind], "max_layer": k}, tmp_path / "cache")
        assert cut.n_layers == k + 1 and len(_blocks(cut)) == k  # the blocks above k are gone
        assert cut.provenance["max_layer"] == k and cut.provenance["n_blocks_full"] == 2
        with torch.inference_mode():
            out = cut(wave)
        assert out.shape == (k + 1, *reference.shape[1:])
        torch.testing.assert_close(out, reference[: k + 1], atol=1e-6, rtol=1e-6)


def test_the_blocks_above_are_never_run(entries, tmp_path):
    cut = load_encoder("hubert", {**entries["hubert"], "max_layer": 1}, tmp_path / "cache")
    calls = []
    for block in _blocks(cut):
        block.register_forward_hook(lambda *_: calls.append(1))
    with torch.inference_mode():
        cut(torch.zeros(1, 8000))
    assert len(calls) == 1


def test_out_of_range_max_layer_is_refused(entries, tmp_path):
    with pytest.raises(ValueError, match="max_layer must be an integer in 0..2"):
        load_encoder("hubert", {**entries["hubert"], "max_layer": 3}, tmp_path / "cache")


def test_embedding_file_holds_layers_0_to_k(entries, tmp_path):
    audio = tmp_path / "audio16k.h5"
    rng = np.random.default_rng(0)
    with AudioWriter(audio, {"sample_rate": 16000, "resampler": "soxr_hq", "resampler_version": "test"}) as writer:
        for i, n in enumerate((8000, 12000, 5000)):
            writer.append(f"c{i}", (0.3 * rng.standard_normal(n)).astype(np.float32))
    embed_dataset(audio, tmp_path / "full.h5", "m", entries["wavlm"], {}, tmp_path / "cache", progress=False)
    embed_dataset(audio, tmp_path / "cut.h5", "m", {**entries["wavlm"], "max_layer": 1}, {}, tmp_path / "cache", progress=False)
    full, ids_full, _ = read_embeddings(tmp_path / "full.h5")
    cut, ids_cut, attrs = read_embeddings(tmp_path / "cut.h5")
    assert ids_full == ids_cut and cut.shape == (3, 2, full.shape[2]) and attrs["max_layer"] == 1
    np.testing.assert_allclose(cut, full[:, :2], atol=1e-6)


def test_unset_max_layer_leaves_rule_params_unchanged():
    models = {"h": {"source": "huggingface", "id": "org/h", "label": "H"},
              "cut": {"source": "huggingface", "id": "org/h", "max_layer": 6},
              "r": {"source": "random_init", "of": "cut"}}
    assert rule_params("h", models) == {"source": "huggingface", "id": "org/h"}  # no max_layer key when unset
    assert rule_params("cut", models)["max_layer"] == 6
    # random_init copies the architecture of `of`, not how far the other entry runs it
    assert "max_layer" not in resolve_model_entry("r", models)["of"]
