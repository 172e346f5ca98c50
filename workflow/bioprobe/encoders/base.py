"""The interface every encoder implements (one class, no torch import at module level)."""

from __future__ import annotations

SAMPLE_RATE = 16000


class Encoder:
    """Common interface of all encoders (subclasses set the attributes in ``__init__``).

    Attributes:
        name: the model's name in the config (``hubert``, ``aves_bio``, ...).
        source: one of :data:`bioprobe.models.MODEL_SOURCES`.
        n_layers: number of layers returned by :meth:`forward` (13 for base models: index 0 is
            the transformer input, 1..12 the transformer layers).
        dim: feature size of every layer.
        hop_samples: input samples between consecutive output frames (320 for wav2vec2-style).
        min_input_samples: shortest input that yields at least one frame.
        provenance: what identifies the weights (id, revision, resolved commit, sha256s, seed).
        device: the torch device the encoder runs on.
        standardize_input: whether the embed step standardises each clip (zero mean, unit
            variance) before :meth:`forward`, because the checkpoint declares it (``do_normalize``).
    """

    name: str
    source: str
    n_layers: int
    dim: int
    hop_samples: int
    min_input_samples: int
    sample_rate: int = SAMPLE_RATE
    provenance: dict
    device: object = "cpu"
    standardize_input: bool = False

    def forward(self, wave):
        """``wave [batch, samples]`` float32 tensor on ``self.device`` -> ``[n_layers, batch, frames, dim]``."""
        raise NotImplementedError

    def __call__(self, wave):
        return self.forward(wave)

    def describe(self) -> dict:
        """Attributes recorded in the embedding file."""
        return {
            "model": self.name,
            "source": self.source,
            "n_layers": self.n_layers,
            "dim": self.dim,
            "hop_samples": self.hop_samples,
            "standardize_input": bool(self.standardize_input),
            **{k: v for k, v in self.provenance.items() if k not in ("name", "source")},
        }
