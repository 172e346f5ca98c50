"""One masked encoder pass over clips of unequal length, exactly equal to one clip at a time.

Padding a batch of waveforms changes the features of the base models (their CNN's GroupNorm
normalises over the whole input), so the exact way to batch clips of unequal length is:

1. run each clip's CNN feature extractor and feature projection alone, on its own samples;
2. zero-pad the projected frames to the batch's longest clip and run the transformer encoder
   *once* with a boolean key-padding mask (``True`` = a real frame);
3. read every layer's frames with forward hooks, and keep each clip's own frames.

Why the encoder pass is exact: the encoder zeroes padded frames before its positional
convolution, whose own padding is zeros too, so a real frame sees what it sees alone; attention
ignores masked keys; layer norms and feed-forwards act frame by frame. Some families mix
neighbouring frames again after the padded frames stop being zeros (data2vec-audio's stacked
positional convolutions, the depthwise convolution inside each wav2vec2-conformer layer): those
modules are run clip by clip on each clip's own frames (:func:`per_clip`), which makes the pass
exact again. :data:`HF_PER_CLIP_MODULES` lists, per model type, which modules that is; a model
type not listed there is not batched this way (the embed step falls back to equal-length
batches). Every listed family is checked against one clip at a time in tests/test_masked.py.

Layers are what the unmasked path returns: for Hugging Face models, index 0 is the input of the
first transformer layer and 1..N are the layers' outputs (transformers' own ``hidden_states``,
captured the same way, with hooks); for AVES (torchaudio), see :mod:`.aves`.
"""

from __future__ import annotations

import contextlib
from typing import Sequence

# Model types batched with one masked encoder pass, and the submodules (dotted paths under the
# model, ``*`` for every layer) that mix frames of padding into real frames unless run per clip.
HF_PER_CLIP_MODULES: dict[str, tuple[str, ...]] = {
    "hubert": (),
    "wav2vec2": (),
    "wavlm": (),  # relative position bias depends on frame offsets only
    "unispeech": (),
    "unispeech-sat": (),
    "data2vec-audio": ("encoder.pos_conv_embed",),  # conv -> LayerNorm -> GELU, several times
    "wav2vec2-conformer": ("encoder.layers.*.conv_module",),  # depthwise conv inside each layer
}


def pad_frames(sequences: Sequence):
    """Stack ``[frames_i, dim]`` tensors, zero-padded to the longest: ``([B, T, dim], n_frames [B] long)``."""
    import torch

    n_frames = torch.tensor([int(s.shape[0]) for s in sequences], dtype=torch.long)
    padded = torch.nn.utils.rnn.pad_sequence(list(sequences), batch_first=True)
    return padded, n_frames


def frame_mask(n_frames, length: int, device):
    """Boolean ``[B, length]`` mask, ``True`` on each clip's real frames.

    Boolean on purpose: ``~`` on an integer mask flips bits (-1, -2) and then indexes instead of
    masking.
    """
    import torch

    n_frames = n_frames.to(device)
    return torch.arange(length, device=device)[None, :] < n_frames[:, None]


def zero_padding(out, n_frames):
    """Set padded frames of ``[n_layers, B, T, dim]`` to 0 (they hold values of no clip)."""
    mask = frame_mask(n_frames, out.shape[2], out.device)
    return out * mask[None, :, :, None].to(out.dtype)


def resolve_modules(model, paths: Sequence[str]) -> list:
    """Submodules of ``model`` at dotted ``paths``; ``*`` expands over a ModuleList."""
    found = []
    for path in paths:
        nodes = [model]
        for part in path.split("."):
            if part == "*":
                nodes = [child for node in nodes for child in node]
            else:
                nodes = [getattr(node, part) for node in nodes]
        found.extend(nodes)
    return found


@contextlib.contextmanager
def per_clip(modules: Sequence, n_frames: Sequence[int]):
    """While active, each of ``modules`` (``[B, T, dim] -> [B, T, dim]``) runs clip by clip.

    ``n_frames``: each clip's frame count, as Python ints (known on the host, so no device read).

    Every clip goes through the module alone, on its own frames only; the padded frames of the
    output are zeros. This is exact for modules that mix frames over time (convolutions), which
    would otherwise see the padding.
    """
    import torch

    lengths = [int(n) for n in n_frames]
    originals = []

    def wrap(forward):
        def clip_by_clip(hidden_states, *args, **kwargs):
            outs = [forward(hidden_states[j : j + 1, :n], *args, **kwargs)[0] for j, n in enumerate(lengths)]
            return torch.nn.utils.rnn.pad_sequence(outs, batch_first=True, padding_value=0.0)

        return clip_by_clip

    try:
        for module in modules:
            originals.append((module, module.__dict__.get("forward")))
            module.forward = wrap(module.forward)
        yield
    finally:
        for module, original in originals:
            if original is None:
                del module.forward
            else:
                module.forward = original


@contextlib.contextmanager
def layer_outputs(layers: Sequence):
    """Collect ``[input of layers[0], output of each layer]``, as transformers' ``hidden_states``."""
    captured: list = []

    def hook(module, args, output):
        if not captured:
            captured.append(args[0])
        captured.append(output[0] if isinstance(output, tuple) else output)

    handles = [layer.register_forward_hook(hook) for layer in layers]
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def hf_masked_forward(model, waves: Sequence, n_layers: int):
    """All layers of a transformers wav2vec2-family ``model`` for clips of unequal length.

    ``waves``: 1-D float tensors on the model's device. Returns ``(out [n_layers, B, T, dim],
    n_frames [B])``: ``T`` is the longest clip's frame count, padded frames are zeros.
    """
    import torch

    model_type = model.config.model_type
    if model_type not in HF_PER_CLIP_MODULES:
        raise ValueError(f"masked batching is not known to be exact for model type {model_type!r}")
    projected = []
    for wave in waves:  # the CNN (GroupNorm over the whole input) and projection, clip by clip
        features = model.feature_extractor(wave[None]).transpose(1, 2)
        hidden = model.feature_projection(features)
        projected.append((hidden[0] if isinstance(hidden, tuple) else hidden)[0])
    hidden, n_frames = pad_frames(projected)
    mask = frame_mask(n_frames, hidden.shape[1], hidden.device)
    encoder = model.encoder
    lengths = [int(h.shape[0]) for h in projected]
    with layer_outputs(encoder.layers) as captured, per_clip(resolve_modules(model, HF_PER_CLIP_MODULES[model_type]), lengths):
        encoder(hidden, attention_mask=mask)
    if len(captured) != n_layers:
        raise RuntimeError(f"{type(model).__name__}: expected {n_layers} hidden states, got {len(captured)}")
    return zero_padding(torch.stack([h.float() for h in captured], dim=0), n_frames), n_frames


def torchaudio_masked_forward(model, waves: Sequence, study_layer0: bool = False):
    """All layers of a torchaudio ``Wav2Vec2Model`` (AVES) for clips of unequal length.

    The CNN runs clip by clip; the encoder runs once with ``lengths`` (torchaudio zeroes the
    padded frames and masks them out of attention). Layer 0 is the transformer input (as in
    :class:`.aves.AvesEncoder`), or with ``study_layer0`` the feature projection's output.
    Returns ``(out [n_layers, B, T, dim], n_frames [B])``, padded frames zeros.
    """
    import torch

    features = [model.feature_extractor(wave[None], None)[0][0] for wave in waves]  # [frames_i, conv_dim]
    padded, n_frames = pad_frames(features)
    encoder = model.encoder
    x, mask = encoder._preprocess(padded, n_frames.to(padded.device))  # projection; padding zeroed, additive mask
    projected = x
    x = encoder.transformer._preprocess(x)  # + positional conv (+ LayerNorm if post-LN)
    layers = [projected if study_layer0 else x]
    position_bias = None
    for layer in encoder.transformer.layers:
        x, position_bias = layer(x, mask, position_bias=position_bias)
        layers.append(x)
    return zero_padding(torch.stack([h.float() for h in layers], dim=0), n_frames), n_frames
