"""``max_layer``: run a model only up to transformer block k (the blocks above are never run).

Applied once at load time (:func:`bioprobe.encoders.load_encoder`), whatever the source's
forward pass: the block list is cut to its first k blocks, so the encoder returns layers
0..k and the embedding file holds ``k + 1`` layers.

- Hugging Face models: ``model.encoder.layers`` (a ``ModuleList``) keeps blocks 1..k. In the
  pre-LN ("stable layer norm") models, e.g. wav2vec2-large, transformers applies the encoder's
  final LayerNorm to the *last* hidden state only; a full pass's layer k < N is taken before it,
  so a cut model drops that LayerNorm too, and its layers equal the full pass's layers 0..k.
- The torchaudio port (AVES): ``model.encoder.transformer.layers`` keeps blocks 1..k (the
  encoder's forward loops over that list).

``max_layer`` equal to the model's block count changes nothing. ``max_layer: 0`` keeps the front
end only (CNN, feature projection, positional convolution): transformers 5 records hidden
states with hooks on the blocks, so a model without blocks records none; its output's
``last_hidden_state`` is then layer 0 and :class:`FrontEndOnly` returns it as the only hidden
state, whatever arguments the encoder passes the model.
"""

from __future__ import annotations


def check_max_layer(name: str, max_layer, n_blocks: int) -> int:
    """``max_layer`` as an int in ``0..n_blocks``, or a ``ValueError`` naming the model."""
    if not isinstance(max_layer, int) or isinstance(max_layer, bool) or not 0 <= max_layer <= n_blocks:
        raise ValueError(f"model {name!r}: max_layer must be an integer in 0..{n_blocks} (the model has {n_blocks} "
                         f"transformer blocks), got {max_layer!r}")
    return max_layer


def _front_end_only_class():
    import torch

    class FrontEndOnly(torch.nn.Module):
        """A transformers model without blocks whose ``hidden_states`` is ``(last_hidden_state,)``."""

        def __init__(self, model):
            super().__init__()
            self.inner = model

        def forward(self, *args, **kwargs):
            out = self.inner(*args, **kwargs)
            if kwargs.get("output_hidden_states"):
                out.hidden_states = (out.last_hidden_state,)
            return out

        def __getattr__(self, name):  # config, helpers of the wrapped model
            try:
                return super().__getattr__(name)
            except AttributeError:
                return getattr(super().__getattr__("inner"), name)

    return FrontEndOnly


def truncate_encoder(encoder, max_layer):
    """Cut ``encoder`` (a Hugging Face or AVES/torchaudio encoder) after block ``max_layer``, in place."""
    import torch

    n_blocks = encoder.n_layers - 1
    max_layer = check_max_layer(encoder.name, max_layer, n_blocks)
    model = getattr(encoder, "model", None)
    inner = getattr(model, "encoder", None)
    if inner is not None and hasattr(inner, "transformer") and hasattr(inner.transformer, "layers"):  # torchaudio
        inner.transformer.layers = inner.transformer.layers[:max_layer]
    elif inner is not None and isinstance(getattr(inner, "layers", None), torch.nn.ModuleList):  # transformers
        inner.layers = inner.layers[:max_layer]
        if max_layer < n_blocks and getattr(model.config, "do_stable_layer_norm", False):
            inner.layer_norm = torch.nn.Identity()  # see the module docstring
        model.config.num_hidden_layers = max_layer
        if max_layer == 0:
            encoder.model = _front_end_only_class()(model)
    else:
        raise ValueError(f"model {encoder.name!r}: max_layer applies to transformer models (huggingface, aves, random_init), "
                         f"not to source {encoder.source!r}")
    encoder.n_layers = max_layer + 1
    encoder.provenance = {**encoder.provenance, "max_layer": max_layer, "n_blocks_full": n_blocks}
    return encoder
