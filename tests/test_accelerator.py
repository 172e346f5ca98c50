"""The accelerator code paths, checked without a GPU: every tensor a step uses must be on one device.

The embed step (each encoder family's forward and masked pass, pooling's device-side reductions)
and the probe trainer (init, epoch order, one StackedMLP + StackedAdam step, evaluation, dropping
stopped groups, kNN) run on a fake accelerator (tests/fakedevice.py: FakeTensorMode, where an op
mixing a CPU tensor with an accelerator tensor raises as it would on CUDA). The device choice
(``auto`` / ``cuda`` / ``cuda:N``) and the autocast set-up are checked with torch.cuda's answers
replaced, since this machine has no GPU.
"""

import numpy as np
import pytest
import torch

from fakedevice import DEVICE, fake_accelerator, on

HF_KINDS = ("hubert", "wav2vec2", "wavlm", "wav2vec2_stable", "data2vec_audio", "unispeech_sat", "wav2vec2_conformer")
LENGTHS = (8000, 6400, 7000)  # samples: three clips of unequal length (24, 19 and 21 frames)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Config files of every tiny transformers family (configs only: the weights are fake)."""
    from bioprobe.tiny import TINY_WINDOWED_KINDS, feature_extractor, tiny_hf_config

    root = tmp_path_factory.mktemp("configs")
    out = {}
    for kind in (*HF_KINDS, *TINY_WINDOWED_KINDS):
        config = tiny_hf_config(kind)
        config.save_pretrained(root / kind)
        feature_extractor(kind, config).save_pretrained(root / kind)
        out[kind] = root / kind
    return out


def build_encoder(kind: str, folders, device):
    """The encoder of ``kind`` on ``device``, built by the pipeline's own classes (inside fake mode)."""
    if kind == "aves":
        from bioprobe.encoders.aves import AvesEncoder, build_aves_model
        from bioprobe.tiny import tiny_aves_config

        config = tiny_aves_config()
        return AvesEncoder(kind, build_aves_model(kind, config), config, {}, device)
    if kind in ("logmel", "mfcc"):
        from bioprobe.encoders.baselines import build_feature_encoder

        return build_feature_encoder(kind, {"source": kind, "deltas": True}, device)
    from transformers import AutoConfig, AutoModel

    from bioprobe.encoders.huggingface import build_hf_encoder

    model = AutoModel.from_config(AutoConfig.from_pretrained(folders[kind]))
    return build_hf_encoder(kind, model, folders[kind], {}, device)


def clips():
    rng = np.random.default_rng(0)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in LENGTHS]


@pytest.mark.parametrize("kind", [*HF_KINDS, "aves", "logmel", "mfcc"])
def test_embed_batch_runs_on_the_accelerator(kind, folders):
    """Equal-length and masked batches, and a long clip's chunk: numpy in, pooled moments on the device."""
    from bioprobe.embed import finite_clips, run_forward, run_masked
    from bioprobe.pooling import batch_moment_tensors, chunk_moment_tensors, masked_moment_tensors

    waves = clips()
    # torchaudio's mel filterbank set-up reads values: a baseline is built on the device beforehand
    built = build_encoder(kind, folders, torch.device(DEVICE)) if kind in ("logmel", "mfcc") else None
    with fake_accelerator() as device:
        encoder = built or build_encoder(kind, folders, device)
        assert encoder.device == device
        module = encoder.model if hasattr(encoder, "model") else encoder.transform
        assert on(device, *module.parameters(), *module.buffers())
        out = run_forward(encoder, np.stack([w[: LENGTHS[1]] for w in waves]), "fp32")
        count, mean, m2 = batch_moment_tensors(out)
        assert on(device, out, finite_clips(out), mean, m2)
        assert out.shape[:2] == (encoder.n_layers, len(waves)) and mean.shape == (encoder.n_layers, len(waves), encoder.dim)
        _count, mean, m2 = chunk_moment_tensors(out[:, 0, 2:])  # the frames one chunk of a long clip owns
        assert on(device, mean, m2) and mean.shape == (encoder.n_layers, encoder.dim)
        if encoder.masked_batching:
            out, n_frames = run_masked(encoder, waves, "fp32")
            counts, mean, m2 = masked_moment_tensors(out, n_frames)
            assert on(device, out, counts, mean, m2, finite_clips(out))
            longest = (max(LENGTHS) - encoder.min_input_samples) // encoder.hop_samples + 1
            assert out.shape[:3] == (encoder.n_layers, len(waves), longest)


@pytest.mark.parametrize("kind", ["whisper", "ast"])
def test_windowed_model_pass_runs_on_the_accelerator(kind, folders):
    """Whisper and AST: the front end gives CPU features (host side); the model pass runs on the device."""
    with fake_accelerator() as device:
        encoder = build_encoder(kind, folders, device)
        config = encoder.model.config
        assert on(device, *encoder.model.parameters())
        if kind == "whisper":  # what WhisperFeatureExtractor returns: CPU [rows, mel bins, 2 x positions]
            features = torch.zeros(2, config.num_mel_bins, 2 * config.max_source_positions)
            rows = encoder.rows_of_features(features, [7, 1500])
            assert on(device, *rows) and [r.shape[1] for r in rows] == [7, 1500]
        else:  # what ASTFeatureExtractor returns: CPU [rows, frames, mel bins]
            values = torch.zeros(2, config.max_length, config.num_mel_bins)
            grid, special = encoder.grid_of_values(values)
            patches = encoder.kept_patches(grid[:, 0], 5)
            assert on(device, grid, special, patches) and patches.shape[1] == 5 * encoder.n_freq


def fake_probe_inputs(device, n_clips=40, n_layers=3, dim=8, n_train=24, per_group=False, n_groups=3):
    features = torch.zeros(n_clips, n_layers, dim, device=device)
    labels = torch.zeros(n_clips, dtype=torch.long, device=device)
    train_rows = torch.arange(n_train, device=device)
    val_rows = torch.arange(n_train, n_clips, device=device)
    if per_group:  # label efficiency: each group its own draw of clips
        train_rows, val_rows = train_rows.expand(n_groups, -1).contiguous(), val_rows.expand(n_groups, -1).contiguous()
    return features, labels, train_rows, val_rows


@pytest.mark.parametrize("probe", ["mlp", "linear", "weighted_sum", "label_efficiency"])
def test_probe_trainer_steps_on_the_accelerator(probe):
    """Init, epoch order, two StackedMLP + StackedAdam steps (shared, then per-group rates),
    evaluation and dropping a stopped group, all on the device."""
    from bioprobe.probes.mlp import StackedAdam, StackedMLP
    from bioprobe.probes.train import epoch_order, predict_logits, train_step

    hidden = [] if probe == "linear" else [6, 4]
    mix = 3 if probe == "weighted_sum" else None
    with fake_accelerator() as device:
        features, labels, train_rows, val_rows = fake_probe_inputs(device, per_group=probe == "label_efficiency")
        group_layer = torch.tensor([0, 1, 2], device=device)
        generators = [torch.Generator().manual_seed(s) for s in (11, 12, 13)]
        model = StackedMLP(features.shape[-1], hidden, 3, mix_layers=mix)
        model.init(generators, device)
        optimizer = StackedAdam(model.tensors, np.full(3, 1e-3), 1e-4)
        assert on(device, *model.tensors, *optimizer.grads, *optimizer.exp_avg, *optimizer.exp_avg_sq, optimizer.steps)
        alive = np.arange(3)
        order = epoch_order(generators, alive, train_rows, torch.as_tensor(alive, device=device))
        assert on(device, order) and order.shape == (3, train_rows.shape[-1])
        log_likelihood = train_step(model, optimizer, features, labels, order[:, :8], group_layer, bool(mix), 3)
        optimizer.lrs[1] = 5e-4  # a group's rate lowered: one fused call per group
        train_step(model, optimizer, features, labels, order[:, 8:16], group_layer, bool(mix), 3)
        logits = predict_logits(model, None, features, val_rows, group_layer, bool(mix))
        assert on(device, log_likelihood, logits, *model.tensors) and logits.shape == (3, val_rows.shape[-1], 3)
        model.tensors = optimizer.keep([0, 2])  # group 1 stopped early
        train_step(model, optimizer, features, labels, order[[0, 2], 16:24], group_layer[[0, 2]], bool(mix), 3)
        assert on(device, *model.tensors, *optimizer.exp_avg) and model.tensors[-1].shape[0] == 2


def test_knn_posteriors_on_the_accelerator():
    from bioprobe.probes.knn import knn_posteriors

    with fake_accelerator() as device:
        x, y = torch.zeros(30, 8, device=device), torch.zeros(30, dtype=torch.long, device=device)
        for metric, weights in (("euclidean", "uniform"), ("cosine", "distance")):
            post = knn_posteriors(x[:20], y[:20], x[20:], 3, 5, metric, weights, chunk=4)
            assert on(device, post) and post.shape == (10, 3)


def test_a_cpu_tensor_in_a_device_step_is_caught():
    """The check itself: features left on the CPU fail the training step as they would on a GPU."""
    from bioprobe.probes.mlp import StackedAdam, StackedMLP
    from bioprobe.probes.train import train_step

    with fake_accelerator() as device:
        features, labels, train_rows, _val = fake_probe_inputs(device)
        model = StackedMLP(features.shape[-1], [6], 3)
        model.init([torch.Generator().manual_seed(s) for s in (1, 2, 3)], device)
        optimizer = StackedAdam(model.tensors, np.full(3, 1e-3), 0.0)
        index = train_rows[:8].expand(3, -1)
        with pytest.raises(RuntimeError, match="found two different devices"):
            train_step(model, optimizer, features.cpu(), labels, index, torch.tensor([0, 1, 2], device=device), False, 3)


def test_fused_adam_arguments_are_checked():
    """What torch's CUDA fused Adam needs (one device, one dtype, contiguous, a float32 step on the
    device) is checked when the optimiser is built, on any device, with an error saying what is wrong."""
    from bioprobe.probes.mlp import StackedAdam, check_fused_adam_lists

    params = [torch.zeros(2, 4, 3), torch.zeros(2, 5)]
    optimizer = StackedAdam(params, np.full(2, 1e-3), 0.0)
    lists = (optimizer.params, optimizer.grads, optimizer.exp_avg, optimizer.exp_avg_sq)
    check_fused_adam_lists(lists, optimizer.steps)
    bad_dtype = (lists[0], [optimizer.grads[0].double(), optimizer.grads[1]], lists[2], lists[3])
    with pytest.raises(ValueError, match=r"grads\[0\] is torch.float64"):
        check_fused_adam_lists(bad_dtype, optimizer.steps)
    strided = (lists[0], lists[1], [optimizer.exp_avg[0].transpose(1, 2).contiguous().transpose(1, 2), lists[2][1]], lists[3])
    with pytest.raises(ValueError, match=r"exp_avgs\[0\].*not a contiguous match"):
        check_fused_adam_lists(strided, optimizer.steps)
    with pytest.raises(ValueError, match="step counter is a torch.int64"):
        check_fused_adam_lists(lists, torch.zeros((), dtype=torch.long))
    with fake_accelerator() as device:
        with pytest.raises(ValueError, match="step counter .* on cpu; .* on the params' device meta"):
            check_fused_adam_lists([[p.to(device) for p in ps] for ps in lists], optimizer.steps)
        with pytest.raises(ValueError, match=r"params\[1\] is torch.float32 on cpu, params\[0\] torch.float32 on meta"):
            StackedAdam([params[0].to(device), params[1]], np.full(2, 1e-3), 0.0)


def test_device_choice(monkeypatch):
    """``auto`` picks CUDA where torch sees a GPU; ``cuda`` / ``cuda:N`` fail at once, naming the device, where it does not."""
    from bioprobe.encoders import resolve_device
    from bioprobe.probes import resolve_device as probe_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda") and probe_device("auto") == "cuda"
    assert resolve_device("cuda:1") == torch.device("cuda:1") and probe_device("cuda:1") == "cuda:1"
    for choose in (resolve_device, probe_device):
        with pytest.raises(RuntimeError, match=r"'cuda:2' requested but this machine has 2 CUDA device\(s\)"):
            choose("cuda:2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu") and probe_device("auto") == "cpu" and probe_device("cpu") == "cpu"
    for choose in (resolve_device, probe_device):
        with pytest.raises(RuntimeError, match="'cuda' requested but CUDA is not available"):
            choose("cuda")


def test_autocast_targets_the_encoder_device(recwarn):
    """bf16/fp16 autocast is set up for the encoder's device type (CUDA here), fp32 has none."""
    import contextlib

    from bioprobe.embed import autocast_context

    cuda = torch.device("cuda", 0)
    for precision, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
        context = autocast_context(cuda, precision)  # without a GPU torch warns and disables it
        assert isinstance(context, torch.autocast) and context.device == "cuda" and context.fast_dtype == dtype
    assert isinstance(autocast_context(cuda, "fp32"), contextlib.nullcontext)
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        autocast_context(torch.device("cpu"), "fp16")


@pytest.mark.parametrize("kind", ["hubert", "wavlm", "data2vec_audio", "wav2vec2_conformer", "aves", "whisper", "ast"])
def test_fp16_autocast_gives_finite_float32_features(kind, folders):
    """fp16 autocast (CPU's here; the pipeline allows fp16 on CUDA only) mixes float16 and float32
    layers: the equal-length and masked passes still return finite float32 frames near fp32's."""
    from bioprobe.embed import finite_clips, run_forward, run_masked

    torch.manual_seed(0)
    encoder = build_encoder(kind, folders, torch.device("cpu"))
    waves = clips()
    batch = np.stack([w[: LENGTHS[1]] for w in waves])
    exact = run_forward(encoder, batch, "fp32")
    with torch.autocast("cpu", dtype=torch.float16):  # run_forward's own fp32 context leaves it on
        low = run_forward(encoder, batch, "fp32")
        low_masked, _n = run_masked(encoder, waves, "fp32")
    for out in (low, low_masked):
        assert out.dtype == torch.float32 and bool(finite_clips(out).all())
    assert 0 < (low - exact).abs().max() < 0.1 * exact.abs().max()
