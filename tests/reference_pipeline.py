"""An independent reference of the study's extraction recipe, written from its description
(REFERENCE.md section 1), for tests/test_reference.py.

It imports nothing from bioprobe (test_reference checks this file's imports): soundfile to
read, soxr to resample to 16 kHz, peak normalisation, tiling to 5000 samples, a Hugging Face
forward with ``output_hidden_states=True``, and ``torch.mean`` / ``torch.std`` over time.
"""

import numpy as np
import soundfile as sf
import soxr
import torch

SAMPLE_RATE = 16000
MIN_SAMPLES = 5000


def load_16k(path, start=None, end=None):
    """Mono float32 at 16 kHz: channels averaged, soxr HQ, then [start, end) seconds cut out."""
    wave, sr = sf.read(str(path), dtype="float32", always_2d=True)
    wave = soxr.resample(wave.mean(axis=1), sr, SAMPLE_RATE, quality="HQ").astype(np.float32)
    if start is None:
        return wave
    return wave[int(round(start * SAMPLE_RATE)) : int(round(end * SAMPLE_RATE))]


def repeat_pad(wave, length):
    """Tile ``wave`` until it has ``length`` samples (no change if it is already that long)."""
    reps = -(-length // len(wave))
    return np.tile(wave, reps)[:length]


def pooled_batch(model, waves):
    """The authors' batch: peak-normalise, tile every clip to max(5000, longest), forward, pool all frames.

    Returns ``[batch, n_layers, 2 * dim]`` float64: per layer ``torch.mean`` and ``torch.std``
    (unbiased) over time, concatenated.
    """
    normed = [w / np.abs(w).max() for w in waves]
    target = max([MIN_SAMPLES] + [len(w) for w in normed])
    batch = torch.from_numpy(np.stack([repeat_pad(w, target) for w in normed]).astype(np.float32))
    with torch.no_grad():
        hidden = model(batch, output_hidden_states=True).hidden_states  # n_layers x [B, T, D]
    out = []
    for b in range(len(waves)):
        layers = [torch.cat([torch.mean(h[b], dim=0), torch.std(h[b], dim=0)]) for h in hidden]
        out.append(torch.stack(layers).double().numpy())
    return np.stack(out)


def pooled_one(model, wave):
    """One clip alone (the default config's recipe for clips of unique length)."""
    return pooled_batch(model, [wave])[0]
