"""Mean + standard deviation pooling over time, per layer, streamed over chunks.

The study pools every layer's frame sequence into the concatenation of its mean and standard
deviation over time (``dim`` -> ``2 * dim``). Long recordings are embedded chunk by chunk, so the
statistics are accumulated as a stream: each chunk contributes its frame count, mean and sum of
squared deviations (M2), merged with Chan et al.'s parallel update in float64. The result equals
pooling the stitched frame sequence, while memory holds one chunk at a time.

The standard deviation is the unbiased one by default (``ddof=1``, as ``torch.std`` in the
authors' code); ``ddof=0`` gives the population one. A clip with no more frames than ``ddof``
(one frame, with ``ddof=1``) gets std 0, not NaN: the authors patched their NaN rows by copying
the previous row's features, which depends on the order of clips and is not reproduced.
"""

from __future__ import annotations

import numpy as np

POOLING = "mean_std"
STD_DDOF = 1  # the default: torch.std's unbiased estimator, as in the authors' code
STD_DDOFS = (0, 1)


def chunk_moments(frames):
    """Per-layer frame count, mean and M2 of one chunk of frames.

    ``frames`` is a torch tensor or numpy array ``[n_layers, n_frames, dim]`` (any float dtype);
    returns ``(count, mean [n_layers, dim] float64, m2 [n_layers, dim] float64)`` as numpy arrays.
    Two passes (mean, then centred squares) keep float32 accumulation accurate on the device.
    """
    if hasattr(frames, "detach"):  # torch tensor: reduce on its device, move only [L, D] back
        count, mean, m2 = chunk_moment_tensors(frames)
        return count, mean.double().cpu().numpy(), m2.double().cpu().numpy()
    x = np.asarray(frames, dtype=np.float64)
    count = int(x.shape[1])
    mean = x.mean(axis=1)
    m2 = ((x - mean[:, None, :]) ** 2).sum(axis=1)
    return count, mean, m2


def batch_moments(frames):
    """Per-clip moments of a batch of equal-length clips.

    ``frames``: torch tensor ``[n_layers, batch, n_frames, dim]``; returns
    ``(count, mean [batch, n_layers, dim] float64, m2 [batch, n_layers, dim] float64)``.
    """
    count, mean, m2 = batch_moment_tensors(frames)
    to_np = lambda t: t.double().cpu().numpy().transpose(1, 0, 2)  # noqa: E731  [B, L, D]
    return count, to_np(mean), to_np(m2)


def masked_batch_moments(frames, n_frames):
    """Per-clip moments of a batch of clips of unequal length (a masked batch).

    ``frames``: torch tensor ``[n_layers, batch, T, dim]`` whose clip ``j`` holds ``n_frames[j]``
    real frames followed by padding; only the real frames are pooled. Returns
    ``(counts [batch] int64, mean [batch, n_layers, dim] float64, m2 [batch, n_layers, dim] float64)``.
    """
    counts, mean, m2 = masked_moment_tensors(frames, n_frames)
    to_np = lambda t: t.double().cpu().numpy().transpose(1, 0, 2)  # noqa: E731  [B, L, D]
    return counts.cpu().numpy(), to_np(mean), to_np(m2)


# The reductions themselves, on the frames' device (what the functions above move to the host).


def chunk_moment_tensors(frames):
    """``(count, mean [L, D], m2 [L, D])`` of torch ``frames [L, n_frames, dim]``, float32 on their device."""
    x = frames.detach().float()
    mean = x.mean(dim=1)  # [L, D]
    return int(x.shape[1]), mean, ((x - mean[:, None, :]) ** 2).sum(dim=1)


def batch_moment_tensors(frames):
    """``(count, mean [L, B, D], m2 [L, B, D])`` of torch ``frames [L, B, n_frames, dim]``, on their device."""
    x = frames.detach().float()
    mean = x.mean(dim=2)  # [L, B, D]
    return int(x.shape[2]), mean, ((x - mean[:, :, None, :]) ** 2).sum(dim=2)


def masked_moment_tensors(frames, n_frames):
    """``(counts [B], mean [L, B, D], m2 [L, B, D])`` of a masked batch, on the frames' device.

    ``n_frames`` (ints or a tensor on any device) is copied to the frames' device.
    """
    import torch

    x = frames.detach().float()
    counts = torch.as_tensor(n_frames, dtype=torch.long, device=x.device)
    keep = (torch.arange(x.shape[2], device=x.device)[None, :] < counts[:, None]).to(x.dtype)[None, :, :, None]
    n = counts.to(x.dtype)[None, :, None]  # [1, B, 1]
    mean = (x * keep).sum(dim=2) / n  # [L, B, D]
    m2 = (((x - mean[:, :, None, :]) * keep) ** 2).sum(dim=2)
    return counts, mean, m2


def check_ddof(ddof) -> int:
    if isinstance(ddof, bool) or ddof not in STD_DDOFS:
        raise ValueError(f"std_ddof must be 0 (population std) or 1 (unbiased, torch.std), got {ddof!r}")
    return int(ddof)


def finalize_mean_std(count: int, mean: np.ndarray, m2: np.ndarray, ddof: int = STD_DDOF) -> np.ndarray:
    """Concatenate mean and std (``m2 / (count - ddof)``): ``[..., dim]`` -> ``[..., 2 * dim]`` float64.

    With ``count <= ddof`` (one frame and the unbiased estimator) the std is 0, not NaN.
    """
    if count < 1:
        raise ValueError("cannot pool zero frames")
    ddof = check_ddof(ddof)
    if count <= ddof:
        std = np.zeros_like(m2)
    else:
        std = np.sqrt(np.maximum(m2 / (count - ddof), 0.0))
    return np.concatenate([mean, std], axis=-1)


class StreamingMeanStd:
    """Accumulates per-layer mean and std over frames that arrive chunk by chunk.

    >>> acc = StreamingMeanStd(ddof=1)
    >>> for chunk in chunks:            # each [n_layers, n_frames_i, dim]
    ...     acc.update(chunk)
    >>> pooled = acc.result()           # [n_layers, 2 * dim] float64
    """

    def __init__(self, ddof: int = STD_DDOF) -> None:
        self.ddof = check_ddof(ddof)
        self.count = 0
        self.mean: np.ndarray | None = None  # [n_layers, dim] float64
        self.m2: np.ndarray | None = None

    def update(self, frames) -> None:
        """Add a chunk of frames ``[n_layers, n_frames, dim]`` (torch or numpy)."""
        if frames.shape[1] == 0:
            return
        self.merge(*chunk_moments(frames))

    def merge(self, count: int, mean: np.ndarray, m2: np.ndarray) -> None:
        """Merge precomputed moments (Chan et al. parallel variance update)."""
        if count == 0:
            return
        if self.mean is None:
            self.count, self.mean, self.m2 = count, np.array(mean, dtype=np.float64), np.array(m2, dtype=np.float64)
            return
        if mean.shape != self.mean.shape:
            raise ValueError(f"chunk has shape {mean.shape}, earlier chunks {self.mean.shape}")
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * (count / total)
        self.m2 = self.m2 + m2 + delta**2 * (self.count * count / total)
        self.count = total

    def result(self) -> np.ndarray:
        """Pooled features ``[n_layers, 2 * dim]`` float64."""
        if self.mean is None:
            raise ValueError("no frames were pooled")
        return finalize_mean_std(self.count, self.mean, self.m2, self.ddof)


def pool_mean_std(frames, ddof: int = STD_DDOF) -> np.ndarray:
    """Pool one whole frame sequence ``[n_layers, n_frames, dim]`` -> ``[n_layers, 2 * dim]``."""
    acc = StreamingMeanStd(ddof)
    acc.update(frames)
    return acc.result()
