"""A stand-in accelerator for machines without a GPU: torch's FakeTensorMode on the ``meta`` device.

Under :class:`~torch._subclasses.fake_tensor.FakeTensorMode` no tensor holds data; every op
only propagates shapes, dtypes and devices, and an op whose tensor inputs sit on two devices
(a CPU tensor next to an accelerator tensor; a CPU 0-dim scalar is allowed, as on CUDA) raises
``Unhandled FakeTensor Device Propagation``. That is the error a GPU run would stop on.

Why ``meta`` and not ``cuda``: torch here is a CUDA build on a machine without a CUDA driver.
Fake CUDA tensors can be created, but Python indexing (``x[:, None]``) and ``.to("cuda")``
enter a CUDA device guard that asks the driver for the current device and fails, so no model
gets past its first line. ``meta`` has a no-op device guard and is, like CUDA, a device that
is not the CPU: code that takes its device from the encoder or the features and never names
one is checked the same way. What is CUDA-specific by name (autocast with
``device_type="cuda"``, ``torch.cuda`` memory statistics) is not covered by this.

Host reads (``bool(t)``, ``.item()``, ``.numpy()``) are impossible on fake tensors: tests stop
at the device-side functions that return tensors (``run_forward``, ``*_moment_tensors``, ...).
``allow_non_fake_inputs``: torch builds ``torch.tensor(..., device="meta")`` as a real meta
tensor, which is then converted; a real CPU tensor is converted to a fake CPU one, so mixing
it with accelerator tensors still fails.
"""

from __future__ import annotations

import contextlib

DEVICE = "meta"


@contextlib.contextmanager
def fake_accelerator():
    """``with fake_accelerator() as device:`` fake tensors on ``device``, device mismatches raise."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode(allow_non_fake_inputs=True):
        yield torch.device(DEVICE)


def on(device, *tensors) -> bool:
    """Whether every tensor is on ``device`` (what a step must return, and where a model must sit)."""
    return bool(tensors) and all(t.device == device for t in tensors)
