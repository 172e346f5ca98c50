"""Encoders: tiny models in the real formats, loaded through the real code paths.

Tolerance: batched vs one-clip-at-a-time outputs agree within 1e-5 (float32 on CPU).
"""

import json

import pytest
import torch

from bioprobe.encoders import load_encoder
from bioprobe.models import resolve_model_entry
from bioprobe.tiny import save_tiny_aves_model, save_tiny_hf_model
from bioprobe.weights import read_lock

TOL = 1e-5
HF_KINDS = ("hubert", "wav2vec2", "wavlm")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Folders of tiny models: HF kinds by name, plus the AVES (config, weights) pair."""
    root = tmp_path_factory.mktemp("tiny_models")
    models = {kind: save_tiny_hf_model(kind, root / kind, seed=0) for kind in HF_KINDS + ("wav2vec2_ctc", "wav2vec2_stable")}
    models["aves"] = save_tiny_aves_model(root / "aves", seed=0)
    return models


def entry(tiny, kind):
    if kind == "aves":
        config, weights = tiny["aves"]
        return {"source": "aves", "config_url": str(config), "weights_url": str(weights)}
    if kind in ("logmel", "mfcc"):
        return {"source": kind, "deltas": True}
    return {"source": "huggingface", "id": str(tiny[kind])}


def waves(batch, samples, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, samples, generator=gen) * 0.3


@pytest.mark.parametrize("kind", HF_KINDS + ("aves", "logmel", "mfcc"))
def test_batched_equals_one_clip_at_a_time(tiny, tmp_path, kind):
    encoder = load_encoder(kind, entry(tiny, kind), tmp_path / "cache")
    batch = waves(4, 8000)
    with torch.inference_mode():
        together = encoder(batch)  # [L, 4, T, D]
        alone = torch.cat([encoder(batch[i : i + 1]) for i in range(4)], dim=1)
    assert together.shape == alone.shape
    assert together.shape[:2] == (encoder.n_layers, 4) and together.shape[3] == encoder.dim
    torch.testing.assert_close(together, alone, atol=TOL, rtol=TOL)


@pytest.mark.parametrize("kind", HF_KINDS + ("aves",))
def test_geometry_of_wav2vec2_style_models(tiny, tmp_path, kind):
    encoder = load_encoder(kind, entry(tiny, kind), tmp_path / "cache")
    assert (encoder.n_layers, encoder.dim, encoder.hop_samples, encoder.min_input_samples) == (3, 32, 320, 400)
    with torch.inference_mode():
        out = encoder(waves(1, 16000))
    assert out.shape == (3, 1, 49, 32)  # 1 s -> 49 frames, as the real models
    assert out.dtype == torch.float32


def test_hf_encoder_returns_the_models_hidden_states(tiny, tmp_path):
    from transformers import AutoModel

    encoder = load_encoder("hubert", entry(tiny, "hubert"), tmp_path / "cache")
    reference = AutoModel.from_pretrained(tiny["hubert"], dtype=torch.float32).eval()
    wave = waves(2, 6000)
    with torch.inference_mode():
        ours = encoder(wave)
        theirs = reference(wave, output_hidden_states=True).hidden_states
    assert len(theirs) == ours.shape[0]
    for layer, hidden in enumerate(theirs):
        torch.testing.assert_close(ours[layer], hidden, atol=0, rtol=0)
    assert encoder.provenance["attention_mask"] is False
    assert encoder.provenance["feat_extract_norm"] == "group"


def test_asr_checkpoint_loads_encoder_only(tiny, tmp_path):
    from transformers import Wav2Vec2ForCTC

    encoder = load_encoder("w2v2_ft", entry(tiny, "wav2vec2_ctc"), tmp_path / "cache")
    assert encoder.provenance["model_class"] == "Wav2Vec2Model"
    ctc = Wav2Vec2ForCTC.from_pretrained(tiny["wav2vec2_ctc"], dtype=torch.float32).eval()
    wave = waves(1, 5000)
    with torch.inference_mode():
        expected = ctc(wave, output_hidden_states=True).hidden_states
        ours = encoder(wave)
    for layer, hidden in enumerate(expected):
        torch.testing.assert_close(ours[layer], hidden, atol=TOL, rtol=TOL)


@pytest.mark.parametrize("kind", ["hubert", "wav2vec2_stable"])
def test_aves_layer0_matches_hf_hidden_state_0(tiny, kind):
    """The torchaudio path (AVES) with the same weights gives HF's hidden states, index 0 included."""
    from torchaudio.models.wav2vec2.utils import import_huggingface_model
    from transformers import AutoModel

    from bioprobe.encoders.aves import AvesEncoder

    hf = AutoModel.from_pretrained(tiny[kind], dtype=torch.float32).eval()
    ported = import_huggingface_model(hf).eval()
    config = {"encoder_embed_dim": 32, "encoder_num_layers": 2, "extractor_conv_layer_config": [[16, 10, 5]] + [[16, 3, 2]] * 4 + [[16, 2, 2]] * 2}
    encoder = AvesEncoder("ported", ported, config, {}, "cpu")
    wave = waves(2, 7000)
    with torch.inference_mode():
        expected = hf(wave, output_hidden_states=True).hidden_states
        ours = encoder(wave)
    assert ours.shape[0] == len(expected) == 3
    for layer, hidden in enumerate(expected):
        torch.testing.assert_close(ours[layer], hidden, atol=1e-5, rtol=1e-4)


def test_aves_layer0_study_is_the_projected_cnn_features(tiny, tmp_path):
    """layer0: study is what the authors hooked (post_extract_proj = torchaudio's feature_projection)."""
    import torch.nn.functional as F

    from bioprobe.encoders.aves import load_aves_state

    study = load_encoder("aves_s", {**entry(tiny, "aves"), "layer0": "study"}, tmp_path / "cache")
    default = load_encoder("aves_t", entry(tiny, "aves"), tmp_path / "cache")
    explicit = load_encoder("aves_e", {**entry(tiny, "aves"), "layer0": "transformer_input"}, tmp_path / "cache")
    assert (study.layer0, default.layer0, explicit.layer0) == ("study", "transformer_input", "transformer_input")
    assert study.describe()["layer0"] == "study"
    wave = waves(2, 7000)
    # 1. a forward hook on the torchaudio model's encoder.feature_projection, through its own forward
    model = study.model
    hooked = []
    handle = model.encoder.feature_projection.register_forward_hook(lambda mod, inp, out: hooked.append(out))
    with torch.inference_mode():
        layers, _ = model.extract_features(wave)
        ours = study(wave)
        today = default(wave)
        again = explicit(wave)
    handle.remove()
    assert len(hooked) == 2  # extract_features, then our forward
    torch.testing.assert_close(ours[0], hooked[0], atol=0, rtol=0)
    # 2. Linear(LayerNorm(CNN features)), by hand from the state dict
    from bioprobe.encoders.aves import build_aves_model, read_aves_config

    bare = build_aves_model("bare", read_aves_config(tiny["aves"][0], "bare")).eval()  # the saved weights, loaded apart
    load_aves_state("bare", bare, tiny["aves"][1])
    sd = bare.state_dict()
    with torch.inference_mode():
        cnn, _ = bare.feature_extractor(wave, None)  # [B, frames, conv_dim]
        normed = F.layer_norm(cnn, (cnn.shape[-1],), sd["encoder.feature_projection.layer_norm.weight"],
                              sd["encoder.feature_projection.layer_norm.bias"], eps=1e-5)
        by_hand = F.linear(normed, sd["encoder.feature_projection.projection.weight"], sd["encoder.feature_projection.projection.bias"])
    torch.testing.assert_close(ours[0], by_hand, atol=1e-5, rtol=1e-5)
    # 3. transformer_input (the default, and the value before layer0 existed) differs from it...
    assert (today[0] - by_hand).abs().max() > 1e-2
    torch.testing.assert_close(again, today, atol=0, rtol=0)
    # ...and is the transformer's input step applied to the projection; layers 1..N do not change
    with torch.inference_mode():
        transformer_input = model.encoder.transformer._preprocess(hooked[0])
    torch.testing.assert_close(today[0], transformer_input, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(ours[1:], today[1:], atol=0, rtol=0)
    torch.testing.assert_close(ours[-1], layers[-1], atol=1e-5, rtol=1e-5)


def test_aves_layer0_is_checked_and_inherited_by_random_init(tiny, tmp_path):
    cache = tmp_path / "cache"
    models = {"aves_bio": {**entry(tiny, "aves"), "layer0": "study"}}
    r_aves = load_encoder("rand_aves", {"source": "random_init", "of": "aves_bio"}, cache, models=models)
    assert r_aves.layer0 == "study" and r_aves.provenance["layer0"] == "study"
    with pytest.raises(ValueError, match="layer0 must be one of study, transformer_input"):
        load_encoder("bad", {**entry(tiny, "aves"), "layer0": "cnn"}, cache)


def test_aves_loads_legacy_and_current_weight_norm_keys(tmp_path):
    legacy = save_tiny_aves_model(tmp_path / "legacy", seed=3, legacy_keys=True)
    current = save_tiny_aves_model(tmp_path / "current", seed=3, legacy_keys=False)
    assert "weight_g" in "".join(torch.load(legacy[1], weights_only=True))
    outs = []
    for name, (config, weights) in (("legacy", legacy), ("current", current)):
        enc = load_encoder(name, {"source": "aves", "config_url": str(config), "weights_url": str(weights)}, tmp_path / "cache")
        with torch.inference_mode():
            outs.append(enc(waves(1, 4000)))
    torch.testing.assert_close(outs[0], outs[1], atol=0, rtol=0)


def test_aves_weights_that_do_not_fit_the_config_are_an_error(tmp_path):
    config, weights = save_tiny_aves_model(tmp_path / "a")
    cfg = json.loads(config.read_text())
    cfg["encoder_num_layers"] = 3  # state dict has 2 layers
    config.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="does not match the AVES config"):
        load_encoder("bad", {"source": "aves", "config_url": str(config), "weights_url": str(weights)}, tmp_path / "cache")


def test_random_init_is_seeded_and_fetches_config_only(tiny, tmp_path):
    cache = tmp_path / "cache"
    models = {"hubert": entry(tiny, "hubert"), "aves_bio": entry(tiny, "aves")}
    pretrained = load_encoder("hubert", models["hubert"], cache)
    # the tiny model itself was drawn with seed 0, so use other seeds here
    a = load_encoder("rand_a", {"source": "random_init", "of": "hubert", "seed": 7}, cache, models=models)
    b = load_encoder("rand_b", {"source": "random_init", "of": str(tiny["hubert"]), "seed": 7}, cache)
    c = load_encoder("rand_c", {"source": "random_init", "of": "hubert", "seed": 8}, cache, models=models)
    assert a.source == "random_init" and a.n_layers == pretrained.n_layers and a.dim == pretrained.dim
    assert a.provenance["weights_sha256"] == b.provenance["weights_sha256"] != c.provenance["weights_sha256"]
    assert sorted(read_lock("rand_a", cache)["files"]) == ["config.json", "preprocessor_config.json"]
    wave = waves(1, 8000)
    with torch.inference_mode():
        assert not torch.allclose(a(wave), pretrained(wave))
        torch.testing.assert_close(a(wave), b(wave), atol=0, rtol=0)
    r_aves = load_encoder("rand_aves", {"source": "random_init", "of": "aves_bio"}, cache, models=models)
    assert r_aves.n_layers == 3 and list(read_lock("rand_aves", cache)["files"]) == ["config"]
    again = load_encoder("rand_aves2", {"source": "random_init", "of": "aves_bio"}, cache, models=models)
    assert r_aves.provenance["weights_sha256"] == again.provenance["weights_sha256"]


def test_feature_baselines(tmp_path):
    import torchaudio

    logmel = load_encoder("logmel", {"source": "logmel"}, tmp_path)
    mfcc = load_encoder("mfcc", {"source": "mfcc", "n_mfcc": 13, "deltas": True}, tmp_path)
    assert (logmel.n_layers, logmel.dim, logmel.hop_samples) == (1, 64, 160)
    assert (mfcc.n_layers, mfcc.dim) == (3, 13)
    wave = waves(2, 16000)
    with torch.inference_mode():
        out = logmel(wave)
        expected = torch.log(
            torchaudio.transforms.MelSpectrogram(16000, n_fft=400, hop_length=160, n_mels=64)(wave) + 1e-6
        ).transpose(1, 2)
        assert out.shape == (1, 2, 101, 64)
        torch.testing.assert_close(out[0], expected)
        deltas = mfcc(wave)
        torch.testing.assert_close(deltas[1], torchaudio.functional.compute_deltas(deltas[0].transpose(1, 2)).transpose(1, 2))


def test_bad_entries_give_clear_errors(tiny, tmp_path):
    with pytest.raises(ValueError, match="unknown source 'fairseq'"):
        load_encoder("m", {"source": "fairseq"}, tmp_path)
    with pytest.raises(ValueError, match="missing required key 'id'"):
        load_encoder("m", {"source": "huggingface"}, tmp_path)
    with pytest.raises(ValueError, match="missing required key 'weights_url'"):
        load_encoder("m", {"source": "aves", "config_url": "x"}, tmp_path)
    with pytest.raises(ValueError, match="n_mfcc"):
        load_encoder("m", {"source": "mfcc", "n_mfcc": 80, "n_mels": 40}, tmp_path)
    with pytest.raises(ValueError, match="must be a huggingface or aves model"):
        load_encoder("r", {"source": "random_init", "of": "lm"}, tmp_path, models={"lm": {"source": "logmel"}})
    with pytest.raises(ValueError, match="neither a model under models"):
        load_encoder("r", {"source": "random_init", "of": "hubert"}, tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_encoder("m", {"source": "huggingface", "id": str(tmp_path / "nowhere")}, tmp_path)


def test_unsupported_model_type_and_missing_weights_are_errors(tmp_path):
    from safetensors.torch import load_file, save_file
    from transformers import BertConfig, BertModel

    bert = tmp_path / "bert"
    BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, vocab_size=50)).save_pretrained(bert)
    with pytest.raises(ValueError, match="'bert' model"):
        load_encoder("bert", {"source": "huggingface", "id": str(bert)}, tmp_path / "cache")

    broken = save_tiny_hf_model("hubert", tmp_path / "broken")
    state = load_file(broken / "model.safetensors")
    save_file({k: v for k, v in state.items() if "encoder.layers.1." not in k}, broken / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match="lacks encoder weights"):
        load_encoder("broken", {"source": "huggingface", "id": str(broken)}, tmp_path / "cache")


def test_resolve_model_entry_inlines_random_init_architecture(tiny, tmp_path):
    models = {"hubert": {**entry(tiny, "hubert"), "label": "HuBERT"}, "rand": {"source": "random_init", "of": "hubert", "seed": 7}}
    resolved = resolve_model_entry("rand", models)
    assert resolved["of"] == entry(tiny, "hubert")  # descriptive keys dropped
    assert resolve_model_entry("hubert", models) == models["hubert"]
    encoder = load_encoder("rand", resolved, tmp_path / "cache")  # no models= needed
    named = load_encoder("rand2", models["rand"], tmp_path / "cache", models=models)
    assert encoder.provenance["weights_sha256"] == named.provenance["weights_sha256"]
    with pytest.raises(KeyError, match="not under models"):
        resolve_model_entry("nope", models)
