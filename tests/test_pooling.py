"""Mean + std pooling: streamed over chunks equals pooling the whole frame sequence."""

import numpy as np
import pytest
import torch

from bioprobe.pooling import StreamingMeanStd, batch_moments, finalize_mean_std, pool_mean_std


@pytest.mark.parametrize("ddof", [0, 1])
def test_pool_mean_std_matches_numpy(ddof):
    rng = np.random.default_rng(0)
    frames = rng.standard_normal((3, 50, 8)) * 4 + 10  # [layers, frames, dim]
    pooled = pool_mean_std(frames, ddof=ddof)
    assert pooled.shape == (3, 16)
    np.testing.assert_allclose(pooled[:, :8], frames.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(pooled[:, 8:], frames.std(axis=1, ddof=ddof), rtol=1e-12)


def test_default_std_is_torch_std_unbiased():
    torch.manual_seed(3)
    frames = torch.randn(2, 7, 5, dtype=torch.float64)
    pooled = pool_mean_std(frames.numpy())
    np.testing.assert_allclose(pooled[:, 5:], torch.std(frames, dim=1).numpy(), rtol=1e-12)
    assert not np.allclose(pooled[:, 5:], frames.numpy().std(axis=1, ddof=0))


@pytest.mark.parametrize("ddof", [0, 1])
@pytest.mark.parametrize("splits", [[1, 2, 3], [17], [10, 10, 10, 10, 9], [1] * 20])
def test_streamed_chunks_equal_whole_sequence(splits, ddof):
    torch.manual_seed(0)
    frames = torch.randn(4, sum(splits) + 7, 6) * 3 + 100.0  # large offset: tests numerical stability
    whole = pool_mean_std(frames.double().numpy(), ddof=ddof)
    np.testing.assert_allclose(whole[:, 6:], frames.double().std(dim=1, unbiased=bool(ddof)).numpy(), rtol=1e-10)
    acc = StreamingMeanStd(ddof=ddof)
    start = 0
    for size in splits + [7]:
        acc.update(frames[:, start : start + size])  # float32 torch chunks, as embed gives them
        start += size
    assert acc.count == frames.shape[1]
    np.testing.assert_allclose(acc.result(), whole, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("ddof", [0, 1])
def test_empty_chunk_is_ignored_and_one_frame_gives_zero_std(ddof):
    acc = StreamingMeanStd(ddof=ddof)
    acc.update(np.zeros((2, 0, 3)))
    acc.update(np.ones((2, 1, 3)) * 5)
    pooled = acc.result()
    assert np.isfinite(pooled).all()
    np.testing.assert_array_equal(pooled, np.concatenate([np.full((2, 3), 5.0), np.zeros((2, 3))], axis=1))


def test_one_frame_then_more_frames_uses_the_whole_count():
    # one frame in a first chunk, more in the next: std over all 3 frames, unbiased
    acc = StreamingMeanStd(ddof=1)
    acc.update(np.array([[[1.0]]]))
    acc.update(np.array([[[2.0], [6.0]]]))
    np.testing.assert_allclose(acc.result(), [[3.0, np.std([1.0, 2.0, 6.0], ddof=1)]], rtol=1e-12)


def test_bad_ddof_is_an_error():
    with pytest.raises(ValueError, match="std_ddof"):
        StreamingMeanStd(ddof=2)
    with pytest.raises(ValueError, match="std_ddof"):
        finalize_mean_std(3, np.zeros(3), np.zeros(3), ddof=True)


def test_no_frames_is_an_error():
    with pytest.raises(ValueError, match="no frames"):
        StreamingMeanStd().result()
    with pytest.raises(ValueError, match="zero frames"):
        finalize_mean_std(0, np.zeros(3), np.zeros(3))


def test_batch_moments_equal_per_clip_pooling():
    torch.manual_seed(1)
    frames = torch.randn(3, 5, 40, 4)  # [layers, batch, frames, dim]
    count, mean, m2 = batch_moments(frames)
    batched = finalize_mean_std(count, mean, m2)  # [batch, layers, 2*dim]
    for b in range(5):
        np.testing.assert_allclose(batched[b], pool_mean_std(frames[:, b].double().numpy()), rtol=1e-5, atol=1e-6)


def test_shape_mismatch_between_chunks_is_an_error():
    acc = StreamingMeanStd()
    acc.update(np.zeros((2, 4, 3)))
    with pytest.raises(ValueError, match="shape"):
        acc.update(np.zeros((2, 4, 5)))


def test_masked_batch_moments_pool_only_each_clips_real_frames():
    import torch

    from bioprobe.pooling import masked_batch_moments

    rng = np.random.default_rng(9)
    frames = rng.normal(size=(2, 3, 5, 4))  # [L, B, T, D]
    n_frames = [5, 2, 1]
    for j, n in enumerate(n_frames):
        frames[:, j, n:, :] = 1e3  # padding that would show in any statistic touching it
    counts, mean, m2 = masked_batch_moments(torch.tensor(frames, dtype=torch.float32), n_frames)
    assert counts.tolist() == n_frames
    for j, n in enumerate(n_frames):
        real = frames[:, j, :n, :]
        np.testing.assert_allclose(mean[j], real.mean(axis=1), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(m2[j], ((real - real.mean(axis=1, keepdims=True)) ** 2).sum(axis=1), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(finalize_mean_std(n, mean[j], m2[j], 1),
                                   np.concatenate([real.mean(axis=1), real.std(axis=1, ddof=1) if n > 1 else np.zeros((2, 4))], axis=-1),
                                   rtol=1e-4, atol=1e-4)
