"""How clips share a forward pass: the values of ``embed.batching`` and their batch plans.

* ``masked`` (the default): clips sorted by length into buckets whose longest is at most
  ``length_ratio`` times their shortest (:func:`plan_masked_batches`); each clip's CNN runs alone
  and the transformer once over the bucket with a key-padding mask (``Encoder.forward_masked``,
  :mod:`bioprobe.encoders.masked`), which equals one clip at a time. An encoder without a masked
  pass proven exact (baselines, families not tested) falls back to ``equal_length``.
* ``equal_length`` (:func:`plan_batches`): a batch only holds clips of exactly the same length,
  so no batch carries padding and batched output equals one-clip-at-a-time output.
* ``study_repeat_pad`` (:func:`plan_study_batches`): the authors' batches, ``batch_size``
  consecutive clips in manifest order, each repeat-padded to the longest of its batch, padding
  kept in pooling (see docs/protocol.md). Not exact: it changes the embeddings on purpose.

``masked`` and ``equal_length`` are exact, so choosing between them changes speed, not results
(``embed.batching`` is then not tracked as a setting that changes embeddings). Batches are bounded by ``batch_size`` clips and
``max_batch_seconds`` of padded audio; a clip longer than the chunk length goes alone (it is
chunked). The embed step writes features in the clips' own order whatever the batches.

A new value joins :data:`BATCHINGS` as one :class:`Batching`: its plan function, whether a batch
is run masked, whether it is exact, and the rule recorded in the embedding file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence


def plan_batches(lengths: Sequence[int], batch_size: int, max_batch_samples: int, chunk_samples: int) -> list[list[int]]:
    """Group clip indices into batches of exactly equal length.

    Clips longer than ``chunk_samples`` are returned alone (they are chunked). A batch holds at
    most ``batch_size`` clips and at most ``max_batch_samples`` samples in total (at least one
    clip). Longest batches come first, so an out-of-memory error shows up at once; within a
    length, manifest order is kept.
    """
    by_length: dict[int, list[int]] = {}
    for index, length in enumerate(lengths):
        by_length.setdefault(int(length), []).append(index)
    batches = []
    for length in sorted(by_length, reverse=True):
        indices = by_length[length]
        if length > chunk_samples:
            batches.extend([i] for i in indices)
            continue
        size = max(1, min(batch_size, max_batch_samples // max(length, 1)))
        batches.extend(indices[i : i + size] for i in range(0, len(indices), size))
    return batches


def plan_masked_batches(
    lengths: Sequence[int], batch_size: int, max_batch_samples: int, chunk_samples: int, length_ratio: float
) -> list[list[int]]:
    """Group clip indices into length buckets for masked batches.

    Clips are sorted by length, longest first (an out-of-memory error shows up at once; equal
    lengths keep manifest order). A batch starts at its longest clip and takes the next clips
    while the longest is at most ``length_ratio`` times the shortest, the batch holds at most
    ``batch_size`` clips, and its padded size (clips x longest) is at most ``max_batch_samples``
    (at least one clip). Clips longer than ``chunk_samples`` are returned alone (they are chunked).
    """
    order = sorted(range(len(lengths)), key=lambda i: -int(lengths[i]))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        length = int(lengths[i])
        if length > chunk_samples:
            batches.append([i])
            continue
        if current:
            longest = int(lengths[current[0]])
            fits = len(current) < batch_size and (len(current) + 1) * longest <= max_batch_samples
            if fits and longest <= length_ratio * length:
                current.append(i)
                continue
            batches.append(current)
        current = [i]
    if current:
        batches.append(current)
    return batches


def plan_study_batches(lengths: Sequence[int], order: Sequence[int], batch_size: int, chunk_samples: int) -> list[list[int]]:
    """The authors' batches: ``batch_size`` consecutive clips of ``order`` (manifest order).

    Clips of any lengths share a batch (each is then repeat-padded to the batch's longest). A
    clip longer than ``chunk_samples`` is taken out of its batch and embedded alone, chunked
    (the authors never met this case: they chunked Watkins only, with batch size 1).
    """
    batches = []
    for i in range(0, len(order), batch_size):
        group = [int(j) for j in order[i : i + batch_size]]
        long = [j for j in group if int(lengths[j]) > chunk_samples]
        short = [j for j in group if int(lengths[j]) <= chunk_samples]
        batches.extend([[j] for j in long] + ([short] if short else []))
    return batches


@dataclass(frozen=True)
class Batching:
    """One value of ``embed.batching``: how clips are grouped, and how a group is run.

    ``plan(padded_lengths, opts, sample_rate, chunk_samples, order)`` returns the batches (lists
    of clip indices; a clip longer than ``chunk_samples`` alone); ``order`` is the clips' manifest
    order. ``masked``: a batch holds clips of unequal length, run by ``encoder.forward_masked``;
    otherwise a batch's clips are stacked for ``encoder.forward``, each repeat-padded to the
    batch's longest with ``pad_to_longest`` (else they have equal lengths). ``exact``: equals one
    clip at a time, so the value changes speed, not results. A masked batching is only used for encoders whose
    ``masked_batching`` is true; the others get ``fallback`` instead.
    """

    name: str
    plan: Callable[[Sequence[int], Mapping, int, int, Sequence[int]], list[list[int]]]
    masked: bool
    exact: bool
    rule: str
    fallback: str | None = None
    pad_to_longest: bool = False


def _plan_equal_length(lengths, opts, sample_rate, chunk_samples, order):
    return plan_batches(lengths, int(opts["batch_size"]), int(opts["max_batch_seconds"] * sample_rate), chunk_samples)


def _plan_masked(lengths, opts, sample_rate, chunk_samples, order):
    max_samples = int(opts["max_batch_seconds"] * sample_rate)
    return plan_masked_batches(lengths, int(opts["batch_size"]), max_samples, chunk_samples, float(opts["length_ratio"]))


def _plan_study(lengths, opts, sample_rate, chunk_samples, order):
    return plan_study_batches(lengths, order, int(opts["batch_size"]), chunk_samples)


BATCHINGS: dict[str, Batching] = {
    "masked": Batching(
        "masked", _plan_masked, masked=True, exact=True, fallback="equal_length",
        rule="masked: clips sorted by length, longest <= length_ratio x shortest; CNN per clip, one masked transformer pass",
    ),
    "equal_length": Batching("equal_length", _plan_equal_length, masked=False, exact=True, rule="equal length only"),
    "study_repeat_pad": Batching(
        "study_repeat_pad", _plan_study, masked=False, exact=False, pad_to_longest=True,
        rule="study_repeat_pad: consecutive clips in manifest order, repeat-padded to the longest of the batch, padding pooled",
    ),
}


# Values that give the same embeddings as one clip at a time: settings of speed, not of results.
EXACT_BATCHINGS = tuple(name for name, batching in BATCHINGS.items() if batching.exact)


def choose_batching(requested: str, encoder) -> Batching:
    """The :class:`Batching` used for ``encoder``: the requested one, or its fallback."""
    batching = BATCHINGS[requested]
    while batching.masked and not getattr(encoder, "masked_batching", False):
        batching = BATCHINGS[batching.fallback]
    return batching


def batching_attrs(encoder, opts: Mapping) -> dict:
    """How clips were batched: the requested value, the one used (after a fallback) and its rule."""
    used = choose_batching(opts["batching"], encoder)
    attrs = {
        "requested": opts["batching"],
        "used": used.name,
        "rule": used.rule,
        "batch_size": opts["batch_size"],
    }
    if not used.pad_to_longest:  # the authors' batches have no bound on seconds
        attrs["max_batch_seconds"] = opts["max_batch_seconds"]
    if used.masked:
        attrs["length_ratio"] = opts["length_ratio"]
    if used.name != opts["batching"]:
        attrs["fallback_reason"] = f"no masked pass proven exact for a {type(encoder).__name__} ({getattr(encoder, 'source', '?')})"
    return attrs
